/**
 * Compaction and epochs with a room open on two relay instances at once (one database, one
 * DynamoDB, linked by the bus: Redis when REDIS_URL is set): one instance compacts at a time,
 * rollovers move the clients of both, and the history holds every message exactly once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../src/lib/server/bus/bus';
import { createMemoryBusHub, MemoryBus } from '../../src/lib/server/bus/memory-bus';
import { RedisBus } from '../../src/lib/server/bus/redis-bus';
import type { Database } from '../../src/lib/server/db/database';
import { pageMessages, type Cursor } from '../../src/lib/server/messages';
import { MemoryPresence } from '../../src/lib/server/presence/memory-presence';
import { RelayTokenSigner } from '../../src/lib/server/relay-token';
import { createGroupRoom } from '../../src/lib/server/rooms';
import { createLogger } from '../../sync-server/log';
import { CloseCode } from '../../sync-server/protocol';
import { Relay } from '../../sync-server/relay';
import { ChatClient } from '../helpers/chat-client';
import { createTestAccount, openTestDatabase, TestDynamo } from '../helpers/relay';
import { waitFor } from '../helpers/wait';

/** Each test waits on compaction and rollovers, which a loaded CI machine can slow several-fold. */
const TEST_TIMEOUT_MS = 120_000;

const LIVE_MAX = 10;

let db: Database;
let dynamo: TestDynamo;
let tokens: RelayTokenSigner;
const buses: Bus[] = [];
const relays: Relay[] = [];
const urls: string[] = [];
const clients: ChatClient[] = [];

/** Room traffic relay A's subscriber loses while set (Redis pub/sub is at most once). */
let deafA = false;

async function startRelay(bus: Bus): Promise<string> {
	buses.push(bus);
	const relay = new Relay(
		{ db, bus, history: dynamo.history, presence: new MemoryPresence(), tokens, allowedOrigins: [], log: createLogger('silent') },
		{ liveMessagesMax: LIVE_MAX, rollover: { connected: 3 * LIVE_MAX, idle: LIVE_MAX }, limits: { updatesBurst: 10_000, updatesPerSecond: 10_000 } }
	);
	relays.push(relay);
	return `ws://127.0.0.1:${await relay.listen(0, '127.0.0.1')}`;
}

beforeAll(async () => {
	db = await openTestDatabase();
	dynamo = await TestDynamo.start();
	tokens = await RelayTokenSigner.load(db);
	const hub = createMemoryBusHub();
	for (let i = 0; i < 2; i++) {
		const bus = process.env.REDIS_URL ? new RedisBus({ url: process.env.REDIS_URL }) : new MemoryBus(hub);
		if (i === 0) {
			const subscribe = bus.subscribe.bind(bus);
			(bus as { subscribe: Bus['subscribe'] }).subscribe = (channel, handler) =>
				subscribe(channel, (payload) => {
					if (!(deafA && channel.startsWith('room:'))) handler(payload);
				});
		}
		urls.push(await startRelay(bus));
	}
});

afterAll(async () => {
	for (const c of clients) c.destroy();
	for (const relay of relays) await relay.close();
	for (const bus of buses) await bus.close();
	await db?.close();
	await dynamo?.close();
});

async function history(roomId: string): Promise<string[]> {
	const pages: string[][] = [];
	let cursor: Cursor | null = null;
	for (;;) {
		const page = await pageMessages(db, dynamo.history, roomId, cursor, 9);
		pages.unshift(page.messages.map((m) => m.id));
		if (page.nextBefore === null) return pages.flat();
		const raw = JSON.parse(Buffer.from(page.nextBefore, 'base64url').toString()) as { b: string; p: number };
		cursor = { before: raw.b, position: raw.p };
	}
}

/** A new room with one member's client on relay A and the other's on relay B, both synced. */
async function oneOnEach(name: string): Promise<{ roomId: string; a: ChatClient; b: ChatClient }> {
	const [ana, ben] = [await createTestAccount(db), await createTestAccount(db)];
	const roomId = await createGroupRoom(db, ana.id, name, [ben.id]);
	const token = (account: typeof ana) => tokens.sign({ userId: account.id, roomId, sessionId: account.sessionId, exp: Date.now() + 60_000 });
	const a = new ChatClient(ana.id, () => `${urls[0]}/${roomId}?token=${token(ana)}`);
	const b = new ChatClient(ben.id, () => `${urls[1]}/${roomId}?token=${token(ben)}`);
	clients.push(a, b);
	a.online();
	b.online();
	await waitFor(() => a.connected && b.connected, 30_000, 'connected to different relays');
	return { roomId, a, b };
}

it('keeps a message another relay acknowledged when this one rolls over without having seen it', { timeout: TEST_TIMEOUT_MS }, async () => {
	const { roomId, a, b } = await oneOnEach('two relays, one deaf');
	deafA = true;
	try {
		const missed = b.send('acknowledged by B, never seen by A');
		await waitFor(() => b.acked.has(missed.id), 30_000, 'acknowledged');
		// A compacts and rolls the room over from its own copy, which lacks Ben's message.
		for (let i = 0; i < 4 * LIVE_MAX; i++) a.send(`ana ${i}`);
		await waitFor(async () => (await db.query<{ epoch: number }>('select epoch from rooms where id = $1', [roomId]))[0].epoch > 0, 20_000, 'rolled over');
		await waitFor(() => a.connected && [...a.written.keys()].every((id) => a.acked.has(id)), 20_000, 'ana acknowledged');
		await waitFor(async () => (await history(roomId)).includes(missed.id), 30_000, "ben's message in the history");
		const ids = await history(roomId);
		expect(new Set(ids).size).toBe(ids.length);
		for (const id of [...a.written.keys(), missed.id]) expect(ids).toContain(id);
	} finally {
		deafA = false;
	}
});

it('compacts once and moves both instances to each new epoch; every message is kept exactly once', { timeout: TEST_TIMEOUT_MS }, async () => {
	const { roomId, a, b } = await oneOnEach('two relays');
	for (let i = 0; i < 60; i++) (i % 2 ? b : a).send(`two relays ${i}`);
	const all = () => [...a.written.keys(), ...b.written.keys()];
	await waitFor(() => a.connected && b.connected && all().every((id) => a.acked.has(id) || b.acked.has(id)), 20_000, 'all acknowledged');
	// Both sides were moved at least once (a rollover closes the sockets of every instance).
	await waitFor(() => a.closeCodes.includes(CloseCode.roomMoved) && b.closeCodes.includes(CloseCode.roomMoved), 30_000, 'both moved').catch((error: Error) => {
		throw new Error(`${error.message} (close codes: A ${a.closeCodes.join()}, B ${b.closeCodes.join()})`);
	});
	const [{ epoch }] = await db.query<{ epoch: number }>('select epoch from rooms where id = $1', [roomId]);
	expect(epoch).toBeGreaterThan(0);
	let ids: string[] = [];
	await waitFor(
		async () => {
			const live = a.messages().map((m) => m.id);
			if (!a.connected || !b.connected || live.length === 0) return false;
			if (b.messages().map((m) => m.id).join() !== live.join()) return false;
			ids = await history(roomId);
			return ids.slice(ids.length - live.length).join() === live.join();
		},
		20_000,
		'both clients show the tail of the history'
	);
	expect(new Set(ids).size).toBe(ids.length);
	expect(ids.slice().sort()).toEqual(all().sort());
});

it('compacts what reaches the lease holder only through the bus', { timeout: TEST_TIMEOUT_MS }, async () => {
	const { roomId, a, b } = await oneOnEach('writes through the other relay');
	const sealed = async () => Number((await db.query<{ n: string }>('select history_count as n from rooms where id = $1', [roomId]))[0].n);
	const owner = async () => (await db.query<{ compactor: string | null }>('select compactor from rooms where id = $1', [roomId]))[0].compactor;
	// Ana's messages make relay A compact, so A holds the lease for the next minute.
	for (let i = 0; i <= LIVE_MAX; i++) a.send(`ana ${i}`);
	await waitFor(async () => (await sealed()) > 0, 30_000, 'first compaction');
	const holder = await owner();
	expect(holder?.startsWith(`${buses[0].instanceId}/`)).toBe(true);
	// Every later message reaches relay A only through the bus; B cannot take the lease. Too few
	// to roll over, so the same copy of the room on A holds the lease throughout.
	for (let i = 0; i < 2 * LIVE_MAX; i++) b.send(`ben ${i}`);
	await waitFor(() => b.connected && [...b.written.keys()].every((id) => b.acked.has(id)), 30_000, 'ben acknowledged');
	await waitFor(async () => (await sealed()) >= 2 * LIVE_MAX, 30_000, "ben's messages sealed");
	expect(await owner()).toBe(holder);
	expect((await db.query<{ epoch: number }>('select epoch from rooms where id = $1', [roomId]))[0].epoch).toBe(0);
	const ids = await history(roomId);
	expect(new Set(ids).size).toBe(ids.length);
	expect(ids.slice().sort()).toEqual([...a.written.keys(), ...b.written.keys()].sort());
});
