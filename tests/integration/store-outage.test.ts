/**
 * Accepted updates are forwarded at once and acknowledged only once stored. While PostgreSQL
 * refuses writes they wait in the relay: readers already have them, nothing is acknowledged;
 * when it answers again they are stored and acknowledged, none lost. A relay that dies before it
 * stores what it forwarded leaves readers holding a message the room lost: the first of them to
 * come back is told to start over (4409), and the sender's own resend stores the message once.
 * (Outages are simulated by a wrapper that makes the real database's transactions fail.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/lib/server/db/database';
import { MemoryBus } from '../../src/lib/server/bus/memory-bus';
import { pageMessages } from '../../src/lib/server/messages';
import { MemoryPresence } from '../../src/lib/server/presence/memory-presence';
import { RelayTokenSigner } from '../../src/lib/server/relay-token';
import { createGroupRoom } from '../../src/lib/server/rooms';
import { createLogger } from '../../sync-server/log';
import { Relay } from '../../sync-server/relay';
import * as decoding from 'lib0/decoding';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { CloseCode, MessageType } from '../../sync-server/protocol';
import { RawClient } from '../helpers/attacker';
import { chatMessage, connectStockProvider, createTestAccount, openTestDatabase, type StockClient, type TestAccount, TestDynamo } from '../helpers/relay';
import { holdsFor, waitFor } from '../helpers/wait';

let real: Database;
let down = false;
let relay: Relay;
let url = '';
/** A second relay on the same database whose writes never succeed: it dies with them unstored. */
let doomedDown = false;
let doomed: Relay;
let doomedUrl = '';
const doomedBus = new MemoryBus();
let tokens: RelayTokenSigner;
const bus = new MemoryBus();
const providers: WebsocketProvider[] = [];

let dynamo: TestDynamo;

beforeAll(async () => {
	dynamo = await TestDynamo.start();
	real = await openTestDatabase();
	tokens = await RelayTokenSigner.load(real);
	const deps = { history: dynamo.history, presence: new MemoryPresence(), tokens, allowedOrigins: [], log: createLogger('silent') };
	relay = new Relay({ ...deps, db: flakyDatabase(() => down), bus });
	url = `ws://127.0.0.1:${await relay.listen(0, '127.0.0.1')}`;
	doomed = new Relay({ ...deps, db: flakyDatabase(() => doomedDown), bus: doomedBus });
	doomedUrl = `ws://127.0.0.1:${await doomed.listen(0, '127.0.0.1')}`;
});

afterAll(async () => {
	for (const p of providers) p.destroy();
	doomedDown = false; // so that closing it does not wait out its time limit
	await doomed.close();
	await relay.close();
	await doomedBus.close();
	await bus.close();
	await real.close();
	await dynamo?.close();
});

/** The real database, failing every statement while `isDown()`. */
function flakyDatabase(isDown: () => boolean): Database {
	const outage = () => Promise.reject(new Error('connection refused (simulated outage)'));
	return {
		kind: real.kind,
		query: (sql, params) => (isDown() ? outage() : real.query(sql, params)),
		transaction: (work) => (isDown() ? outage() : real.transaction(work)),
		close: () => real.close()
	};
}


const member = () => createTestAccount(real);

const token = (who: TestAccount, roomId: string) => tokens.sign({ userId: who.id, roomId, sessionId: who.sessionId, exp: Date.now() + 60_000 });

function connect(who: TestAccount, roomId: string, relayUrl = url): StockClient {
	const client = connectStockProvider(relayUrl, roomId, { token: token(who, roomId) });
	providers.push(client.provider);
	return client;
}

/** A stock provider that goes on with the document it already has (as after a relay vanished). */
function reconnect(who: TestAccount, roomId: string, doc: Y.Doc): WebsocketProvider {
	const provider = new WebsocketProvider(url, roomId, doc, {
		params: { token: token(who, roomId) },
		WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
		disableBc: true,
		maxBackoffTime: 200
	});
	providers.push(provider);
	return provider;
}

/** The clocks the relay's `durable` frames have reported to `client`, kept up to date. */
function durableClocks(client: RawClient): Map<number, number> {
	const clocks = new Map<number, number>();
	client.ws.on('message', (data: Buffer) => {
		const decoder = decoding.createDecoder(new Uint8Array(data));
		if (decoding.readVarUint(decoder) !== MessageType.durable) return;
		for (let n = decoding.readVarUint(decoder); n > 0; n--) clocks.set(decoding.readVarUint(decoder), decoding.readVarUint(decoder));
	});
	return clocks;
}

const texts = (doc: Y.Doc) => doc.getArray<{ text: string }>('messages').toArray().map((m) => m.text);

describe('a PostgreSQL outage', () => {
	it('forwards accepted messages at once, acknowledges them once stored, and loses none', { timeout: 30_000 }, async () => {
		const alice = await member();
		const bob = await member();
		const roomId = await createGroupRoom(real, alice.id, 'outage', [bob.id]);
		const a = new RawClient(`${url}/${roomId}?token=${token(alice, roomId)}&ext=1`);
		const acked = durableClocks(a);
		await a.opened;
		const b = connect(bob, roomId);
		await waitFor(() => b.provider.synced && a.received > 0, 5000, 'synced');

		down = true;
		const sent: string[] = [];
		for (let i = 0; i < 5; i++) {
			const before = Y.encodeStateVector(a.doc);
			a.doc.getArray('messages').push([chatMessage(alice.id, `during outage ${i}`)]);
			sent.push(`during outage ${i}`);
			a.sendUpdate(Y.encodeStateAsUpdate(a.doc, before));
		}
		const lastClock = Y.getState(a.doc.store, a.doc.clientID) - 1;
		// Readers have them at once; nothing is stored, so nothing is acknowledged.
		await waitFor(() => texts(b.doc).length === 5, 5000, 'bob has them before they are stored');
		expect(texts(b.doc)).toEqual(sent);
		await holdsFor(() => (acked.get(a.doc.clientID) ?? 0) <= lastClock, 600, 'no acknowledgement while nothing is stored');
		expect((await pageMessages(real, dynamo.history, roomId, null, 10)).messages).toEqual([]);

		down = false;
		await waitFor(() => (acked.get(a.doc.clientID) ?? 0) > lastClock, 15_000, 'acknowledged after the outage');
		expect((await pageMessages(real, dynamo.history, roomId, null, 10)).messages.map((m) => m.text)).toEqual(sent);
		a.close();
	});
});

describe('a relay lost between forwarding and committing', () => {
	it("tells a reader holding the lost message to start over; the sender's resend stores it once", { timeout: 30_000 }, async () => {
		const alice = await member();
		const bob = await member();
		const roomId = await createGroupRoom(real, alice.id, 'lost', [bob.id]);
		const a = connect(alice, roomId, doomedUrl);
		const b = connect(bob, roomId, doomedUrl);
		await waitFor(() => a.provider.synced && b.provider.synced, 5000, 'synced');

		doomedDown = true;
		a.doc.getArray('messages').push([chatMessage(alice.id, 'forwarded, never stored')]);
		await waitFor(() => texts(b.doc).length === 1, 5000, 'bob has it');
		// The relay is gone for its clients before it could store the message.
		a.provider.destroy();
		b.provider.destroy();
		expect((await pageMessages(real, dynamo.history, roomId, null, 10)).messages).toEqual([]);

		// Bob comes back first, to another relay, with alice's message that no store has.
		const bobAgain = reconnect(bob, roomId, b.doc);
		const closed = await new Promise<{ code: number; reason: string }>((resolve) =>
			bobAgain.on('connection-close', (event) => event && resolve({ code: event.code, reason: event.reason }))
		);
		bobAgain.destroy();
		expect(closed.code).toBe(CloseCode.resync);
		expect((await pageMessages(real, dynamo.history, roomId, null, 10)).messages).toEqual([]);

		// Alice, never told it was stored, still has it and sends it again; bob starts over.
		reconnect(alice, roomId, a.doc);
		await waitFor(async () => (await pageMessages(real, dynamo.history, roomId, null, 10)).messages.length > 0, 10_000, 'stored');
		const fresh = connect(bob, roomId);
		await waitFor(() => fresh.provider.synced && texts(fresh.doc).length === 1, 5000, 'bob on a fresh document');
		expect(texts(fresh.doc)).toEqual(['forwarded, never stored']);
		expect((await pageMessages(real, dynamo.history, roomId, null, 10)).messages.map((m) => m.text)).toEqual(['forwarded, never stored']);
	});
});
