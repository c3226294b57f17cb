/**
 * An in-process relay on port 0 against a real database (PGlite in memory, or the PostgreSQL of
 * DATABASE_URL) with the in-process bus, plus helpers that make accounts, rooms and clients.
 */
import { WebsocketProvider } from 'y-websocket';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { ulid } from 'ulid';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryBus } from '../../src/lib/server/bus/memory-bus';
import { DynamoHistoryStore } from '../../src/lib/server/history/dynamo-history';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../src/lib/server/history/embedded-dynamo';
import type { HistoryStore } from '../../src/lib/server/history/history-store';
import type { Bus } from '../../src/lib/server/bus/bus';
import type { Database } from '../../src/lib/server/db/database';
import { migrate } from '../../src/lib/server/db/migrate';
import { openPglite } from '../../src/lib/server/db/pglite';
import { openPostgres } from '../../src/lib/server/db/postgres';
import { MIGRATIONS_DIR } from '../../src/lib/server/boot';
import { MemoryPresence } from '../../src/lib/server/presence/memory-presence';
import { RelayTokenSigner } from '../../src/lib/server/relay-token';
import { createGroupRoom } from '../../src/lib/server/rooms';
import { createSession, generateSessionToken, sessionIdFromToken } from '../../src/lib/server/sessions';
import { createUser } from '../../src/lib/server/users';
import { createLogger } from '../../sync-server/log';
import { Relay, type RelayOptions } from '../../sync-server/relay';
import { uniqueName } from './api';

export const TEST_ORIGIN = 'http://app.test';

export async function openTestDatabase(): Promise<Database> {
	const db = process.env.DATABASE_URL ? await openPostgres(process.env.DATABASE_URL, 4) : await openPglite(null);
	await migrate(db, MIGRATIONS_DIR);
	return db;
}

/** An embedded DynamoDB for one test file: stop() and start() again simulate an outage. */
export class TestDynamo {
	readonly history: DynamoHistoryStore;
	readonly #dir: string;
	readonly #port: number;
	#server: EmbeddedDynamo | null;

	private constructor(dir: string, server: EmbeddedDynamo) {
		this.#dir = dir;
		this.#server = server;
		this.#port = Number(new URL(server.endpoint).port);
		// Fail fast while stopped: the relay's own backoff is what is under test, not the SDK's.
		this.history = new DynamoHistoryStore({ endpoint: server.endpoint, region: 'us-east-1', table: 'history_test', maxAttempts: 1 });
	}

	static async start(): Promise<TestDynamo> {
		const dir = await mkdtemp(path.join(tmpdir(), 'relay-dynamo-'));
		const dynamo = new TestDynamo(dir, await startEmbeddedDynamo(dir));
		await dynamo.history.ensureTable();
		return dynamo;
	}

	/** Stops the server; requests fail until start(). */
	async stop(): Promise<void> {
		const server = this.#server;
		this.#server = null;
		await server?.close();
	}

	async start(): Promise<void> {
		this.#server ??= await startEmbeddedDynamo(this.#dir, this.#port);
	}

	async close(): Promise<void> {
		await this.history.close();
		await this.stop();
		await rm(this.#dir, { recursive: true, force: true });
	}
}

export interface TestAccount {
	id: string;
	name: string;
	sessionToken: string;
	sessionId: string;
}

export class RelayHarness {
	readonly db: Database;
	readonly bus: Bus;
	readonly tokens: RelayTokenSigner;
	readonly dynamo: TestDynamo;
	relay: Relay;
	url = '';
	readonly #providers: WebsocketProvider[] = [];

	private constructor(db: Database, bus: Bus, tokens: RelayTokenSigner, dynamo: TestDynamo, options: RelayOptions) {
		this.#options = options;
		this.db = db;
		this.bus = bus;
		this.tokens = tokens;
		this.dynamo = dynamo;
		this.relay = this.#newRelay();
	}

	readonly #options: RelayOptions;

	get history(): HistoryStore {
		return this.dynamo.history;
	}

	static async start(options: RelayOptions = {}): Promise<RelayHarness> {
		const database = await openTestDatabase();
		const tokens = await RelayTokenSigner.load(database);
		const harness = new RelayHarness(database, new MemoryBus(), tokens, await TestDynamo.start(), options);
		harness.url = `ws://127.0.0.1:${await harness.relay.listen(0, '127.0.0.1')}`;
		return harness;
	}

	#newRelay(): Relay {
		const deps = {
			db: this.db,
			bus: this.bus,
			history: this.dynamo.history,
			presence: new MemoryPresence(),
			tokens: this.tokens,
			allowedOrigins: [TEST_ORIGIN],
			log: createLogger(process.env.TEST_RELAY_LOG === 'info' ? 'info' : 'silent')
		};
		return new Relay(deps, this.#options);
	}

	/** Closes the relay and starts a fresh one on the same database (a restart). */
	async restart(): Promise<void> {
		await this.relay.close();
		this.relay = this.#newRelay();
		this.url = `ws://127.0.0.1:${await this.relay.listen(0, '127.0.0.1')}`;
	}

	account(): Promise<TestAccount> {
		return createTestAccount(this.db);
	}

	async room(members: TestAccount[]): Promise<string> {
		return createGroupRoom(this.db, members[0].id, 'test room', members.slice(1).map((m) => m.id));
	}

	token(account: TestAccount, roomId: string, ttlMs = 60_000): string {
		return this.tokens.sign({ userId: account.id, roomId, sessionId: account.sessionId, exp: Date.now() + ttlMs });
	}

	/** A stock y-websocket provider, as a bot in Node would use it. */
	provider(account: TestAccount, roomId: string, params: Record<string, string> = {}): StockClient {
		const client = connectStockProvider(this.url, roomId, { token: this.token(account, roomId), ...params });
		this.#providers.push(client.provider);
		return client;
	}

	async close(): Promise<void> {
		for (const p of this.#providers) p.destroy();
		await this.relay.close();
		await this.bus.close();
		await this.db.close();
		await this.dynamo.close();
	}
}

export interface StockClient {
	doc: Y.Doc;
	provider: WebsocketProvider;
}

/** An account with a live session, made directly in the database. */
export async function createTestAccount(db: Database): Promise<TestAccount> {
	const name = uniqueName('u');
	const user = (await createUser(db, { username: name, displayName: name, passwordHash: 'unused' }))!;
	const sessionToken = generateSessionToken();
	await createSession(db, sessionToken, user.id);
	return { id: user.id, name, sessionToken, sessionId: sessionIdFromToken(sessionToken) };
}

/** A stock y-websocket provider in Node (the caller destroys it). */
export function connectStockProvider(url: string, roomId: string, params: Record<string, string>): StockClient {
	const doc = new Y.Doc();
	const provider = new WebsocketProvider(url, roomId, doc, {
		params,
		WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
		disableBc: true,
		maxBackoffTime: 200
	});
	return { doc, provider };
}

export function chatMessage(author: string, text: string) {
	return { id: ulid(), author, ts: Date.now(), kind: 'text' as const, text };
}

/** Opens a raw socket and resolves with the HTTP status of a refused upgrade, or 101. */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(url, { headers });
		ws.on('open', () => {
			ws.close();
			resolve({ status: 101, body: '' });
		});
		ws.on('unexpected-response', (_req, res) => {
			let body = '';
			res.on('data', (c) => (body += c));
			res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
		});
		ws.on('error', (error) => {
			if (!String(error.message).includes('Unexpected server response')) reject(error);
		});
	});
}
