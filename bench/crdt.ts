/**
 * The CRDT choice, measured: the same 10,000-message room log in Yjs (what the product uses) and
 * in Automerge — encoded size, time to load it, time to append one message (and encode the change
 * that would go over the wire).
 *
 *   npx tsx bench/crdt.ts
 *
 * The log is realistic in shape: 8 authors writing in runs of a few messages, each message a plain
 * object {id, author, ts, kind, text} with text of 20–200 characters. Writes bench/results/crdt-<date>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import * as A from '@automerge/automerge';
import * as Y from 'yjs';
import { newMessageId } from '../src/lib/shared/message-id';
import type { ChatMessage } from '../src/lib/shared/schema';
import { prng } from '../tests/helpers/prng';
import { chatText } from './lib/chat-text';

const MESSAGES = Number(process.env.CRDT_MESSAGES ?? 10_000);
const AUTHORS = 8;
const APPENDS = 100;
const LOADS = 3;

type Message = ChatMessage;

const random = prng(42);
const text = (): string => chatText(random);

function log(): Message[] {
	const messages: Message[] = [];
	let author = 0;
	let ts = Date.UTC(2026, 0, 1);
	while (messages.length < MESSAGES) {
		if (random() < 0.35) author = Math.floor(random() * AUTHORS);
		ts += 1000 + Math.floor(random() * 60_000);
		messages.push({ id: newMessageId(ts), author: `user${author}`, ts, kind: 'text', text: text() });
	}
	return messages;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)];
}

function timeIt(fn: () => void): number {
	const start = performance.now();
	fn();
	return performance.now() - start;
}

const messages = log();
const next = (i: number): Message => ({ id: newMessageId(), author: `user${i % AUTHORS}`, ts: Date.now(), kind: 'text', text: text() });

// Yjs: each author is its own client id (as on real devices); plain objects in a Y.Array.
function buildYjs(): Uint8Array {
	const doc = new Y.Doc();
	const clientIds = Array.from({ length: AUTHORS }, (_, i) => 1000 + i);
	const array = doc.getArray<Message>('messages');
	for (const message of messages) {
		doc.clientID = clientIds[Number(message.author.slice(4))];
		array.push([message]);
	}
	return Y.encodeStateAsUpdate(doc);
}

// Automerge: each author its own actor on its own copy, brought up to date with the room before
// writing (so each change depends on everything before it) and merged into the room as devices sync.
// Built on the document handles (A.getBackend) rather than the materialized JS objects: the same
// change log (actors, seqs, deps, ops — spliceFromHydrate is what `d.messages.push(m)` calls), without
// re-materializing 8 JS copies after every merge, which made this build take over a minute.
function buildAutomerge(): Uint8Array {
	const actors = Array.from({ length: AUTHORS }, (_, i) => (i + 1).toString(16).padStart(32, '0'));
	const start = A.from<{ messages: Message[] }>({ messages: [] }, actors[0]);
	const room = A.getBackend(A.clone(start));
	const copies = actors.map((actor) => A.getBackend(A.clone(start, actor)));
	const listId = room.get('_root', 'messages'); // an object's value is its id
	if (typeof listId !== 'string') throw new Error('no messages list');
	const changes: A.Change[] = []; // every change after `start`, in order
	const seen = actors.map(() => 0); // how many of them each author's copy has
	for (const message of messages) {
		const author = Number(message.author.slice(4));
		const copy = copies[author];
		copy.applyChanges(changes.slice(seen[author]));
		copy.spliceFromHydrate(listId, copy.length(listId), 0, [message]);
		copy.commit(null, Math.floor(Date.now() / 1000));
		const change = copy.getLastLocalChange();
		if (!change) throw new Error('no change');
		changes.push(change);
		seen[author] = changes.length;
		room.applyChanges([change]);
	}
	return room.save();
}

let yjsState: Uint8Array = new Uint8Array();
const yjsBuildMs = timeIt(() => (yjsState = buildYjs()));
let amState: Uint8Array = new Uint8Array();
const amBuildMs = timeIt(() => (amState = buildAutomerge()));

const yjsLoad = median(Array.from({ length: LOADS }, () => timeIt(() => Y.applyUpdate(new Y.Doc(), yjsState))));
const amLoad = median(Array.from({ length: LOADS }, () => timeIt(() => A.load(amState))));

const yjsDoc = new Y.Doc();
Y.applyUpdate(yjsDoc, yjsState);
const yjsAppend = median(
	Array.from({ length: APPENDS }, (_, i) => {
		const message = next(i); // made outside the timing: the same for both libraries
		return timeIt(() => {
			let update: Uint8Array | null = null;
			yjsDoc.once('update', (u: Uint8Array) => (update = u));
			yjsDoc.getArray<Message>('messages').push([message]);
			if (!update) throw new Error('no update');
		});
	})
);
let amDoc = A.load<{ messages: Message[] }>(amState);
const amAppend = median(
	Array.from({ length: APPENDS }, (_, i) => {
		const message = next(i);
		return timeIt(() => {
			amDoc = A.change(amDoc, (d) => {
				d.messages.push(message);
			});
			if (!A.getLastLocalChange(amDoc)) throw new Error('no change');
		});
	})
);

const results = {
	date: new Date().toISOString(),
	machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
	messages: MESSAGES,
	yjs: { bytes: yjsState.length, loadMs: yjsLoad, appendMs: yjsAppend, buildMs: yjsBuildMs },
	automerge: { bytes: amState.length, loadMs: amLoad, appendMs: amAppend, buildMs: amBuildMs }
};
const row = (name: string, y: number, a: number, unit: string, digits = 2): string =>
	`  ${name.padEnd(22)} Yjs ${y.toFixed(digits).padStart(10)} ${unit}   Automerge ${a.toFixed(digits).padStart(10)} ${unit}   Automerge/Yjs ${(a / y).toFixed(2)}×`;
console.log(`the same ${MESSAGES.toLocaleString('en')}-message room log`);
console.log(row('encoded size', results.yjs.bytes / 1024, results.automerge.bytes / 1024, 'KiB', 0));
console.log(row('load', yjsLoad, amLoad, 'ms'));
console.log(row('append one message', yjsAppend, amAppend, 'ms', 3));
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/crdt-${results.date.replace(/[:.]/g, '-')}.json`, import.meta.url);
await writeFile(file, JSON.stringify(results, null, 2));
console.log(`  written to ${file.pathname}`);
