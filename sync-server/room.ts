/**
 * One loaded room: its live document, awareness, sockets, and the queue that makes accepted
 * updates durable. An accepted update is applied in memory at once (later updates are validated
 * against it), committed to PostgreSQL in batches, and only after the commit forwarded to the
 * room's other sockets (encoded once, the same buffer to each), acknowledged, and sent to other
 * relay instances. Forwarding after the commit means no client ever holds another's message that
 * the relay could still lose: such a client's next sync would carry that message back, and the
 * relay must refuse messages relayed in someone else's name.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import type { Bus } from '../src/lib/server/bus/bus';
import type { RoomPreview } from '../src/lib/shared/api-types';
import { DELETIONS_KEY, EDITS_KEY, MESSAGES_KEY, PER_USER_KEYS, type ChatMessage } from '../src/lib/shared/schema';
import type { Connection } from './connection';
import type { DocStore, UpdateEffects } from './doc-store';
import { filterAwarenessUpdate } from './awareness-filter';
import { CloseCode, MessageType, ROOM_UPDATE_ROWS_MERGE_AT } from './protocol';
import { emptyAdmitted, validateUpdate, type Admitted, type RoomIndex } from './validate';
import type { Logger } from './log';

/** Where a change to the room came from, so fan-out and storage never loop. */
type ChangeOrigin = Connection | 'bus' | 'load';

const PREVIEW_MAX_CHARS = 140;
/**
 * Refusals after which the relay deletes the refused items in the sender's copy. Not for bytes
 * that failed the shape check (nothing in them can be trusted), nor for updates refused for being
 * early (missing dependencies) or too frequent: their items are fine and will be resent.
 */
const REVERTIBLE: ReadonlySet<string> = new Set([
	'bad_content',
	'unknown_parent',
	'nested_type',
	'foreign_client_id',
	'duplicate_id',
	'other_users_key',
	'unknown_message',
	'not_your_message',
	'not_an_object',
	'bad_id',
	'bad_author',
	'bad_ts',
	'ts_in_future',
	'bad_kind',
	'bad_text',
	'text_too_long',
	'extra_fields'
]);
/** Over-rate awareness changes dropped per offence counted against the socket. */
const AWARENESS_DROPS_PER_OFFENCE = 10;
const PERSIST_RETRY_MIN_MS = 250;
const PERSIST_RETRY_MAX_MS = 30_000;

interface PendingWrite {
	update: Uint8Array;
	sender: Connection;
	effects: UpdateEffects;
	clocks: Map<number, number>;
}

export interface RoomDeps {
	store: DocStore;
	bus: Bus;
	log: Logger;
	/** Called when the room has no sockets and nothing left to write. */
	onIdle(room: Room): void;
	/** Called when the in-memory document can no longer be trusted: unload it now. */
	onCorrupt(room: Room): void;
	/** Benchmarks only (RelayOptions.unsafeSkipValidation). */
	skipValidation?: boolean;
}

export class Room {
	readonly id: string;
	readonly doc = new Y.Doc();
	readonly awareness: awarenessProtocol.Awareness;
	readonly connections = new Set<Connection>();
	readonly #index: RoomIndex = {
		messageAuthors: new Map(),
		clientOwners: new Map(),
		// The role checked at the socket's upgrade; membership changes close sockets.
		isAdmin: (userId) => [...this.connections].some((c) => c.userId === userId && c.identity.role === 'admin')
	};
	readonly #deps: RoomDeps;
	/** The state vector of what PostgreSQL holds: client id → next clock. */
	readonly #durable = new Map<number, number>();
	readonly #queue: PendingWrite[] = [];
	#flushing: Promise<void> | null = null;
	#storedRows = 0;
	#unsubscribe: (() => Promise<void>) | null = null;
	#destroyed = false;

	private constructor(id: string, deps: RoomDeps) {
		this.id = id;
		this.#deps = deps;
		this.awareness = new awarenessProtocol.Awareness(this.doc);
		this.awareness.setLocalState(null);
		this.awareness.on('update', this.#onAwarenessUpdate);
		this.doc.getArray<ChatMessage>(MESSAGES_KEY).observe((event) => {
			for (const delta of event.changes.delta) {
				for (const value of (delta.insert as ChatMessage[] | undefined) ?? []) this.#index.messageAuthors.set(value.id, value.author);
			}
		});
		for (const key of [...PER_USER_KEYS, EDITS_KEY, DELETIONS_KEY]) this.doc.getMap(key);
	}

	static async load(id: string, deps: RoomDeps): Promise<Room> {
		const room = new Room(id, deps);
		const { state, rows } = await deps.store.load(id);
		Y.applyUpdate(room.doc, state, 'load');
		room.#storedRows = rows;
		for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(room.doc))) room.#durable.set(client, clock);
		room.#indexClientOwners();
		room.#unsubscribe = await deps.bus.subscribe(roomChannel(id), (payload) => room.#onBusMessage(payload));
		return room;
	}

	get idle(): boolean {
		return this.connections.size === 0 && this.#queue.length === 0 && this.#flushing === null;
	}

	/** Starts a socket's session: the relay's sync step 1 and the current awareness states. */
	join(conn: Connection): void {
		this.connections.add(conn);
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.sync);
		syncProtocol.writeSyncStep1(encoder, this.doc);
		conn.send(encoding.toUint8Array(encoder));
		const states = this.awareness.getStates();
		if (states.size > 0) {
			conn.send(encodeAwarenessFrame(this.awareness, [...states.keys()]));
		}
		if (conn.identity.extensions) conn.send(this.#durableFrame());
	}

	leave(conn: Connection): void {
		if (!this.connections.delete(conn)) return;
		if (conn.awarenessClients.size > 0) {
			awarenessProtocol.removeAwarenessStates(this.awareness, [...conn.awarenessClients], conn);
		}
		if (this.idle) this.#deps.onIdle(this);
	}

	/** Handles one inbound frame; throws on a malformed one (the relay closes that socket). */
	receive(conn: Connection, frame: Uint8Array): void {
		const decoder = decoding.createDecoder(frame);
		const type = decoding.readVarUint(decoder);
		switch (type) {
			case MessageType.sync:
				this.#receiveSync(conn, decoder);
				return;
			case MessageType.awareness:
				this.#receiveAwareness(conn, decoding.readVarUint8Array(decoder));
				return;
			case MessageType.queryAwareness:
				conn.send(encodeAwarenessFrame(this.awareness, [...this.awareness.getStates().keys()]));
				return;
			case MessageType.auth:
				return; // authorization happened at the upgrade; clients never send this
			default:
				throw new Error(`unknown message type ${type}`);
		}
	}

	#receiveSync(conn: Connection, decoder: decoding.Decoder): void {
		const syncType = decoding.readVarUint(decoder);
		if (syncType === syncProtocol.messageYjsSyncStep1) {
			const encoder = encoding.createEncoder();
			encoding.writeVarUint(encoder, MessageType.sync);
			syncProtocol.writeSyncStep2(encoder, this.doc, decoding.readVarUint8Array(decoder));
			conn.send(encoding.toUint8Array(encoder));
			return;
		}
		if (syncType === syncProtocol.messageYjsSyncStep2 || syncType === syncProtocol.messageYjsUpdate) {
			this.#receiveUpdate(conn, decoding.readVarUint8Array(decoder));
			return;
		}
		throw new Error(`unknown sync message type ${syncType}`);
	}

	#receiveUpdate(conn: Connection, update: Uint8Array): void {
		if (!conn.updateRate.take()) {
			this.#reject(conn, 'rate_limited', 'too many updates; slow down and resync');
			return;
		}
		const admitted = emptyAdmitted();
		const rejection = this.#deps.skipValidation
			? trustUpdate(update, admitted)
			: validateUpdate(this.doc, this.#index, conn.userId, update, Date.now(), admitted);
		if (rejection?.problem === 'missing_dependency') {
			this.#requestResync(conn, rejection.detail);
			return;
		}
		if (rejection) {
			this.#reject(conn, rejection.problem, rejection.detail);
			if (conn.identity.extensions && !conn.closed && REVERTIBLE.has(rejection.problem)) this.#revert(conn, update);
			return;
		}
		if (!admitted.changes) return;
		// Applied before anyone else sees it: should an update that validation admitted still fail
		// to integrate, it reaches no socket and no store (and the room reloads from the store).
		// What is forwarded and stored is the update Yjs itself encodes for what it integrated,
		// never the client's bytes: those may carry repeated items with origins only the relay
		// has, which would break the recipients' copies.
		let integrated: Uint8Array | null = null;
		const capture = (encoded: Uint8Array, origin: unknown): void => {
			if (origin === conn) integrated = integrated ? Y.mergeUpdates([integrated, encoded]) : encoded;
		};
		this.doc.on('update', capture);
		try {
			Y.applyUpdate(this.doc, update, conn);
		} catch (error) {
			this.#integrationFailed(conn, error);
			return;
		} finally {
			this.doc.off('update', capture);
		}
		if (this.doc.store.pendingStructs !== null || this.doc.store.pendingDs !== null) {
			this.#integrationFailed(conn, new Error('the update left pending structs'));
			return;
		}
		for (const client of admitted.clientIds) this.#index.clientOwners.set(client, conn.userId);
		const last = admitted.messages.at(-1);
		const effects: UpdateEffects = {
			lastMessage: last ? toPreview(last, conn.identity.userName) : null,
			reads: admitted.readId ? new Map([[conn.userId, admitted.readId]]) : new Map()
		};
		if (integrated === null) return; // nothing new after all
		this.#enqueue({ update: integrated, sender: conn, effects, clocks: admitted.clocks });
	}

	/** Counts a refused or rate-limited frame; true when the socket was closed for it. */
	#countOffence(conn: Connection, what: string): boolean {
		conn.rejections += 1;
		if (conn.rejections <= conn.limits.maxRejections) return false;
		this.#deps.log.info(`[relay] room ${this.id}: closing ${conn.userId}'s socket: ${what}, too often`);
		conn.close(CloseCode.tooManyErrors, 'too many refused or rate-limited frames');
		this.leave(conn);
		return true;
	}

	/**
	 * An update that builds on something the room lacks (the client skipped part of its own
	 * history, e.g. an item the relay refused and then deleted in its copy): the relay asks for
	 * everything it lacks with a sync step 1, which any y-websocket client answers in one update.
	 */
	#requestResync(conn: Connection, detail: string): void {
		if (this.#countOffence(conn, 'missing_dependency')) return;
		if (conn.identity.extensions) this.#sendRejected(conn, 'missing_dependency', detail);
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.sync);
		syncProtocol.writeSyncStep1(encoder, this.doc);
		conn.send(encoding.toUint8Array(encoder));
	}

	/**
	 * Brings a refused sender's document back in line with the room: an update that deletes,
	 * in the sender's copy, every item the refused update added. The sender's own client then
	 * holds them as tombstones, which validation admits, so its later updates stay contiguous.
	 */
	#revert(conn: Connection, update: Uint8Array): void {
		const ranges = new Map<number, Array<[number, number]>>();
		// Safe to decode: only updates that passed the shape check and decoding reach here.
		for (const struct of Y.decodeUpdate(update).structs) {
			const start = Math.max(struct.id.clock, Y.getState(this.doc.store, struct.id.client));
			const end = struct.id.clock + struct.length;
			if (end <= start) continue;
			const list = ranges.get(struct.id.client) ?? [];
			list.push([start, end - start]);
			ranges.set(struct.id.client, list);
		}
		if (ranges.size === 0) return;
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, 0); // no structs
		encoding.writeVarUint(encoder, ranges.size);
		for (const [client, list] of ranges) {
			encoding.writeVarUint(encoder, client);
			encoding.writeVarUint(encoder, list.length);
			for (const [clock, len] of list) {
				encoding.writeVarUint(encoder, clock);
				encoding.writeVarUint(encoder, len);
			}
		}
		conn.send(encodeUpdateFrame(encoding.toUint8Array(encoder)));
	}

	#integrationFailed(conn: Connection, error: unknown): void {
		this.#deps.log.error(`[relay] room ${this.id}: an admitted update from ${conn.userId} failed to integrate; reloading the room:`, error);
		conn.close(CloseCode.malformed, 'update could not be applied');
		this.#deps.onCorrupt(this);
	}

	#reject(conn: Connection, code: string, detail: string): void {
		this.#deps.log.info(`[relay] room ${this.id}: refused update from ${conn.userId}: ${code} (${detail})`);
		if (this.#countOffence(conn, code)) return;
		if (!conn.identity.extensions) {
			conn.close(CloseCode.rejectedUpdate, `update refused: ${code}`);
			return;
		}
		this.#sendRejected(conn, code, detail);
	}

	#sendRejected(conn: Connection, code: string, detail: string): void {
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.rejected);
		encoding.writeVarString(encoder, code);
		encoding.writeVarString(encoder, detail);
		conn.send(encoding.toUint8Array(encoder));
	}

	#receiveAwareness(conn: Connection, update: Uint8Array): void {
		let filtered: Uint8Array | null;
		try {
			filtered = filterAwarenessUpdate(update, conn, this.awareness, this.#index.clientOwners);
		} catch {
			// A malformed awareness payload inside a well-formed frame: dropped and counted, like a
			// refused update, rather than ending the socket's document sync.
			this.#countOffence(conn, 'malformed awareness update');
			return;
		}
		// Stock providers echo every awareness change they receive; the filter drops those
		// entries (not theirs), and only what is left counts against the rate.
		if (filtered === null) return;
		if (!conn.awarenessRate.take()) {
			// Awareness is a latest-state-wins stream: a dropped change is replaced by the next one.
			// A chatty client only loses changes; one that keeps flooding is cut off.
			conn.awarenessDropped += 1;
			if (conn.awarenessDropped % AWARENESS_DROPS_PER_OFFENCE === 0) this.#countOffence(conn, 'awareness flood');
			return;
		}
		awarenessProtocol.applyAwarenessUpdate(this.awareness, filtered, conn);
	}

	readonly #onAwarenessUpdate = (
		{ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
		origin: unknown
	): void => {
		const changed = [...added, ...updated, ...removed];
		if (changed.length === 0) return;
		const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed);
		this.#broadcast(wrapAwarenessUpdate(update), null);
		if (origin !== 'bus') void this.#publish(BusKind.awareness, '', update);
	};

	#broadcast(frame: Uint8Array, except: Connection | null): void {
		for (const conn of this.connections) if (conn !== except) conn.send(frame);
	}

	#enqueue(write: PendingWrite): void {
		this.#queue.push(write);
		this.#flushing ??= this.#flush();
	}

	/** Commits queued updates in batches, in arrival order, retrying until the store answers. */
	async #flush(): Promise<void> {
		let retryMs = PERSIST_RETRY_MIN_MS;
		while (this.#queue.length > 0) {
			// A snapshot: updates accepted while this batch commits wait for the next one.
			const batch = this.#queue.slice();
			try {
				await this.#deps.store.append(this.id, batch.map((w) => w.update), mergeEffects(batch));
			} catch (error) {
				if (this.#destroyed) break;
				this.#deps.log.error(`[relay] room ${this.id}: storing ${batch.length} updates failed, retrying in ${retryMs} ms:`, error);
				await new Promise((resolve) => setTimeout(resolve, retryMs));
				retryMs = Math.min(retryMs * 2, PERSIST_RETRY_MAX_MS);
				continue;
			}
			retryMs = PERSIST_RETRY_MIN_MS;
			this.#queue.splice(0, batch.length);
			this.#storedRows += 1;
			for (const write of batch) {
				advanceClocks(this.#durable, write.clocks);
				this.#broadcast(encodeUpdateFrame(write.update), write.sender);
				void this.#publish(BusKind.update, write.sender.userId, write.update);
			}
			this.#sendDurable();
			if (this.#storedRows >= ROOM_UPDATE_ROWS_MERGE_AT) await this.#mergeStoredRows();
		}
		this.#flushing = null;
		if (this.idle) this.#deps.onIdle(this);
	}

	async #mergeStoredRows(): Promise<void> {
		try {
			await this.#deps.store.mergeRows(this.id, ROOM_UPDATE_ROWS_MERGE_AT);
			this.#storedRows = 1;
		} catch (error) {
			// Merging only saves space; the rows stay valid. Try again after more writes.
			this.#deps.log.error(`[relay] room ${this.id}: merging stored updates failed:`, error);
			this.#storedRows = 0;
		}
	}

	#durableFrame(): Uint8Array {
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.durable);
		encoding.writeVarUint(encoder, this.#durable.size);
		for (const [client, clock] of this.#durable) {
			encoding.writeVarUint(encoder, client);
			encoding.writeVarUint(encoder, clock);
		}
		return encoding.toUint8Array(encoder);
	}

	#sendDurable(): void {
		let frame: Uint8Array | null = null;
		for (const conn of this.connections) {
			if (!conn.identity.extensions) continue;
			frame ??= this.#durableFrame();
			conn.send(frame);
		}
	}

	async #publish(kind: BusKind, userId: string, data: Uint8Array): Promise<void> {
		const encoder = encoding.createEncoder();
		encoding.writeVarString(encoder, this.#deps.bus.instanceId);
		encoding.writeVarUint(encoder, kind);
		encoding.writeVarString(encoder, userId);
		encoding.writeVarUint8Array(encoder, data);
		try {
			await this.#deps.bus.publish(roomChannel(this.id), encoding.toUint8Array(encoder));
		} catch (error) {
			// At-most-once by design: other instances' clients catch up from PostgreSQL on resync.
			this.#deps.log.error(`[relay] room ${this.id}: publishing to the bus failed:`, error);
		}
	}

	/** An update or awareness change committed and validated by another relay instance. */
	#onBusMessage(payload: Uint8Array): void {
		const decoder = decoding.createDecoder(payload);
		if (decoding.readVarString(decoder) === this.#deps.bus.instanceId) return;
		const kind = decoding.readVarUint(decoder);
		const userId = decoding.readVarString(decoder);
		const data = decoding.readVarUint8Array(decoder);
		if (kind === BusKind.update) {
			const clocks = updateClocks(data);
			for (const client of clocks.keys()) if (!this.#index.clientOwners.has(client)) this.#index.clientOwners.set(client, userId);
			this.#broadcast(encodeUpdateFrame(data), null);
			Y.applyUpdate(this.doc, data, 'bus' satisfies ChangeOrigin);
			advanceClocks(this.#durable, clocks);
			this.#sendDurable();
		} else if (kind === BusKind.awareness) {
			awarenessProtocol.applyAwarenessUpdate(this.awareness, data, 'bus' satisfies ChangeOrigin);
		}
	}

	#indexClientOwners(): void {
		const messages = this.doc.getArray<ChatMessage>(MESSAGES_KEY);
		const perUserMaps: unknown[] = PER_USER_KEYS.map((key) => this.doc.getMap<string>(key));
		for (const structs of this.doc.store.clients.values()) {
			for (const struct of structs) {
				if (!(struct instanceof Y.Item) || struct.deleted) continue;
				if (struct.parent === messages && struct.content instanceof Y.ContentAny) {
					const author = (struct.content.arr[0] as ChatMessage | undefined)?.author;
					if (author) this.#index.clientOwners.set(struct.id.client, author);
					break;
				}
				if (perUserMaps.includes(struct.parent) && struct.parentSub) {
					this.#index.clientOwners.set(struct.id.client, struct.parentSub);
					break;
				}
			}
		}
	}

	/** Waits for queued writes to commit (bounded by the caller's timeout). */
	async flushed(): Promise<void> {
		while (this.#flushing) await this.#flushing;
	}

	/** Closes every socket with `code` and forgets the room. Safe to call twice. */
	async destroy(code: number = CloseCode.goingAway, reason = 'room unloaded'): Promise<void> {
		for (const conn of this.connections) conn.close(code, reason);
		this.connections.clear();
		await this.flushed();
		if (this.#destroyed) return;
		this.#destroyed = true;
		this.awareness.off('update', this.#onAwarenessUpdate);
		this.awareness.destroy();
		this.doc.destroy();
		const unsubscribe = this.#unsubscribe;
		this.#unsubscribe = null;
		if (unsubscribe) await unsubscribe();
	}

	/** Closes the sockets of one account (removed from the room, or signed out). */
	disconnect(predicate: (conn: Connection) => boolean, code: number, reason: string): void {
		for (const conn of [...this.connections]) {
			if (predicate(conn)) {
				conn.close(code, reason);
				this.leave(conn);
			}
		}
	}
}

/**
 * What validation would report for an update it does not check (benchmarks only): the same
 * effects (clocks, previews) without the shape, schema or permission checks.
 */
function trustUpdate(update: Uint8Array, admitted: Admitted): null {
	admitted.changes = true;
	for (const struct of Y.decodeUpdate(update).structs) {
		const end = struct.id.clock + struct.length;
		if (end > (admitted.clocks.get(struct.id.client) ?? 0)) admitted.clocks.set(struct.id.client, end);
		if (struct instanceof Y.Item && struct.content instanceof Y.ContentAny) {
			for (const value of struct.content.arr) {
				if (value && typeof value === 'object' && 'text' in value) admitted.messages.push(value as ChatMessage);
			}
		}
	}
	admitted.clientIds.push(...admitted.clocks.keys());
	return null;
}

const enum BusKind {
	update = 0,
	awareness = 1
}

export function roomChannel(roomId: string): string {
	return `room:${roomId}`;
}

function encodeUpdateFrame(update: Uint8Array): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, MessageType.sync);
	syncProtocol.writeUpdate(encoder, update);
	return encoding.toUint8Array(encoder);
}

function wrapAwarenessUpdate(update: Uint8Array): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, MessageType.awareness);
	encoding.writeVarUint8Array(encoder, update);
	return encoding.toUint8Array(encoder);
}

function encodeAwarenessFrame(awareness: awarenessProtocol.Awareness, clients: number[]): Uint8Array {
	return wrapAwarenessUpdate(awarenessProtocol.encodeAwarenessUpdate(awareness, clients));
}

/** The highest clock + 1 per client that an update carries. */
function updateClocks(update: Uint8Array): Map<number, number> {
	const clocks = new Map<number, number>();
	for (const struct of Y.decodeUpdate(update).structs) {
		const end = struct.id.clock + struct.length;
		if (end > (clocks.get(struct.id.client) ?? 0)) clocks.set(struct.id.client, end);
	}
	return clocks;
}

function advanceClocks(target: Map<number, number>, clocks: Map<number, number>): void {
	for (const [client, clock] of clocks) if (clock > (target.get(client) ?? 0)) target.set(client, clock);
}

function toPreview(message: ChatMessage, authorName: string): RoomPreview {
	return {
		id: message.id,
		author: message.author,
		authorName,
		text: message.text.length > PREVIEW_MAX_CHARS ? `${message.text.slice(0, PREVIEW_MAX_CHARS - 1)}…` : message.text,
		ts: message.ts
	};
}

function mergeEffects(batch: PendingWrite[]): UpdateEffects {
	const reads = new Map<string, string>();
	let lastMessage: RoomPreview | null = null;
	for (const { effects } of batch) {
		lastMessage = effects.lastMessage ?? lastMessage;
		for (const [userId, id] of effects.reads) if (!reads.has(userId) || reads.get(userId)! < id) reads.set(userId, id);
	}
	return { lastMessage, reads };
}
