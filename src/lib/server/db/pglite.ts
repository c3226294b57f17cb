/**
 * Embedded PostgreSQL (PGlite) under DATA_DIR: the default when DATABASE_URL is unset. PGlite
 * runs on a worker thread (pglite-worker.js); this side speaks to it by message, so a commit's
 * CPU and disk writes never stall the relay's sockets.
 */
import { Worker } from 'node:worker_threads';
import type { Database, Queryable } from './database';

interface Reply {
	id: number;
	rows?: unknown[];
	error?: { message: string; code?: string };
}

export class PgliteError extends Error {
	readonly code: string | undefined;
	constructor(message: string, code: string | undefined) {
		super(message);
		this.name = 'PgliteError';
		this.code = code;
	}
}

export async function openPglite(dir: string | null): Promise<Database> {
	const worker = new Worker(new URL('./pglite-worker.js', import.meta.url), { workerData: { dir } });
	const pending = new Map<number, { resolve(rows: unknown[]): void; reject(error: Error): void }>();
	let nextId = 1;
	let nextTx = 1;
	let closed = false;
	let failure: Error | null = null;

	await new Promise<void>((resolve, reject) => {
		const onMessage = (message: { ready?: boolean }): void => {
			if (!message.ready) return;
			worker.off('error', reject);
			worker.off('message', onMessage);
			resolve();
		};
		worker.on('message', onMessage);
		worker.once('error', reject);
	});
	worker.on('message', (reply: Reply) => {
		const waiter = pending.get(reply.id);
		if (!waiter) return;
		pending.delete(reply.id);
		if (reply.error) waiter.reject(new PgliteError(reply.error.message, reply.error.code));
		else waiter.resolve(reply.rows ?? []);
	});
	const failAll = (error: Error): void => {
		failure = error;
		for (const waiter of pending.values()) waiter.reject(error);
		pending.clear();
	};
	worker.on('error', (error) => failAll(error));
	worker.on('exit', (code) => failAll(new Error(closed ? 'PGlite is closed' : `the PGlite thread exited (${code})`)));

	function call(op: string, fields: { tx?: number; sql?: string; params?: unknown[] } = {}): Promise<unknown[]> {
		if (failure) return Promise.reject(failure);
		if (closed && op !== 'close') return Promise.reject(new Error('PGlite is closed'));
		const id = nextId++;
		return new Promise((resolve, reject) => {
			pending.set(id, { resolve, reject });
			worker.postMessage({ id, op, ...fields });
		});
	}

	return {
		kind: 'pglite',
		async query<Row>(sql: string, params: unknown[] = []): Promise<Row[]> {
			return (await call('query', { sql, params })) as Row[];
		},
		async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
			const tx = nextTx++;
			await call('begin', { tx });
			try {
				const result = await work({
					async query<Row>(sql: string, params: unknown[] = []): Promise<Row[]> {
						return (await call('query', { tx, sql, params })) as Row[];
					}
				});
				await call('commit', { tx });
				return result;
			} catch (error) {
				await call('rollback', { tx }).catch(() => undefined);
				throw error;
			}
		},
		async close(): Promise<void> {
			if (closed) return;
			closed = true;
			await call('close').catch(() => undefined);
			await worker.terminate();
		}
	};
}
