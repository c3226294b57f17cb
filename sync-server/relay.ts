/**
 * The sync relay: y-websocket protocol over `ws`, authorized at the upgrade, one Room per loaded
 * document. Rooms load on demand and unload when idle. `close()` is idempotent, flushes every
 * room's pending writes and has a time limit.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Bus } from '../src/lib/server/bus/bus';
import { CONTROL_CHANNEL, parseControl, type ControlEvent } from '../src/lib/server/bus/control';
import type { Database } from '../src/lib/server/db/database';
import type { HistoryStore } from '../src/lib/server/history/history-store';
import type { PresenceStore } from '../src/lib/server/presence/presence';
import type { RelayTokenSigner } from '../src/lib/server/relay-token';
import { touchLastSeen } from '../src/lib/server/users';
import { authorizeUpgrade, type UpgradeRefusal } from './authorize';
import { Connection, type ConnectionIdentity } from './connection';
import { DocStore } from './doc-store';
import type { Logger } from './log';
import {
	CloseCode,
	COMPACTION_LEASE_MS,
	COMPACTION_STEPS_AT_ONCE,
	COMPACTION_WRITE_CHUNK,
	DEFAULT_RELAY_LIMITS,
	defaultRolloverLimits,
	type RolloverLimits,
	type RelayLimits,
	RELAY_CLOSE_TIMEOUT_MS,
	RELAY_MAX_FRAME_BYTES,
	RELAY_PING_INTERVAL_MS,
	RELAY_PING_SLICES,
	ROOM_IDLE_UNLOAD_MS
} from './protocol';
import { Slots } from './slots';
import { Room } from './room';

const DEFAULT_LIVE_MESSAGES_MAX = 1000;

export interface RelayDeps {
	db: Database;
	bus: Bus;
	history: HistoryStore;
	presence: PresenceStore;
	tokens: RelayTokenSigner;
	allowedOrigins: string[];
	log: Logger;
}

export interface RelayOptions {
	idleUnloadMs?: number;
	/** LIVE_MESSAGES_MAX: messages a live document keeps before compaction (default 1000). */
	liveMessagesMax?: number;
	/** Removed entries after which a room rolls over (default: defaultRolloverLimits). */
	rollover?: RolloverLimits;
	/** No other relay instance shares the stores (the app without REDIS_URL); default false. */
	soleInstance?: boolean;
	/** How long a room's compaction lease lasts unless renewed (default COMPACTION_LEASE_MS). */
	compactionLeaseMs?: number;
	/** Entries a compaction writes to DynamoDB per lease renewal (default COMPACTION_WRITE_CHUNK). */
	compactionWriteChunk?: number;
	/** How often each socket is pinged; one that misses a whole interval is terminated (default RELAY_PING_INTERVAL_MS). */
	pingIntervalMs?: number;
	limits?: Partial<RelayLimits>;
	/**
	 * Benchmarks only: admit client updates without the shape and schema checks, to measure what
	 * validation costs. Never set in the app (boot.ts does not expose it).
	 */
	unsafeSkipValidation?: boolean;
	/** Observability: called with how long each inbound frame took to handle, in ms. */
	onFrameHandled?: (durationMs: number) => void;
}

export class Relay {
	readonly #deps: RelayDeps;
	readonly #store: DocStore;
	readonly #origins: ReadonlySet<string>;
	readonly #idleUnloadMs: number;
	readonly #liveMessagesMax: number;
	readonly #rollover: RolloverLimits;
	readonly #soleInstance: boolean;
	readonly #compactionLeaseMs: number;
	readonly #compactionWriteChunk: number;
	readonly #compactionSlots = new Slots(COMPACTION_STEPS_AT_ONCE);
	readonly #limits: RelayLimits;
	readonly #skipValidation: boolean;
	readonly #onFrameHandled: ((durationMs: number) => void) | null;
	readonly #http: Server;
	readonly #wss: WebSocketServer;
	readonly #rooms = new Map<string, Promise<Room>>();
	/** The room each entry of #rooms resolved to (an entry still loading has none). */
	readonly #current = new Map<string, Room>();
	readonly #unloadTimers = new Map<string, NodeJS.Timeout>();
	/** Rooms on their way out of memory, by id: a new load of one waits for it. */
	readonly #unloading = new Map<string, Promise<void>>();
	readonly #userConnections = new Map<string, number>();
	/** The sockets in turns of pinging. */
	readonly #pingSlices = Array.from({ length: RELAY_PING_SLICES }, () => new Set<Connection>());
	#pingTurn = 0;
	readonly #pingIntervalMs: number;
	#pingTimer: NodeJS.Timeout | null = null;
	#unsubscribeControl: (() => Promise<void>) | null = null;
	#closing: Promise<void> | null = null;

	constructor(deps: RelayDeps, options: RelayOptions = {}) {
		this.#deps = deps;
		this.#store = new DocStore(deps.db);
		this.#origins = new Set(deps.allowedOrigins);
		this.#idleUnloadMs = options.idleUnloadMs ?? ROOM_IDLE_UNLOAD_MS;
		this.#liveMessagesMax = options.liveMessagesMax ?? DEFAULT_LIVE_MESSAGES_MAX;
		this.#rollover = options.rollover ?? defaultRolloverLimits(this.#liveMessagesMax);
		this.#soleInstance = options.soleInstance ?? false;
		this.#compactionLeaseMs = options.compactionLeaseMs ?? COMPACTION_LEASE_MS;
		this.#compactionWriteChunk = options.compactionWriteChunk ?? COMPACTION_WRITE_CHUNK;
		this.#pingIntervalMs = options.pingIntervalMs ?? RELAY_PING_INTERVAL_MS;
		this.#limits = { ...DEFAULT_RELAY_LIMITS, ...options.limits };
		this.#skipValidation = options.unsafeSkipValidation === true;
		this.#onFrameHandled = options.onFrameHandled ?? null;
		this.#http = createServer((_req, res) => {
			res.writeHead(426, { 'content-type': 'application/json' });
			res.end(JSON.stringify({ error: { code: 'upgrade_required', message: 'this is the sync relay: open a WebSocket' } }));
		});
		this.#wss = new WebSocketServer({
			noServer: true,
			// ws limits set explicitly (ws advisories up to 8.21 concerned unbounded buffering).
			maxPayload: RELAY_MAX_FRAME_BYTES,
			perMessageDeflate: false,
			skipUTF8Validation: false
		});
		this.#http.on('upgrade', (request, socket, head) => void this.#onUpgrade(request, socket, head));
	}

	/** Starts listening; resolves with the bound port (useful with port 0). */
	async listen(port: number, host: string): Promise<number> {
		this.#unsubscribeControl = await this.#deps.bus.subscribe(CONTROL_CHANNEL, (payload) => {
			const event = parseControl(payload);
			if (event) this.#onControl(event);
		});
		await new Promise<void>((resolve, reject) => {
			this.#http.once('error', reject);
			this.#http.listen(port, host, () => {
				this.#http.off('error', reject);
				resolve();
			});
		});
		this.#pingTimer = setInterval(() => this.#pingSlice(), this.#pingIntervalMs / RELAY_PING_SLICES);
		this.#pingTimer.unref();
		return (this.#http.address() as AddressInfo).port;
	}

	get loadedRooms(): number {
		return this.#rooms.size;
	}

	async #onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
		socket.on('error', () => socket.destroy());
		if (this.#closing) {
			refuse(socket, { status: 503, code: 'shutting_down', message: 'the relay is shutting down' });
			return;
		}
		let identity: ConnectionIdentity | UpgradeRefusal;
		let room: Room;
		try {
			identity = await authorizeUpgrade(request, { db: this.#deps.db, tokens: this.#deps.tokens, allowedOrigins: this.#origins });
			if ('status' in identity) {
				refuse(socket, identity);
				return;
			}
			room = await this.#loadRoom(identity.roomId);
		} catch (error) {
			this.#deps.log.error('[relay] upgrade failed:', error);
			refuse(socket, { status: 503, code: 'unavailable', message: 'the relay cannot open this room right now' });
			return;
		}
		const accepted = identity;
		this.#wss.handleUpgrade(request, socket, head, (ws) => this.#accept(ws, accepted, room, socket));
	}

	#accept(ws: WebSocket, identity: ConnectionIdentity, room: Room, socket: Duplex): void {
		const conn = new Connection(ws, identity, this.#limits, socket);
		this.#cancelUnload(room.id);
		ws.on('pong', () => {
			conn.alive = true;
		});
		ws.on('message', (data: RawData, isBinary: boolean) => this.#onFrame(conn, room, data, isBinary));
		ws.on('close', () => {
			for (const slice of this.#pingSlices) slice.delete(conn);
			room.leave(conn);
			// At shutdown close() marks every account offline once, after the sockets are gone.
			if (!this.#closing) this.#countConnection(conn.userId, -1);
		});
		ws.on('error', (error) => this.#deps.log.info(`[relay] socket error (${identity.userId}):`, error.message));
		// The turn with the fewest sockets: turns stay even however sockets come and go.
		this.#pingSlices.reduce((least, candidate) => (candidate.size < least.size ? candidate : least)).add(conn);
		this.#countConnection(conn.userId, +1);
		room.join(conn);
	}

	#onFrame(conn: Connection, room: Room, data: RawData, isBinary: boolean): void {
		if (conn.closed) return;
		if (!isBinary || !(data instanceof Buffer)) {
			conn.close(CloseCode.malformed, 'frames are binary y-websocket messages');
			return;
		}
		const started = this.#onFrameHandled ? performance.now() : 0;
		try {
			room.receive(conn, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
			this.#onFrameHandled?.(performance.now() - started);
		} catch (error) {
			this.#onFrameHandled?.(performance.now() - started);
			// Every inbound frame is untrusted: close this socket, keep the process and the room.
			this.#deps.log.info(`[relay] malformed frame from ${conn.userId}:`, error instanceof Error ? error.message : error);
			conn.close(CloseCode.malformed, 'malformed frame');
		}
	}

	/** The loaded room, or loads it (after `after` settles: a rollover or unload under way). */
	#loadRoom(roomId: string, after?: Promise<unknown>): Promise<Room> {
		let loading = this.#rooms.get(roomId);
		if (!loading) {
			const load = (): Promise<Room> =>
				Room.load(roomId, {
					store: this.#store,
					bus: this.#deps.bus,
					history: this.#deps.history,
					log: this.#deps.log,
					owner: this.#deps.bus.instanceId,
					liveMessagesMax: this.#liveMessagesMax,
					rollover: this.#rollover,
					compactionLeaseMs: this.#compactionLeaseMs,
					compactionWriteChunk: this.#compactionWriteChunk,
					compactionSlots: this.#compactionSlots,
					soleInstance: this.#soleInstance,
					onIdle: (room) => this.#scheduleUnload(room),
					onCorrupt: (room, moved) =>
						moved
							? this.#unloadNow(room, CloseCode.roomMoved, 'the room moved to a new document; fetch a new descriptor')
							: this.#unloadNow(room),
					onGone: (room) => this.#unloadNow(room, CloseCode.roomDeleted, 'the room was deleted'),
					onRetire: (room, next) => this.#retire(room, next),
					skipValidation: this.#skipValidation
				});
			const pending = after ?? this.#unloading.get(roomId);
			const started: Promise<Room> = pending ? pending.then(load, load) : load();
			loading = started;
			this.#rooms.set(roomId, started);
			started.then(
				(room) => {
					if (this.#rooms.get(roomId) === started) this.#current.set(roomId, room);
					else void room.destroy(); // replaced while it loaded (a rollover, a deletion)
				},
				() => {
					if (this.#rooms.get(roomId) === started) this.#rooms.delete(roomId);
				}
			);
		}
		return loading;
	}

	/** Forgets `room` if it is still the one this relay hands out for its id. */
	#forget(room: Room): boolean {
		if (this.#current.get(room.id) !== room) return false;
		this.#current.delete(room.id);
		this.#rooms.delete(room.id);
		this.#cancelUnload(room.id);
		return true;
	}

	#scheduleUnload(room: Room): void {
		if (this.#closing || this.#unloadTimers.has(room.id) || this.#current.get(room.id) !== room) return;
		const timer = setTimeout(() => {
			this.#unloadTimers.delete(room.id);
			if (!room.idle || !this.#forget(room)) return;
			// Whoever connects meanwhile waits for this copy to finish (it may roll over first).
			const done = room
				.beforeUnload()
				.then(() => room.destroy())
				.finally(() => {
					if (this.#unloading.get(room.id) === done) this.#unloading.delete(room.id);
				});
			this.#unloading.set(room.id, done);
		}, this.#idleUnloadMs);
		timer.unref();
		this.#unloadTimers.set(room.id, timer);
	}

	/** Drops a room at once; its sockets reconnect and resync from the durable store. */
	#unloadNow(room: Room, code: number = CloseCode.goingAway, reason = 'room reloading'): void {
		this.#forget(room);
		void room.destroy(code, reason);
	}

	/**
	 * A room rolling over: new sockets wait for the new epoch, which is loaded as soon as it is
	 * stored (and unloaded again if nobody comes); the old copy is dropped. A room rolling over
	 * on its way out of memory is no longer handed out: its successor loads on demand.
	 */
	#retire(room: Room, next: Promise<void>): void {
		const done = next.finally(() => room.destroy(CloseCode.roomMoved, 'the room moved to a new document'));
		if (!this.#forget(room)) return;
		this.#loadRoom(room.id, done.catch(() => undefined)).then(
			(fresh) => {
				if (fresh.idle) this.#scheduleUnload(fresh);
			},
			() => undefined
		);
	}

	#cancelUnload(roomId: string): void {
		const timer = this.#unloadTimers.get(roomId);
		if (timer) clearTimeout(timer);
		this.#unloadTimers.delete(roomId);
	}

	#countConnection(userId: string, delta: 1 | -1): void {
		const count = (this.#userConnections.get(userId) ?? 0) + delta;
		if (count <= 0) this.#userConnections.delete(userId);
		else this.#userConnections.set(userId, count);
		const { presence, db, log } = this.#deps;
		presence.setConnections(userId, Math.max(0, count)).catch((error) => log.error('[relay] presence update failed:', error));
		if (count <= 0 || delta > 0 && count === 1) {
			touchLastSeen(db, [userId]).catch((error) => log.error('[relay] last-seen update failed:', error));
		}
	}

	#onControl(event: ControlEvent): void {
		for (const loading of this.#rooms.values()) {
			void loading.then((room) => {
				if (event.type === 'member-removed' && room.id === event.roomId) {
					room.disconnect((c) => c.userId === event.userId, CloseCode.forbidden, 'removed from the room');
				} else if (event.type === 'room-deleted' && room.id === event.roomId) {
					this.#unloadNow(room, CloseCode.roomDeleted, 'the room was deleted');
				} else if (event.type === 'room-moved' && room.id === event.roomId && room.epoch < event.epoch) {
					this.#unloadNow(room, CloseCode.roomMoved, 'the room moved to a new document; fetch a new descriptor');
				} else if (event.type === 'session-revoked') {
					room.disconnect((c) => c.identity.sessionId === event.sessionId, CloseCode.unauthorized, 'signed out');
				}
			}, () => undefined);
		}
	}

	/**
	 * Pings the sockets whose turn it is, and terminates those of them that missed the previous
	 * ping, a whole interval ago (a vanished peer never sends close).
	 */
	#pingSlice(): void {
		const slice = this.#pingSlices[this.#pingTurn];
		this.#pingTurn = (this.#pingTurn + 1) % RELAY_PING_SLICES;
		for (const conn of slice) {
			if (!conn.alive) {
				conn.ws.terminate();
				continue;
			}
			conn.alive = false;
			conn.ws.ping();
		}
	}

	/** Stops accepting, closes every socket, flushes pending writes. Safe to call twice. */
	close(): Promise<void> {
		this.#closing ??= this.#close();
		return this.#closing;
	}

	async #close(): Promise<void> {
		if (this.#pingTimer) clearInterval(this.#pingTimer);
		for (const timer of this.#unloadTimers.values()) clearTimeout(timer);
		this.#unloadTimers.clear();
		const httpClosed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
		const rooms = await Promise.allSettled([...this.#rooms.values()]);
		const flushAll = Promise.all(
			rooms.map((r) => (r.status === 'fulfilled' ? r.value.destroy(CloseCode.goingAway, 'relay shutting down') : undefined))
		);
		let timer: NodeJS.Timeout | undefined;
		const timedOut = new Promise<'timeout'>((resolve) => {
			timer = setTimeout(() => resolve('timeout'), RELAY_CLOSE_TIMEOUT_MS);
		});
		const outcome = await Promise.race([flushAll, timedOut]);
		clearTimeout(timer);
		if (outcome === 'timeout') this.#deps.log.error('[relay] gave up waiting for pending writes at shutdown');
		this.#rooms.clear();
		for (const ws of this.#wss.clients) ws.terminate();
		this.#wss.close();
		const users = [...this.#userConnections.keys()];
		this.#userConnections.clear();
		await Promise.allSettled([
			...users.map((u) => this.#deps.presence.setConnections(u, 0)),
			touchLastSeen(this.#deps.db, users)
		]);
		const unsubscribe = this.#unsubscribeControl;
		this.#unsubscribeControl = null;
		if (unsubscribe) await unsubscribe().catch(() => undefined);
		await httpClosed;
	}
}

const STATUS_TEXT: Record<number, string> = {
	400: 'Bad Request',
	401: 'Unauthorized',
	403: 'Forbidden',
	404: 'Not Found',
	503: 'Service Unavailable'
};

function refuse(socket: Duplex, refusal: UpgradeRefusal): void {
	const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
	socket.end(
		`HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? 'Error'}\r\n` +
			'Connection: close\r\nContent-Type: application/json\r\n' +
			`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
	);
}
