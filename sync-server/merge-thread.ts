/**
 * Y.mergeUpdates off the relay's event loop (merge-worker.js). One thread for the process,
 * started on first use and unreferenced, so it never keeps the process alive; should it fail,
 * merging falls back to this thread rather than failing the caller.
 */
import { Worker } from 'node:worker_threads';
import * as Y from 'yjs';

let worker: Worker | null = null;
let broken = false;
let nextId = 1;
const pending = new Map<number, { resolve(merged: Uint8Array): void; reject(error: Error): void }>();

function failAll(error: Error): void {
	worker = null;
	for (const waiter of pending.values()) waiter.reject(error);
	pending.clear();
}

function start(): Worker {
	const started = new Worker(new URL('./merge-worker.js', import.meta.url));
	started.unref();
	started.on('message', (reply: { id: number; merged?: Uint8Array; error?: string }) => {
		const waiter = pending.get(reply.id);
		if (!waiter) return;
		pending.delete(reply.id);
		if (reply.merged) waiter.resolve(reply.merged);
		else waiter.reject(new Error(reply.error ?? 'merge failed'));
	});
	started.on('error', (error) => {
		broken = true;
		failAll(error);
	});
	started.on('exit', (code) => failAll(new Error(`the merge thread exited (${code})`)));
	return started;
}

/** The updates merged into one, as Y.mergeUpdates would; `updates` may be handed to the thread. */
export async function mergeUpdatesOffThread(updates: Uint8Array[]): Promise<Uint8Array> {
	if (broken) return Y.mergeUpdates(updates);
	worker ??= start();
	const id = nextId++;
	const thread = worker;
	try {
		return await new Promise<Uint8Array>((resolve, reject) => {
			pending.set(id, { resolve, reject });
			thread.postMessage({ id, updates });
		});
	} catch (error) {
		if (!broken) throw error;
		return Y.mergeUpdates(updates);
	}
}
