/**
 * Scenario 3's pieces: rooms with long histories, and a new client's cold join.
 *
 * History is written in batches of at most 50 messages, each batch under a fresh Yjs client id
 * (one client id appending a long run of separate items is quadratic in Yjs). For the peers the
 * batches are built locally and sent as one update; our relay's rooms are filled through its real
 * write path by scripts/seed.ts, and `waitCompacted` waits for its compaction to catch up.
 */
import { performance } from 'node:perf_hooks';
import { newMessageId } from '../../src/lib/shared/message-id';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { classify, hocusAuthFrame, syncStep1Frame, syncStep2Frame, updateFrame, type ChatMessage, type Dialect } from './wire';

export const BATCH = 50;

let nextClientId = 1 + Math.floor(Math.random() * 2 ** 30);
/** A Yjs client id no other client of this run has used. */
export function freshClientId(): number {
	return nextClientId++;
}

function batchOf(author: (i: number) => string, from: number, count: number): ChatMessage[] {
	const now = Date.now();
	return Array.from({ length: count }, (_, i) => ({ id: newMessageId(), author: author(from + i), ts: now, kind: 'text', text: `history message ${from + i}` }));
}

/** Appends `count` messages in batches, a fresh client id per batch; calls `onBatch` with each batch's update. */
export async function appendHistory(
	doc: Y.Doc,
	count: number,
	author: (batch: number) => string,
	onBatch?: (update: Uint8Array, batch: number) => Promise<void>
): Promise<void> {
	const messages = doc.getArray<ChatMessage>('messages');
	for (let from = 0, b = 0; from < count; from += BATCH, b++) {
		let update: Uint8Array | null = null;
		const capture = (u: Uint8Array): void => {
			update = u;
		};
		doc.on('update', capture);
		doc.clientID = freshClientId();
		messages.push(batchOf(() => author(b), from, Math.min(BATCH, count - from)));
		doc.off('update', capture);
		if (onBatch) await onBatch(update!, b);
	}
}

/** A protocol-level socket that answers the server's sync step 1 from `doc` and hands out frames. */
export class RawClient {
	readonly ws: WebSocket;
	bytesIn = 0;
	readonly #waiters: { kind: string; resolve: (data: Uint8Array) => void; reject: (error: Error) => void }[] = [];
	readonly opened: Promise<void>;
	/** Set once the socket closed: code and reason. */
	closedWith: string | null = null;

	constructor(
		url: string,
		readonly dialect: Dialect,
		readonly docName: string,
		readonly doc: Y.Doc = new Y.Doc()
	) {
		this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
		this.opened = new Promise((resolve, reject) => {
			this.ws.once('open', () => {
				if (dialect === 'hocus') this.ws.send(hocusAuthFrame(docName));
				resolve();
			});
			this.ws.once('error', reject);
			this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
			this.ws.once('close', (code, reason) => {
				this.closedWith = `${code} ${reason.toString()}`;
				reject(new Error(`socket closed before it opened: ${this.closedWith}`));
				// A waiter cannot be answered any more (e.g. 4410: the room moved to a new epoch).
				for (const w of this.#waiters.splice(0)) w.reject(new Error(`socket closed: ${this.closedWith}`));
			});
		});
		this.opened.catch(() => {}); // observed by sync(); not an unhandled rejection meanwhile
		this.ws.on('message', (data: Buffer) => {
			this.bytesIn += data.length;
			const inbound = classify(dialect, data);
			if (inbound.kind === 'step1') this.ws.send(syncStep2Frame(dialect, docName, Y.encodeStateAsUpdate(this.doc, inbound.stateVector)));
			const at = this.#waiters.findIndex((w) => w.kind === inbound.kind);
			if (at >= 0) {
				const [waiter] = this.#waiters.splice(at, 1);
				waiter.resolve(inbound.kind === 'step2' ? inbound.update : data);
			}
		});
	}

	/** The next inbound frame of this kind (for step2: its update). */
	next(kind: 'step2' | 'update', timeoutMs = 120_000): Promise<Uint8Array> {
		return new Promise((resolve, reject) => {
			if (this.closedWith !== null) return reject(new Error(`socket closed: ${this.closedWith}`));
			const timer = setTimeout(() => reject(new Error(`no ${kind} within ${timeoutMs} ms`)), timeoutMs);
			this.#waiters.push({ kind, resolve: (d) => (clearTimeout(timer), resolve(d)), reject: (e) => (clearTimeout(timer), reject(e)) });
		});
	}

	/** Asks for the server's state (sync step 1 from `doc`) and resolves with its step 2. */
	async sync(): Promise<Uint8Array> {
		await this.opened;
		const reply = this.next('step2');
		this.ws.send(syncStep1Frame(this.dialect, this.docName, this.doc));
		return reply;
	}

	sendUpdate(update: Uint8Array): void {
		this.ws.send(updateFrame(this.dialect, this.docName, update));
	}

	close(): void {
		this.ws.close();
	}
}

/**
 * Writes a history into a peer's room: built locally, sent as one update, confirmed by a sync
 * round trip. Returns the socket, still open: Hocuspocus unloads a document (and, without
 * storage, forgets it) when its last socket leaves, so the caller closes it after the joins.
 */
export async function seedPeer(url: string, dialect: Dialect, docName: string, update: Uint8Array): Promise<RawClient> {
	const client = new RawClient(url, dialect, docName);
	await client.opened;
	client.sendUpdate(update);
	await client.sync(); // answered after the server handled the update (same socket, in order)
	return client;
}

export interface JoinResult {
	ms: number;
	/** Everything the new client received: socket frames, plus the history page if one was fetched. */
	bytes: number;
	/** The server's sync step 2 for an empty client: the live document's encoded size. */
	stateBytes: number;
	/** Messages the new client holds in its synced document. */
	liveMessages: number;
	/** Whether the newest 50 came from the history API (the live document held fewer). */
	usedHistoryApi: boolean;
}

/**
 * A new client: socket open → sync → the newest 50 messages in hand (from the document, or, for
 * our relay when the live document holds fewer, from GET /api/rooms/:id/messages?limit=50).
 */
export async function coldJoin(
	url: string,
	dialect: Dialect,
	docName: string,
	history?: { fetch: () => Promise<number> }
): Promise<JoinResult> {
	const t0 = performance.now();
	const client = new RawClient(url, dialect, docName);
	const state = await client.sync();
	Y.applyUpdate(client.doc, state);
	const messages = client.doc.getArray<ChatMessage>('messages');
	const newest = messages.slice(Math.max(0, messages.length - 50));
	let bytes = client.bytesIn;
	let usedHistoryApi = false;
	if (newest.length < 50 && history) {
		bytes += await history.fetch();
		usedHistoryApi = true;
	}
	const ms = performance.now() - t0;
	client.close();
	return { ms, bytes, stateBytes: state.byteLength, liveMessages: messages.length, usedHistoryApi };
}

export interface LiveState {
	/** Messages in the live document. */
	messages: number;
	/** Its encoded size (the sync step 2 an empty client receives). */
	bytes: number;
	/** The newest message's id (the log's last entry). */
	newestId: string | null;
}

/** Opens a socket, syncs an empty document, reads the live document and closes. */
export async function liveState(url: string, docName: string, timeoutMs = 60_000): Promise<LiveState> {
	const client = new RawClient(url, 'y', docName);
	try {
		await client.opened;
		const reply = client.next('step2', timeoutMs);
		client.ws.send(syncStep1Frame('y', docName, client.doc));
		const state = await reply;
		Y.applyUpdate(client.doc, state);
		const messages = client.doc.getArray<ChatMessage>('messages');
		return { messages: messages.length, bytes: state.byteLength, newestId: messages.length ? messages.get(messages.length - 1).id : null };
	} finally {
		client.close();
	}
}

/**
 * Polls the live document (a fresh socket, with a fresh descriptor from `url()`, every
 * `everyMs`) until it holds at most `max` messages: the relay's compaction has caught up.
 * A socket closed on the way (4410, the room rolled over to a new epoch) is just retried.
 */
export async function waitCompacted(url: () => Promise<string>, docName: string, max: number, timeoutMs: number, everyMs = 1_000): Promise<{ ms: number; polls: number; state: LiveState }> {
	const t0 = performance.now();
	let last = 'no answer yet';
	for (let polls = 1; ; polls++) {
		try {
			const state = await liveState(await url(), docName);
			if (state.messages <= max) return { ms: performance.now() - t0, polls, state };
			last = `${state.messages} messages live`;
		} catch (error) {
			last = error instanceof Error ? error.message : String(error);
		}
		if (performance.now() - t0 > timeoutMs) throw new Error(`compaction did not catch up within ${timeoutMs} ms (${last})`);
		await new Promise((resolve) => setTimeout(resolve, everyMs));
	}
}
