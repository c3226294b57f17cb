/**
 * Fills a room with realistic history through the real write path: accounts, the room and sync
 * descriptors over the HTTP API, then messages over the relay's WebSocket (y-websocket protocol,
 * with the `durable` extension to know when everything is stored).
 *
 *   npm run seed -- --url http://127.0.0.1:3000 --messages 100000 [--writers 8]
 *   npm run seed -- --url … --messages 5000 --room <id> --username u --password p
 *
 * Without --room it signs up a few writer accounts, creates a group of them and prints the
 * credentials and the room id. The relay allows each socket a burst of 100 updates and 20 a
 * second (docs/protocol.md), so each update carries up to 50 messages, several writer sockets run
 * in parallel, and every batch is written under a fresh Yjs client id (the relay binds a client
 * id to the account that first used it, so ids are never shared across accounts).
 *
 * `seedRoom(options)` is the same thing in-process, for benchmarks and tests.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import { CloseCode, EXTENSIONS_PARAM, EXTENSIONS_VERSION, MessageType } from '../src/lib/shared/relay-wire';
import { messageIdSequence } from '../src/lib/shared/message-id';
import { MESSAGES_KEY, type ChatMessage } from '../src/lib/shared/schema';

export interface SeedCredentials {
	username: string;
	password: string;
}

export interface SeedOptions {
	/** The web app's origin, e.g. http://127.0.0.1:3000. */
	baseUrl: string;
	/** How many messages to write. */
	messages: number;
	/** Parallel writer sockets (default 8). Without `roomId`, also the number of accounts (at most 8). */
	writers?: number;
	/** Write into this existing room, as `credentials`. */
	roomId?: string;
	credentials?: SeedCredentials;
	/** Progress lines (default: none). */
	log?: (line: string) => void;
}

export interface SeedResult {
	roomId: string;
	usernames: string[];
	passwords: string[];
	/** Messages acknowledged as durably stored by the relay. */
	sent: number;
	/** From the first socket opening to the last acknowledgement. */
	ms: number;
}

/** Messages per update (one Yjs transaction). */
const BATCH_MESSAGES = 50;
/** Stay under the relay's per-socket limits (burst 100, 20 updates/s) with some margin. */
const UPDATES_BURST = 60;
const UPDATES_PER_SECOND = 15;
/** Batches a writer may have sent but not seen acknowledged. */
const IN_FLIGHT_BATCHES = 12;
/** Accounts made when no room is given. */
const MAX_SEED_ACCOUNTS = 8;
/** Average gap between two messages' timestamps: 5,000 messages span about two and a half days. */
const AVERAGE_GAP_MS = 45_000;
const WAIT_TIMEOUT_MS = 120_000;
/** Seeded messages' ids, carrying their (past) instants. */
const historyId = messageIdSequence();
const MAX_RECONNECTS = 20;

// ---- HTTP API -------------------------------------------------------------------------------

class ApiSession {
	readonly #baseUrl: string;
	#cookie: string | null = null;
	userId = '';

	constructor(baseUrl: string) {
		this.#baseUrl = baseUrl.replace(/\/+$/, '');
	}

	async call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
		const response = await fetch(this.#baseUrl + path, {
			method,
			headers: {
				// State-changing requests must come from the app's own origin (CSRF check).
				origin: new URL(this.#baseUrl).origin,
				...(body === undefined ? {} : { 'content-type': 'application/json' }),
				...(this.#cookie ? { cookie: this.#cookie } : {})
			},
			body: body === undefined ? undefined : JSON.stringify(body)
		});
		const setCookie = response.headers.get('set-cookie');
		if (setCookie) this.#cookie = setCookie.split(';')[0];
		const text = await response.text();
		return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
	}

	async expect<T>(method: string, path: string, statuses: number[], body?: unknown): Promise<T> {
		const answer = await this.call<T>(method, path, body);
		if (!statuses.includes(answer.status)) throw new Error(`${method} ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
		return answer.body;
	}

	async signup(username: string, password: string, displayName: string): Promise<void> {
		const { user } = await this.expect<{ user: { id: string } }>('POST', '/api/auth/signup', [201], { username, password, displayName });
		this.userId = user.id;
	}

	async login(username: string, password: string): Promise<void> {
		const { user } = await this.expect<{ user: { id: string } }>('POST', '/api/auth/login', [200], { username, password });
		this.userId = user.id;
	}

	descriptor(roomId: string): Promise<{ serverUrl: string; room: string; params: Record<string, string> }> {
		return this.expect('GET', `/api/rooms/${encodeURIComponent(roomId)}/sync`, [200]);
	}
}

// ---- Realistic text -------------------------------------------------------------------------

const WORDS = (
	'the a to and of in is it you that for on was with are this be have not but at we they so what ' +
	'can just like about all if do get one out up there some when time me my your know will would ' +
	'think see then now how good really people today tomorrow yesterday meeting coffee lunch code ' +
	'review deploy build tests release bug fix branch merge design idea plan weekend train station ' +
	'office home call later soon maybe sure thanks great awesome sorry late quick question check ' +
	'link doc draft update team client project budget schedule deadline morning evening night week ' +
	'month ticket issue server database cache query latency offline sync message room group chat'
).split(' ');
const EMOJI = ['🙂', '😂', '👍', '🎉', '🙏', '🚀', '☕', '🤔', '✅', '🔥'];
const NAMES = ['Ana', 'Bruno', 'Carla', 'Diego', 'Elena', 'Farid', 'Grace', 'Hiro'];

function sentence(words: number): string {
	const parts: string[] = [];
	for (let i = 0; i < words; i += 1) parts.push(WORDS[randomInt(WORDS.length)]);
	const text = parts.join(' ');
	return text.charAt(0).toUpperCase() + text.slice(1) + (randomInt(4) === 0 ? '?' : '.');
}

/** Mostly short lines, some paragraphs, rarely a long one; sometimes an emoji. */
export function realisticText(): string {
	const roll = randomInt(100);
	const words = roll < 60 ? 1 + randomInt(12) : roll < 90 ? 12 + randomInt(30) : roll < 99 ? 40 + randomInt(80) : 200 + randomInt(400);
	const sentences: string[] = [];
	for (let left = words; left > 0; ) {
		const n = Math.min(left, 4 + randomInt(14));
		sentences.push(sentence(n));
		left -= n;
	}
	let text = sentences.join(roll >= 90 && randomInt(3) === 0 ? '\n\n' : ' ');
	if (randomInt(6) === 0) text += ` ${EMOJI[randomInt(EMOJI.length)]}`;
	return text.slice(0, 4000);
}

// ---- Relay writer ---------------------------------------------------------------------------

/** A token bucket, as the relay keeps one per socket. */
class Pace {
	#tokens = UPDATES_BURST;
	#at = Date.now();

	async take(): Promise<void> {
		for (;;) {
			const now = Date.now();
			this.#tokens = Math.min(UPDATES_BURST, this.#tokens + ((now - this.#at) * UPDATES_PER_SECOND) / 1000);
			this.#at = now;
			if (this.#tokens >= 1) {
				this.#tokens -= 1;
				return;
			}
			await new Promise((resolve) => setTimeout(resolve, Math.ceil(((1 - this.#tokens) * 1000) / UPDATES_PER_SECOND)));
		}
	}
}

interface Batch {
	messages: ChatMessage[];
	/** Yjs id of the batch's last message in the writer's current document: acknowledged when durable passes it. */
	client: number;
	clock: number;
}

/**
 * Hands out batches in order, with timestamps that rise through the whole run: message i falls
 * in the i-th slot of AVERAGE_GAP_MS, ending a minute ago (never ahead of the relay's clock).
 */
class BatchSource {
	#next = 0;
	readonly #start: number;
	readonly #total: number;

	constructor(total: number) {
		this.#total = total;
		this.#start = Date.now() - total * AVERAGE_GAP_MS - 60_000;
	}

	take(author: string): ChatMessage[] | null {
		if (this.#next >= this.#total) return null;
		const size = Math.min(BATCH_MESSAGES, this.#total - this.#next);
		const messages: ChatMessage[] = [];
		for (let i = 0; i < size; i += 1) {
			const ts = this.#start + (this.#next + i) * AVERAGE_GAP_MS + randomInt(AVERAGE_GAP_MS);
			messages.push({ id: historyId(ts), author, ts, kind: 'text', text: realisticText() });
		}
		this.#next += size;
		return messages;
	}
}

function randomClientId(): number {
	return randomBytes(4).readUInt32LE(0) >>> 1 || 1;
}

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
	const encoder = encoding.createEncoder();
	write(encoder);
	return encoding.toUint8Array(encoder);
}

/** Where each message of `ids` sits in `doc` (client, clock), for acknowledgement after a reconnect. */
function itemIdsOf(doc: Y.Doc, ids: ReadonlySet<string>): Map<string, { client: number; clock: number }> {
	const out = new Map<string, { client: number; clock: number }>();
	for (let item = doc.getArray(MESSAGES_KEY)._start; item !== null; item = item.right) {
		if (item.deleted || !(item.content instanceof Y.ContentAny)) continue;
		item.content.arr.forEach((value, offset) => {
			const id = (value as { id?: unknown } | null)?.id;
			if (typeof id === 'string' && ids.has(id)) out.set(id, { client: item!.id.client, clock: item!.id.clock + offset });
		});
	}
	return out;
}

/**
 * One writer socket: syncs a document with the relay, appends batches at the end of what it
 * knows, and tracks the relay's `durable` frames until every batch it wrote is stored. Reconnects
 * (with a fresh descriptor and document) after a transient close or an epoch switch (4410),
 * appending again only what the new document lacks.
 */
class Writer {
	readonly #api: ApiSession;
	readonly #roomId: string;
	readonly #source: BatchSource;
	readonly #pace = new Pace();
	readonly #pending: Batch[] = [];
	#durable = new Map<number, number>();
	#doc = new Y.Doc();
	#ws: WebSocket | null = null;
	#synced = false;
	#wake: (() => void) | null = null;
	#failure: Error | null = null;
	#reconnects = 0;
	#finished = false;
	acknowledged = 0;

	constructor(api: ApiSession, roomId: string, source: BatchSource) {
		this.#api = api;
		this.#roomId = roomId;
		this.#source = source;
	}

	async run(): Promise<void> {
		await this.#connect();
		for (;;) {
			this.#check();
			while (!this.#synced || this.#pending.length >= IN_FLIGHT_BATCHES) await this.#sleep();
			const messages = this.#source.take(this.#api.userId);
			if (!messages) break;
			await this.#pace.take();
			while (!this.#synced) await this.#sleep();
			this.#append({ messages, client: 0, clock: 0 });
		}
		const deadline = Date.now() + WAIT_TIMEOUT_MS;
		while (this.#pending.length > 0) {
			this.#check();
			if (Date.now() > deadline) throw new Error(`the relay did not acknowledge ${this.#pending.length} batches in time`);
			await this.#sleep(1_000);
		}
		this.#finished = true;
		this.#ws?.close();
	}

	#check(): void {
		if (this.#failure) throw this.#failure;
	}

	#sleep(ms = 250): Promise<void> {
		return new Promise((resolve) => {
			const timer = setTimeout(() => {
				this.#wake = null;
				resolve();
			}, ms);
			this.#wake = () => {
				clearTimeout(timer);
				this.#wake = null;
				resolve();
			};
		});
	}

	/** Pushes a batch in one transaction under a fresh client id and sends the update. */
	#append(batch: Batch): void {
		const log = this.#doc.getArray<ChatMessage>(MESSAGES_KEY);
		this.#doc.clientID = randomClientId();
		const before = Y.encodeStateVector(this.#doc);
		this.#doc.transact(() => log.push(batch.messages));
		batch.client = this.#doc.clientID;
		batch.clock = batch.messages.length - 1;
		if (!this.#pending.includes(batch)) this.#pending.push(batch);
		const update = Y.encodeStateAsUpdate(this.#doc, before);
		this.#send(frame((e) => {
			encoding.writeVarUint(e, MessageType.sync);
			syncProtocol.writeUpdate(e, update);
		}));
	}

	#send(data: Uint8Array): void {
		if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(data);
	}

	async #connect(): Promise<void> {
		const { serverUrl, room, params } = await this.#api.descriptor(this.#roomId);
		const query = new URLSearchParams({ ...params, [EXTENSIONS_PARAM]: EXTENSIONS_VERSION });
		const doc = new Y.Doc();
		this.#doc = doc;
		this.#synced = false;
		const ws = new WebSocket(`${serverUrl.replace(/\/+$/, '')}/${room}?${query}`);
		ws.binaryType = 'nodebuffer';
		this.#ws = ws;
		ws.on('open', () => {
			this.#send(frame((e) => {
				encoding.writeVarUint(e, MessageType.sync);
				syncProtocol.writeSyncStep1(e, doc);
			}));
		});
		ws.on('message', (data: Buffer) => {
			if (ws === this.#ws) this.#receive(new Uint8Array(data));
		});
		ws.on('error', (error) => {
			if (ws === this.#ws) console.error(`writer socket error: ${error.message}`);
		});
		ws.on('close', (code, reason) => {
			if (ws !== this.#ws) return;
			this.#ws = null;
			this.#synced = false;
			if (this.#finished) return;
			const transient = code === CloseCode.goingAway || code === CloseCode.roomMoved || code === 1006 || code === 1005;
			if (!transient || this.#reconnects >= MAX_RECONNECTS) {
				this.#failure = new Error(`the relay closed a writer socket: ${code} ${reason.toString()}`);
				this.#wake?.();
				return;
			}
			this.#reconnects += 1;
			setTimeout(() => {
				this.#connect().catch((error: unknown) => {
					this.#failure = error instanceof Error ? error : new Error(String(error));
					this.#wake?.();
				});
			}, 200 * this.#reconnects);
		});
	}

	#receive(data: Uint8Array): void {
		const decoder = decoding.createDecoder(data);
		const type = decoding.readVarUint(decoder);
		if (type === MessageType.sync) {
			const encoder = encoding.createEncoder();
			encoding.writeVarUint(encoder, MessageType.sync);
			const kind = syncProtocol.readSyncMessage(decoder, encoder, this.#doc, 'relay');
			if (encoding.length(encoder) > 1) this.#send(encoding.toUint8Array(encoder));
			if (kind === syncProtocol.messageYjsSyncStep2 && !this.#synced) this.#onSynced();
		} else if (type === MessageType.durable) {
			const count = decoding.readVarUint(decoder);
			const clocks = new Map<number, number>();
			for (let i = 0; i < count; i += 1) clocks.set(decoding.readVarUint(decoder), decoding.readVarUint(decoder));
			this.#durable = clocks;
			this.#settle();
		} else if (type === MessageType.rejected) {
			const code = decoding.readVarString(decoder);
			const detail = decoding.readVarString(decoder);
			this.#failure = new Error(`the relay refused a batch: ${code} (${detail})`);
			this.#wake?.();
		}
	}

	/** After (re)connecting: batches the document does not hold yet are appended again, once. */
	#onSynced(): void {
		this.#synced = true;
		const ids = new Set(this.#pending.flatMap((b) => b.messages.map((m) => m.id)));
		const present = itemIdsOf(this.#doc, ids);
		for (const batch of [...this.#pending]) {
			const missing = batch.messages.filter((m) => !present.has(m.id));
			if (missing.length === 0) {
				// Carried over (or already stored): acknowledged once its newest item is durable.
				const last = present.get(batch.messages[batch.messages.length - 1].id)!;
				batch.client = last.client;
				batch.clock = last.clock;
			} else {
				this.#pending.splice(this.#pending.indexOf(batch), 1);
				const kept = batch.messages.filter((m) => present.has(m.id));
				if (kept.length > 0) {
					const last = present.get(kept[kept.length - 1].id)!;
					this.#pending.push({ messages: kept, client: last.client, clock: last.clock });
				}
				this.#append({ messages: missing, client: 0, clock: 0 });
			}
		}
		this.#settle();
	}

	#settle(): void {
		for (let i = this.#pending.length - 1; i >= 0; i -= 1) {
			const batch = this.#pending[i];
			if ((this.#durable.get(batch.client) ?? 0) > batch.clock) {
				this.#pending.splice(i, 1);
				this.acknowledged += batch.messages.length;
			}
		}
		this.#wake?.();
	}
}

// ---- Seeding --------------------------------------------------------------------------------

function randomSuffix(): string {
	return randomBytes(5).toString('hex');
}

export async function seedRoom(options: SeedOptions): Promise<SeedResult> {
	const log = options.log ?? (() => {});
	const writerCount = Math.max(1, Math.floor(options.writers ?? 8));
	if (!Number.isInteger(options.messages) || options.messages < 0) throw new Error('messages must be a non-negative integer');
	const sessions: ApiSession[] = [];
	const usernames: string[] = [];
	const passwords: string[] = [];
	let roomId: string;

	if (options.roomId) {
		if (!options.credentials) throw new Error('writing into an existing room needs credentials');
		const session = new ApiSession(options.baseUrl);
		await session.login(options.credentials.username, options.credentials.password);
		sessions.push(session);
		usernames.push(options.credentials.username);
		passwords.push(options.credentials.password);
		roomId = options.roomId;
	} else {
		const tag = randomSuffix();
		const accounts = Math.min(writerCount, MAX_SEED_ACCOUNTS);
		for (let i = 0; i < accounts; i += 1) {
			const username = `seed_${tag}_${i}`;
			const password = randomBytes(12).toString('base64url');
			const session = new ApiSession(options.baseUrl);
			await session.signup(username, password, `${NAMES[i % NAMES.length]} ${tag.slice(0, 4)}`);
			sessions.push(session);
			usernames.push(username);
			passwords.push(password);
		}
		const { room } = await sessions[0].expect<{ room: { id: string } }>('POST', '/api/rooms', [201], {
			kind: 'group',
			name: `Seeded history ${tag}`,
			members: usernames.slice(1)
		});
		roomId = room.id;
		log(`room ${roomId}`);
		usernames.forEach((u, i) => log(`account ${u} password ${passwords[i]}`));
	}

	const source = new BatchSource(options.messages);
	const writers = Array.from({ length: writerCount }, (_, i) => new Writer(sessions[i % sessions.length], roomId, source));
	const started = Date.now();
	const progress = setInterval(() => {
		const acknowledged = writers.reduce((sum, w) => sum + w.acknowledged, 0);
		log(`${acknowledged} / ${options.messages} stored`);
	}, 5_000);
	try {
		await Promise.all(writers.map((w) => w.run()));
	} finally {
		clearInterval(progress);
	}
	const ms = Date.now() - started;
	const sent = writers.reduce((sum, w) => sum + w.acknowledged, 0);
	return { roomId, usernames, passwords, sent, ms };
}

// ---- CLI ------------------------------------------------------------------------------------

function parseArgs(argv: string[]): SeedOptions {
	const values = new Map<string, string>();
	for (let i = 0; i < argv.length; i += 1) {
		const arg = argv[i];
		if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
		const [key, inline] = arg.slice(2).split('=', 2);
		const value = inline ?? argv[++i];
		if (value === undefined) throw new Error(`--${key} needs a value`);
		values.set(key, value);
	}
	const known = new Set(['url', 'messages', 'writers', 'room', 'username', 'password']);
	for (const key of values.keys()) if (!known.has(key)) throw new Error(`unknown option --${key}`);
	const messages = Number(values.get('messages') ?? '1000');
	const writers = Number(values.get('writers') ?? '8');
	if (!Number.isInteger(messages) || messages < 0) throw new Error('--messages must be a non-negative integer');
	if (!Number.isInteger(writers) || writers < 1) throw new Error('--writers must be a positive integer');
	const roomId = values.get('room');
	const username = values.get('username');
	const password = values.get('password');
	if (roomId && (!username || !password)) throw new Error('--room needs --username and --password');
	return {
		baseUrl: values.get('url') ?? 'http://127.0.0.1:3000',
		messages,
		writers,
		roomId,
		credentials: roomId ? { username: username!, password: password! } : undefined,
		log: (line) => console.log(line)
	};
}

async function main(): Promise<void> {
	let options: SeedOptions;
	try {
		options = parseArgs(process.argv.slice(2));
	} catch (error) {
		console.error(`${(error as Error).message}\nusage: npm run seed -- --url http://127.0.0.1:3000 --messages 100000 [--writers 8] [--room <id> --username u --password p]`);
		process.exit(2);
	}
	const result = await seedRoom(options);
	const rate = result.ms > 0 ? Math.round((result.sent * 1000) / result.ms) : result.sent;
	console.log(`room ${result.roomId}: ${result.sent} messages stored in ${(result.ms / 1000).toFixed(1)} s (${rate} messages/s)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
	main().catch((error: unknown) => {
		console.error(error instanceof Error ? error.message : error);
		process.exit(1);
	});
}
