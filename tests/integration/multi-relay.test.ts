/**
 * Two relay instances on one database, linked by the bus (Redis when REDIS_URL is set, else two
 * in-process buses sharing a hub): clients on different instances talk, the update is stored
 * once, and a removal closes sockets on every instance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import type { WebsocketProvider } from 'y-websocket';
import type { Bus } from '../../src/lib/server/bus/bus';
import { publishControl } from '../../src/lib/server/bus/control';
import { createMemoryBusHub, MemoryBus } from '../../src/lib/server/bus/memory-bus';
import { RedisBus } from '../../src/lib/server/bus/redis-bus';
import type { Database } from '../../src/lib/server/db/database';
import { pageMessages } from '../../src/lib/server/messages';
import { MemoryPresence } from '../../src/lib/server/presence/memory-presence';
import { RelayTokenSigner } from '../../src/lib/server/relay-token';
import { createGroupRoom, removeMember } from '../../src/lib/server/rooms';
import { createLogger } from '../../sync-server/log';
import { CloseCode } from '../../sync-server/protocol';
import { Relay } from '../../sync-server/relay';
import { chatMessage, connectStockProvider, createTestAccount, openTestDatabase, type StockClient, type TestAccount, TestDynamo } from '../helpers/relay';
import { waitFor } from '../helpers/wait';

let db: Database;
let tokens: RelayTokenSigner;
const buses: Bus[] = [];
const relays: Relay[] = [];
const urls: string[] = [];
const providers: WebsocketProvider[] = [];

let dynamo: TestDynamo;

beforeAll(async () => {
	dynamo = await TestDynamo.start();
	db = await openTestDatabase();
	tokens = await RelayTokenSigner.load(db);
	const hub = createMemoryBusHub();
	for (let i = 0; i < 2; i++) {
		const bus = process.env.REDIS_URL ? new RedisBus({ url: process.env.REDIS_URL }) : new MemoryBus(hub);
		buses.push(bus);
		const relay = new Relay({ db, bus, history: dynamo.history, presence: new MemoryPresence(), tokens, allowedOrigins: [], log: createLogger('silent') });
		relays.push(relay);
		urls.push(`ws://127.0.0.1:${await relay.listen(0, '127.0.0.1')}`);
	}
});

afterAll(async () => {
	await dynamo?.close();
	for (const p of providers) p.destroy();
	for (const relay of relays) await relay.close();
	for (const bus of buses) await bus.close();
	await db.close();
});


const account = () => createTestAccount(db);

function connect(instance: number, who: TestAccount, roomId: string): StockClient {
	const token = tokens.sign({ userId: who.id, roomId, sessionId: who.sessionId, exp: Date.now() + 60_000 });
	const client = connectStockProvider(urls[instance], roomId, { token });
	providers.push(client.provider);
	return client;
}

const texts = (doc: Y.Doc) => doc.getArray<{ text: string }>('messages').toArray().map((m) => m.text);

describe(`two relays linked by ${process.env.REDIS_URL ? 'Redis' : 'the in-process bus'}`, () => {
	it('carries messages and awareness between clients on different instances, storing each update once', async () => {
		const alice = await account();
		const bob = await account();
		const roomId = await createGroupRoom(db, alice.id, 'split', [bob.id]);
		const a = connect(0, alice, roomId);
		const b = connect(1, bob, roomId);
		await waitFor(() => a.provider.synced && b.provider.synced, 5000, 'both synced');
		a.doc.getArray('messages').push([chatMessage(alice.id, 'across instances')]);
		await waitFor(() => texts(b.doc).includes('across instances'), 5000, 'bob receives via the bus');
		b.doc.getArray('messages').push([chatMessage(bob.id, 'and back')]);
		await waitFor(() => texts(a.doc).includes('and back'), 5000, 'alice receives via the bus');

		a.provider.awareness.setLocalStateField('typing', true);
		await waitFor(() => b.provider.awareness.getStates().get(a.doc.clientID)?.typing === true, 5000, 'awareness crosses');
		expect(b.provider.awareness.getStates().get(a.doc.clientID)?.user).toEqual({ id: alice.id, name: expect.any(String) });

		const stored = await db.query<{ n: number }>('select count(*)::int as n from room_updates where room_id = $1', [roomId]);
		// One row per accepted client update: neither instance stored the other's update again.
		expect(stored[0].n).toBe(2);
		expect((await pageMessages(db, dynamo.history, roomId, null, 10)).messages.map((m) => m.text)).toEqual(texts(a.doc));
	});

	it('closes a removed member\'s sockets on every instance within a second', async () => {
		const alice = await account();
		const bob = await account();
		const roomId = await createGroupRoom(db, alice.id, 'kick', [bob.id]);
		const onFirst = connect(0, bob, roomId);
		const onSecond = connect(1, bob, roomId);
		await waitFor(() => onFirst.provider.wsconnected && onSecond.provider.wsconnected, 5000, 'bob on both');
		const codes: number[] = [];
		for (const p of [onFirst.provider, onSecond.provider]) {
			p.on('connection-close', (event: CloseEvent | null) => {
				codes.push(event?.code ?? 0);
				p.shouldConnect = false; // a removed member's client stops; no reconnect noise
			});
		}
		const started = Date.now();
		await removeMember(db, roomId, bob.id);
		await publishControl(buses[0], { type: 'member-removed', roomId, userId: bob.id });
		await waitFor(() => codes.length === 2, 1000, 'both sockets closed');
		expect(codes).toEqual([CloseCode.forbidden, CloseCode.forbidden]);
		expect(Date.now() - started).toBeLessThan(1000);
	});
});
