/**
 * Compaction into DynamoDB, epochs and the history API across both, against a real relay, a real
 * PostgreSQL (PGlite, or DATABASE_URL) and a real DynamoDB (dynalite, stopped and started again
 * for the outage).
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import { pageMessages, type PagedMessage } from '../../src/lib/server/messages';
import { HISTORY_ITEM_MESSAGES, type HistoryStore } from '../../src/lib/server/history/history-store';
import type { ChatMessage } from '../../src/lib/shared/schema';
import { publishControl } from '../../src/lib/server/bus/control';
import { markRoomDeleted } from '../../src/lib/server/rooms';
import { purgeRoom } from '../../src/lib/server/purge';
import { DocStore } from '../../sync-server/doc-store';
import { CloseCode, MessageType } from '../../sync-server/protocol';
import { ChatClient } from '../helpers/chat-client';
import { chatMessage, RelayHarness, type TestAccount } from '../helpers/relay';
import { waitFor } from '../helpers/wait';

/** Each test waits on compaction and rollovers, which a loaded CI machine can slow several-fold. */
const TEST_TIMEOUT_MS = 120_000;

const LIVE_MAX = 20;
const LIMITS = { updatesBurst: 10_000, updatesPerSecond: 10_000 };

let h: RelayHarness;
const clients: ChatClient[] = [];

beforeAll(async () => {
	h = await RelayHarness.start({ liveMessagesMax: LIVE_MAX, rollover: { connected: 2 * LIVE_MAX, idle: LIVE_MAX / 2 }, limits: LIMITS, idleUnloadMs: 200 });
});

afterAll(async () => {
	for (const c of clients) c.destroy();
	await h?.close();
});

function client(account: TestAccount, roomId: string): ChatClient {
	const c = new ChatClient(account.id, () => `${h.url}/${roomId}?token=${h.token(account, roomId)}`);
	clients.push(c);
	return c;
}

/** The whole room through the history API, page by page from the newest. */
async function allMessages(roomId: string, limit = 7): Promise<PagedMessage[]> {
	const pages: PagedMessage[][] = [];
	let cursor = null;
	for (;;) {
		const page = await pageMessages(h.db, h.history, roomId, cursor, limit);
		pages.unshift(page.messages);
		if (page.nextBefore === null) break;
		cursor = JSON.parse(Buffer.from(page.nextBefore, 'base64url').toString()) as { b: string; p: number };
		cursor = { before: cursor.b, position: cursor.p };
	}
	return pages.flat();
}

async function storedLive(roomId: string): Promise<{ epoch: number; messages: ChatMessage[]; historyCount: number }> {
	const stored = await new DocStore(h.db).load(roomId);
	const doc = new Y.Doc();
	Y.applyUpdate(doc, stored.state);
	return { epoch: stored.epoch, messages: doc.getArray<ChatMessage>('messages').toArray(), historyCount: stored.historyCount };
}

/** Two members of a new room, each with a client that is online and synced. */
async function twoOnline(): Promise<{ roomId: string; a: ChatClient; b: ChatClient }> {
	const [alice, bob] = [await h.account(), await h.account()];
	const roomId = await h.room([alice, bob]);
	const a = client(alice, roomId);
	const b = client(bob, roomId);
	a.online();
	b.online();
	await waitFor(() => a.connected && b.connected, 30_000, 'connected');
	return { roomId, a, b };
}

async function sendAll(c: ChatClient, texts: string[]): Promise<void> {
	for (const text of texts) c.send(text);
	await waitFor(() => texts.every((t) => [...c.written.values()].some((m) => m.text === t && c.acked.has(m.id))), 30_000, 'acknowledged');
}

describe('compaction', () => {
	it('seals the oldest messages into DynamoDB, keeps the live document bounded, and pages across both in one order', { timeout: TEST_TIMEOUT_MS }, async () => {
		const { roomId, a, b } = await twoOnline();
		const texts = Array.from({ length: 30 }, (_, i) => `m${i}`);
		for (let i = 0; i < texts.length; i++) (i % 2 ? b : a).send(texts[i]);
		await waitFor(async () => (await storedLive(roomId)).historyCount > 0, 30_000, 'a compaction');
		await waitFor(async () => (await allMessages(roomId)).length === texts.length, 30_000, 'all in the history API');
		const stored = await storedLive(roomId);
		expect(stored.messages.length).toBeLessThanOrEqual(LIVE_MAX);
		const history = await allMessages(roomId);
		expect(new Set(history.map((m) => m.id)).size).toBe(texts.length);
		// Both clients show the same order, and the live part of it is the API's tail.
		await waitFor(() => a.messages().length === stored.messages.length && b.messages().length === stored.messages.length, 30_000, 'clients caught up');
		const tail = history.slice(-stored.messages.length).map((m) => m.id);
		expect(a.messages().map((m) => m.id)).toEqual(tail);
		expect(b.messages().map((m) => m.id)).toEqual(tail);
		// The history API's pages come back whole with any page size.
		expect((await allMessages(roomId, 100)).map((m) => m.id)).toEqual(history.map((m) => m.id));
	});

	it('keeps every message when DynamoDB stops in the middle of a compaction, and finishes once it is back', { timeout: TEST_TIMEOUT_MS }, async () => {
		const [alice, bob] = [await h.account(), await h.account()];
		const roomId = await h.room([alice, bob]);
		// Stop DynamoDB halfway through the first compaction's write: half the entries land.
		const real = h.history;
		let stop: Promise<void> | null = null;
		const original = real.putEntries.bind(real);
		(real as { putEntries: HistoryStore['putEntries'] }).putEntries = async (room, entries, options) => {
			if (stop === null && room === roomId) {
				stop = original(room, entries.slice(0, Math.ceil(entries.length / 2)), options).then(() => h.dynamo.stop());
				await stop;
			}
			return original(room, entries, options);
		};
		try {
			const a = client(alice, roomId);
			a.online();
			await waitFor(() => a.connected, 30_000, 'connected');
			const first = Array.from({ length: LIVE_MAX + 1 }, (_, i) => `outage ${i}`);
			await sendAll(a, first);
			await waitFor(() => stop !== null, 30_000, 'a compaction started');
			await stop;
			// DynamoDB is down: messages are still acknowledged (PostgreSQL has them), nothing sealed.
			const more = Array.from({ length: LIVE_MAX }, (_, i) => `outage ${LIVE_MAX + 1 + i}`);
			await sendAll(a, more);
			const texts = [...first, ...more];
			const during = await storedLive(roomId);
			expect(during.historyCount).toBe(0);
			expect(during.messages.map((m) => m.text)).toEqual(texts);
			await h.dynamo.start();
			await waitFor(async () => (await storedLive(roomId)).historyCount > 0, 20_000, 'compaction after DynamoDB returned');
			await waitFor(async () => (await storedLive(roomId)).messages.length <= LIVE_MAX, 20_000, 'live document back under its limit');
			expect((await allMessages(roomId)).map((m) => m.text)).toEqual(texts);
		} finally {
			(real as { putEntries: HistoryStore['putEntries'] }).putEntries = original;
			await h.dynamo.start();
		}
	});
});

describe('the compaction lease', () => {
	it('abandons a DynamoDB write that would outlast the lease, then seals the step again', { timeout: TEST_TIMEOUT_MS }, async () => {
		// Long enough that the check below runs well inside the lease on a loaded machine.
		const leaseMs = 15_000;
		const writeChunk = 5;
		const short = await RelayHarness.start({ liveMessagesMax: LIVE_MAX, limits: LIMITS, compactionLeaseMs: leaseMs, compactionWriteChunk: writeChunk });
		let a: ChatClient | null = null;
		try {
			const alice = await short.account();
			const roomId = await short.room([alice]);
			// The first write never gets an answer, as from a DynamoDB that stopped responding.
			const real = short.history;
			const original = real.putEntries.bind(real);
			let abandoned: { leaseHeld: boolean } | null = null;
			const chunks: number[] = [];
			(real as { putEntries: HistoryStore['putEntries'] }).putEntries = (room, entries, options) => {
				if (room === roomId) chunks.push(entries.length);
				if (abandoned !== null || room !== roomId) return original(room, entries, options);
				return new Promise((_, reject) => {
					const signal = options?.signal;
					signal?.addEventListener('abort', () => {
						short.db
							.query<{ held: boolean }>('select compactor_until > now() as held from rooms where id = $1', [roomId])
							.then(([row]) => {
								abandoned = { leaseHeld: row.held };
								reject(signal.reason);
							}, reject);
					});
				});
			};
			const client = new ChatClient(alice.id, () => `${short.url}/${roomId}?token=${short.token(alice, roomId)}`);
			a = client;
			client.online();
			await waitFor(() => client.connected, 30_000, 'connected');
			const texts = Array.from({ length: LIVE_MAX + 5 }, (_, i) => `lease ${i}`);
			for (const text of texts) client.send(text);
			await waitFor(() => abandoned !== null, 30_000, 'the hung write abandoned');
			// Abandoned while this relay still held the lease: no other holder could have written yet.
			expect(abandoned).toEqual({ leaseHeld: true });
			await waitFor(async () => Number((await short.db.query<{ n: string }>('select history_count as n from rooms where id = $1', [roomId]))[0].n) > 0, 30_000, 'sealed on a later try');
			const pages = await pageMessages(short.db, short.history, roomId, null, 100);
			expect(pages.messages.map((m) => m.text)).toEqual(texts);
			// The step was written in several chunks, none larger than the lease allows.
			expect(chunks.length).toBeGreaterThan(2);
			expect(Math.max(...chunks)).toBeLessThanOrEqual(writeChunk);
		} finally {
			a?.destroy();
			await short.close();
		}
	});
});

describe('the compaction lease, when a copy of the room goes', () => {
	it('hands the lease back when the copy is destroyed in the middle of a write, so the next copy seals at once', { timeout: TEST_TIMEOUT_MS }, async () => {
		const leaseMs = 20_000;
		const r = await RelayHarness.start({ liveMessagesMax: LIVE_MAX, limits: LIMITS, compactionLeaseMs: leaseMs, compactionWriteChunk: 5 });
		let c: ChatClient | null = null;
		let release: () => void = () => undefined;
		try {
			const alice = await r.account();
			const roomId = await r.room([alice]);
			const real = r.history;
			const original = real.putEntries.bind(real);
			let writing = false;
			const held = new Promise<void>((resolve) => (release = resolve));
			// The first chunk of the first write is held until the copy that sent it is gone.
			(real as { putEntries: HistoryStore['putEntries'] }).putEntries = async (room, entries, options) => {
				if (room === roomId && !writing) {
					writing = true;
					await held;
				}
				return original(room, entries, options);
			};
			const client = new ChatClient(alice.id, () => `${r.url}/${roomId}?token=${r.token(alice, roomId)}`);
			c = client;
			client.online();
			await waitFor(() => client.connected, 30_000, 'connected');
			for (let i = 0; i < LIVE_MAX + 5; i++) client.send(`lease ${i}`);
			await waitFor(() => writing, 30_000, 'a compaction write under way');
			await r.restart();
			// The destroyed copy's write now completes; it must not renew the lease for its next chunk.
			release();
			await waitFor(() => client.connected, 30_000, 'reconnected to the restarted relay');
			client.send('after the restart');
			const sealed = async () => Number((await r.db.query<{ n: string }>('select history_count as n from rooms where id = $1', [roomId]))[0].n);
			await waitFor(async () => (await sealed()) > 0, leaseMs / 2, 'sealed by the next copy well inside a lease');
		} finally {
			release();
			c?.destroy();
			await r.close();
		}
	});
});

describe('epochs', () => {
	it('rolls a worn document over, and carries messages written offline against the old epoch exactly once', { timeout: TEST_TIMEOUT_MS }, async () => {
		const { roomId, a, b } = await twoOnline();
		await sendAll(a, ['before 1', 'before 2']);
		await waitFor(() => b.messages().length === 2, 30_000, 'bob has them');
		b.offline();
		const offline = ['written offline 1', 'written offline 2'];
		for (const text of offline) b.send(text);
		// Enough traffic to compact past the rollover threshold (2 × LIVE_MAX removed).
		const busy = Array.from({ length: 3 * LIVE_MAX + 10 }, (_, i) => `busy ${i}`);
		await sendAll(a, busy);
		await waitFor(async () => (await storedLive(roomId)).epoch > 0, 20_000, 'a new epoch');
		await waitFor(() => a.closeCodes.includes(CloseCode.roomMoved), 30_000, 'alice told the room moved');
		b.online();
		await waitFor(() => offline.every((t) => [...b.written.values()].some((m) => m.text === t && b.acked.has(m.id))), 30_000, 'offline messages acknowledged');
		await waitFor(() => b.closeCodes.includes(CloseCode.roomMoved) && b.connected, 30_000, 'bob moved to the current epoch');
		const texts = (await allMessages(roomId)).map((m) => m.text);
		for (const text of [...offline, 'before 1', ...busy]) expect(texts.filter((t) => t === text)).toHaveLength(1);
		expect(texts).toHaveLength(2 + busy.length + offline.length);
		// Reconnecting again carries nothing twice.
		b.offline();
		b.online();
		await waitFor(() => b.connected, 30_000, 'bob back');
		await waitFor(() => a.messages().length > 0 && b.messages().length === a.messages().length, 30_000, 'same live document');
		expect((await allMessages(roomId)).map((m) => m.text)).toEqual(texts);
		expect(b.messages().map((m) => m.id)).toEqual(a.messages().map((m) => m.id));
	});

	it('acknowledges what it took from a socket before telling it the room moved, so a busy sender appends nothing twice', { timeout: TEST_TIMEOUT_MS }, async () => {
		const { roomId, a, b } = await twoOnline();
		// Both write all the time, so at every rollover some of their messages are taken but not
		// yet committed: the relay commits and acknowledges those before it closes with 4410, or
		// the clients would append them again into the next epoch, which already holds them.
		let n = 0;
		const writer = setInterval(() => {
			for (const c of [a, b]) c.send(`busy ${n++}`);
		}, 3);
		try {
			await waitFor(() => a.closeCodes.filter((c) => c === CloseCode.roomMoved).length >= 3, 60_000, 'three rollovers');
		} finally {
			clearInterval(writer);
		}
		const written = [a, b].flatMap((c) => [...c.written.keys()]);
		await waitFor(() => [a, b].every((c) => c.connected && [...c.written.keys()].every((id) => c.acked.has(id))), 30_000, 'all acknowledged');
		expect([...a.takenUnacknowledged]).toEqual([]);
		expect([...b.takenUnacknowledged]).toEqual([]);
		await waitFor(async () => (await allMessages(roomId)).length >= written.length, 30_000, 'all in the history API');
		const ids = (await allMessages(roomId)).map((m) => m.id);
		expect(ids.length - new Set(ids).size).toBe(0);
		expect(ids.slice().sort()).toEqual(written.slice().sort());
	});

	it('tells a client of a closed epoch what that epoch holds when the room moves on before its carry ends', { timeout: TEST_TIMEOUT_MS }, async () => {
		const [alice, bob] = [await h.account(), await h.account()];
		const roomId = await h.room([alice, bob]);
		const a = client(alice, roomId);
		a.online();
		await waitFor(() => a.connected, 30_000, 'alice connected');
		// Bob's device writes a message the relay takes, but never sees the acknowledgement (its
		// socket went away first: here it simply does not read it).
		const bobDoc = new Y.Doc();
		const mine = chatMessage(bob.id, 'taken, acknowledgement lost');
		bobDoc.getArray('messages').push([mine]);
		const url = `${h.url}/${roomId}?token=${h.token(bob, roomId)}&ext=1`;
		const first = new WebSocket(url);
		await new Promise((resolve) => first.once('open', resolve));
		const update = encoding.createEncoder();
		encoding.writeVarUint(update, MessageType.sync);
		syncProtocol.writeUpdate(update, Y.encodeStateAsUpdate(bobDoc));
		first.send(encoding.toUint8Array(update));
		await waitFor(async () => (await allMessages(roomId)).some((m) => m.id === mine.id), 30_000, 'bob\'s message stored');
		first.close();
		// Alice's traffic seals it into history and rolls the room over.
		await sendAll(a, Array.from({ length: 3 * LIVE_MAX + 10 }, (_, i) => `first ${i}`));
		await waitFor(async () => (await storedLive(roomId)).epoch === 1, 30_000, 'epoch 1');
		expect((await storedLive(roomId)).messages.some((m) => m.id === mine.id)).toBe(false);
		// Bob comes back with his document of epoch 0; before he answers the relay's sync step 1
		// (the carry), the room rolls over again.
		const second = new WebSocket(url);
		const durable = new Map<number, number>();
		let askedForEpoch0 = false;
		second.on('message', (data: Buffer) => {
			const decoder = decoding.createDecoder(new Uint8Array(data));
			const type = decoding.readVarUint(decoder);
			if (type === MessageType.sync && decoding.readVarUint(decoder) === syncProtocol.messageYjsSyncStep1) askedForEpoch0 = true;
			if (type !== MessageType.durable) return;
			for (let n = decoding.readVarUint(decoder); n > 0; n--) {
				const client = decoding.readVarUint(decoder);
				durable.set(client, Math.max(durable.get(client) ?? 0, decoding.readVarUint(decoder)));
			}
		});
		const closed = new Promise<number>((resolve) => second.once('close', resolve));
		await new Promise((resolve) => second.once('open', resolve));
		const step1 = encoding.createEncoder();
		encoding.writeVarUint(step1, MessageType.sync);
		syncProtocol.writeSyncStep1(step1, bobDoc);
		second.send(encoding.toUint8Array(step1));
		await waitFor(() => askedForEpoch0, 30_000, 'the relay asks for what epoch 0 lacks');
		await sendAll(a, Array.from({ length: 3 * LIVE_MAX + 10 }, (_, i) => `second ${i}`));
		expect(await closed).toBe(CloseCode.roomMoved);
		// Without this, bob's client would append the message again into epoch 2 (it is in history).
		expect(durable.get(bobDoc.clientID) ?? 0).toBe(1);
		expect((await allMessages(roomId)).filter((m) => m.id === mine.id)).toHaveLength(1);
	});

	it('rolls an idle, worn room over before unloading it, and a stock client of the old epoch gets 4410', { timeout: TEST_TIMEOUT_MS }, async () => {
		const [alice] = [await h.account()];
		const roomId = await h.room([alice]);
		const a = client(alice, roomId);
		a.online();
		await waitFor(() => a.connected, 30_000, 'connected');
		// Past the limit once: LIVE_MAX × 10% compacted away, then more than half the limit.
		await sendAll(a, Array.from({ length: LIVE_MAX + LIVE_MAX / 2 + 2 }, (_, i) => `idle ${i}`));
		await waitFor(async () => (await storedLive(roomId)).historyCount >= LIVE_MAX / 2, 30_000, 'compacted');
		const oldDoc = new Y.Doc();
		Y.applyUpdate(oldDoc, Y.encodeStateAsUpdate(a.doc));
		a.offline();
		await waitFor(async () => (await storedLive(roomId)).epoch === 1, 30_000, 'rolled over while idle');
		const stock = h.provider(alice, roomId);
		Y.applyUpdate(stock.doc, Y.encodeStateAsUpdate(oldDoc));
		const codes: number[] = [];
		stock.provider.on('connection-close', (event: CloseEvent | null) => {
			if (event) codes.push(event.code);
		});
		await waitFor(() => codes.includes(CloseCode.roomMoved), 30_000, 'stock client told to move');
		stock.provider.destroy();
	});
});

describe('rooms in memory', () => {
	/** The room's subscriptions on the bus: one per copy of the room this relay holds. */
	const copies = (roomId: string): number =>
		(h.bus as unknown as { hub: { channels: Map<string, Set<unknown>> } }).hub.channels.get(`room:${roomId}`)?.size ?? 0;

	it('unloads a room that rolled over after its clients left, and never holds two copies of it', { timeout: TEST_TIMEOUT_MS }, async () => {
		const [alice] = [await h.account()];
		const roomId = await h.room([alice]);
		const real = h.history;
		const original = real.putEntries.bind(real);
		// DynamoDB holds the compaction's writes until the client has left, so the compaction that
		// ends in a rollover outlasts the client's visit.
		let writing = false;
		let release: () => void = () => undefined;
		const held = new Promise<void>((resolve) => (release = resolve));
		(real as { putEntries: HistoryStore['putEntries'] }).putEntries = async (room, entries, options) => {
			writing = true;
			await held;
			return original(room, entries, options);
		};
		try {
			const a = client(alice, roomId);
			a.online();
			await waitFor(() => a.connected, 30_000, 'connected');
			await sendAll(a, Array.from({ length: 3 * LIVE_MAX + 10 }, (_, i) => `leaving ${i}`));
			await waitFor(() => writing, 30_000, 'a compaction under way');
			a.offline();
			release();
			await waitFor(async () => (await storedLive(roomId)).epoch > 0, 20_000, 'rolled over');
			await waitFor(() => copies(roomId) === 0, 30_000, 'the room unloaded');
			a.online();
			await waitFor(() => a.connected, 30_000, 'back');
			expect(copies(roomId)).toBe(1);
			a.offline();
			await waitFor(() => copies(roomId) === 0, 30_000, 'unloaded again');
		} finally {
			release();
			(real as { putEntries: HistoryStore['putEntries'] }).putEntries = original;
		}
	});
});

describe('group deletion', () => {
	it('purges history from DynamoDB and PostgreSQL in batches, resuming after a crash', { timeout: TEST_TIMEOUT_MS }, async () => {
		const [alice] = [await h.account()];
		const roomId = await h.room([alice]);
		const a = client(alice, roomId);
		a.online();
		await waitFor(() => a.connected, 30_000, 'connected');
		await sendAll(a, Array.from({ length: 3 * LIVE_MAX }, (_, i) => `doomed ${i}`));
		// Past one item's worth of messages, history is two items at least.
		await waitFor(async () => (await storedLive(roomId)).historyCount > HISTORY_ITEM_MESSAGES, 30_000, 'compacted');
		a.offline();
		await markRoomDeleted(h.db, roomId);
		await publishControl(h.bus, { type: 'room-deleted', roomId });
		const log = { info: () => undefined, error: () => undefined };
		// The purge waits until no compaction of the room can still write to DynamoDB.
		const leaseFree = async (): Promise<boolean> =>
			(await h.db.query('select 1 from rooms where id = $1 and (compactor_until is null or compactor_until <= now())', [roomId])).length === 1;
		await waitFor(leaseFree, 30_000, 'the compaction lease handed back');
		// The first purge dies after one batch of DynamoDB deletes.
		let batches = 0;
		const crashing: HistoryStore = Object.create(h.history, {
			purgeBatch: {
				value: async (room: string, limit: number) => {
					if (++batches > 1) throw new Error('process killed (simulated)');
					return h.history.purgeBatch(room, limit);
				}
			}
		});
		await expect(purgeRoom({ db: h.db, history: crashing, log }, roomId, 1)).rejects.toThrow(/killed/);
		expect((await h.history.pageBefore(roomId, null, 100)).entries.length).toBeGreaterThan(0);
		expect(await h.db.query('select 1 from rooms where id = $1', [roomId])).toHaveLength(1);
		// The next run (any instance) finishes the job.
		expect(await purgeRoom({ db: h.db, history: h.history, log }, roomId, 5)).toBe(true);
		expect((await h.history.pageBefore(roomId, null, 100)).entries).toEqual([]);
		expect(await h.db.query('select 1 from room_updates where room_id = $1', [roomId])).toEqual([]);
		// What is left is an empty row that says the room was deleted.
		expect(await h.db.query('select name, last_message, purged_at is not null as purged from rooms where id = $1', [roomId])).toEqual([
			{ name: '', last_message: null, purged: true }
		]);
		expect(await purgeRoom({ db: h.db, history: h.history, log }, roomId, 5)).toBe(false);
	});
});

describe('room previews', () => {
	it('stores any message text as the room preview: a cut emoji or a NUL never stalls the room', { timeout: TEST_TIMEOUT_MS }, async () => {
		const { roomId, a, b } = await twoOnline();
		// Cutting at 139 UTF-16 units would split the emoji's surrogate pair; jsonb refuses both.
		const long = `${'a'.repeat(138)}😀${'b'.repeat(20)}`;
		await sendAll(a, [long]);
		await sendAll(b, ['with a \u0000 inside']);
		const [row] = await h.db.query<{ last_message: { text: string } }>('select last_message from rooms where id = $1', [roomId]);
		expect(row.last_message.text).toBe('with a  inside');
		const longer = `${'c'.repeat(138)}😀${'d'.repeat(20)}`;
		await sendAll(a, [longer]);
		const [again] = await h.db.query<{ last_message: { text: string } }>('select last_message from rooms where id = $1', [roomId]);
		expect(again.last_message.text).toBe(`${'c'.repeat(138)}😀…`);
	});
});
