/**
 * While PostgreSQL refuses writes, accepted updates wait: no one else sees them and nothing is
 * acknowledged; when it answers again they are stored, forwarded and acknowledged, none lost.
 * (The outage is simulated by a wrapper that makes the real database's transactions fail.)
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
import type { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { chatMessage, connectStockProvider, createTestAccount, openTestDatabase, type StockClient, type TestAccount, TestDynamo } from '../helpers/relay';
import { holdsFor, waitFor } from '../helpers/wait';

let real: Database;
let down = false;
let relay: Relay;
let url = '';
let tokens: RelayTokenSigner;
const bus = new MemoryBus();
const providers: WebsocketProvider[] = [];

let dynamo: TestDynamo;

beforeAll(async () => {
	dynamo = await TestDynamo.start();
	real = await openTestDatabase();
	tokens = await RelayTokenSigner.load(real);
	const flaky: Database = {
		kind: real.kind,
		query: (sql, params) => (down ? Promise.reject(new Error('connection refused (simulated outage)')) : real.query(sql, params)),
		transaction: (work) => (down ? Promise.reject(new Error('connection refused (simulated outage)')) : real.transaction(work)),
		close: () => real.close()
	};
	relay = new Relay({ db: flaky, bus, history: dynamo.history, presence: new MemoryPresence(), tokens, allowedOrigins: [], log: createLogger('silent') });
	url = `ws://127.0.0.1:${await relay.listen(0, '127.0.0.1')}`;
});

afterAll(async () => {
	await dynamo?.close();
	for (const p of providers) p.destroy();
	await relay.close();
	await bus.close();
	await real.close();
});


const member = () => createTestAccount(real);

function connect(who: TestAccount, roomId: string): StockClient {
	const token = tokens.sign({ userId: who.id, roomId, sessionId: who.sessionId, exp: Date.now() + 60_000 });
	const client = connectStockProvider(url, roomId, { token });
	providers.push(client.provider);
	return client;
}

const texts = (doc: Y.Doc) => doc.getArray<{ text: string }>('messages').toArray().map((m) => m.text);

describe('a PostgreSQL outage', () => {
	it('holds accepted messages back until they are stored, then delivers every one', { timeout: 30_000 }, async () => {
		const alice = await member();
		const bob = await member();
		const roomId = await createGroupRoom(real, alice.id, 'outage', [bob.id]);
		const a = connect(alice, roomId);
		const b = connect(bob, roomId);
		await waitFor(() => a.provider.synced && b.provider.synced, 5000, 'synced');

		down = true;
		for (let i = 0; i < 5; i++) a.doc.getArray('messages').push([chatMessage(alice.id, `during outage ${i}`)]);
		// Not forwarded while they cannot be stored.
		await holdsFor(() => texts(b.doc).length === 0, 600, 'bob sees nothing unstored');
		expect((await pageMessages(real, dynamo.history, roomId, null, 10)).messages).toEqual([]);

		down = false;
		await waitFor(() => texts(b.doc).length === 5, 15_000, 'delivered after the outage');
		expect(texts(b.doc)).toEqual(texts(a.doc));
		expect((await pageMessages(real, dynamo.history, roomId, null, 10)).messages.map((m) => m.text)).toEqual(texts(a.doc));
	});
});
