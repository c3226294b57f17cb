/**
 * One loaded room: its live document, awareness, sockets, and the queue that makes accepted
 * updates durable. An accepted update is applied in memory and forwarded to the room's other
 * sockets at once (encoded once, the same buffer to each), then committed to PostgreSQL in
 * batches; only after the commit is it acknowledged (`durable`) and sent to other relay
 * instances. Should the relay die between forwarding and committing, a reader holds a message
 * the room lost; its sender was never told it was stored and sends it again when it reconnects.
 * A reader that comes back with such a message first is refused it and told to start over on a
 * fresh document (close 4409, `resync`), as after a rollover, so it never stays stuck on it.
 *
 * The live document stays small: past LIVE_MESSAGES_MAX messages the room seals its oldest into
 * DynamoDB and, once the write is confirmed, removes them (compaction, under a lease so one
 * instance compacts a room at a time). Removed entries leave metadata behind, so after enough
 * removals the room rolls over to a fresh document (an epoch) seeded with the live messages.
 * A client whose document belongs to a closed epoch is recognised by its state vector; what it
 * sends is validated against that epoch, its new messages are carried into the current one
 * (exactly once: the closed epoch records what was carried, in the same transaction), and the
 * socket is then closed with 4410 so the client starts over on the current document.
 */
import { randomUUID } from 'node:crypto';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import type { Bus } from '../src/lib/server/bus/bus';
import { publishControl } from '../src/lib/server/bus/control';
import { HISTORY_ITEM_MESSAGES, type HistoryEntry, type HistoryStore } from '../src/lib/server/history/history-store';
import type { RoomPreview } from '../src/lib/shared/api-types';
import { DELETIONS_KEY, EDITS_KEY, MESSAGES_KEY, PER_USER_KEYS, READS_KEY, type ChatMessage } from '../src/lib/shared/schema';
import { WireMessage, type Connection } from './connection';
import { StoreConflict, type DocStore, type EpochClose, type LegacyCommit, type SealCommit, type UpdateEffects } from './doc-store';
import { filterAwarenessUpdate } from './awareness-filter';
import { epochSeed, leadingIds, removedMessageCount, sealedEntries } from './live-doc';
import {
	CloseCode,
	COMPACTION_BATCH_MAX,
	COMPACTION_WRITE_SHARE,
	COMPACTION_RETRY_MAX_MS,
	COMPACTION_RETRY_MIN_MS,
	compactionKeep,
	MessageType,
	ROOM_UPDATE_ROWS_MERGE_AT,
	type RolloverLimits
} from './protocol';
import { emptyAdmitted, validateUpdate, type Admitted, type RoomIndex } from './validate';
import type { Logger } from './log';
import type { Slots } from './slots';

/** Where a change to the room came from, so fan-out and storage never loop. */
type ChangeOrigin = Connection | 'bus' | 'load' | typeof RELAY_ORIGIN;
/** The origin of the relay's own changes: compaction's removals and carried messages. */
const RELAY_ORIGIN = 'relay';
/** The owner recorded for the relay's own Yjs client id: no account may write with it. */
const RELAY_OWNER = '';

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
	'duplicate_id',
	'unknown_message',
	'not_your_message',
	'not_an_object',
	'bad_id',
	'bad_ts',
	'ts_in_future',
	'bad_kind',
	'bad_text',
	'text_too_long',
	'extra_fields'
]);
/**
 * Refusals of writes in another account's name. An honest client holds such writes only when the
 * relay forwarded them and then lost them (it died before committing them): the socket is closed
 * with 4409 so the client starts over on a fresh document rather than resend them for ever.
 */
const FOREIGN_WRITES: ReadonlySet<string> = new Set(['foreign_client_id', 'bad_author', 'other_users_key']);
/** Over-rate awareness changes dropped per offence counted against the socket. */
const AWARENESS_DROPS_PER_OFFENCE = 10;
const PERSIST_RETRY_MIN_MS = 250;
/** Updates one commit takes from a room's queue at most (a long outage can queue many). */
const ROOM_BATCH_MAX_WRITES = 500;
const PERSIST_RETRY_MAX_MS = 30_000;
/** While the live document is over its limit, a rollover waits for this many times the removals. */
const ROLLOVER_OVER_LIMIT_FACTOR = 4;

interface PendingWrite {
	/** The current epoch's update; null when the write changes only a closed epoch. */
	update: Uint8Array | null;
	/** The socket it came from; null for the relay's own writes. */
	sender: Connection | null;
	effects: UpdateEffects;
	clocks: Map<number, number>;
	seal?: SealCommit;
	legacy?: LegacyCommit;
	/** Called once the write is committed (no argument) or can never be (the error). */
	settle?: (error?: unknown) => void;
	/** Already sent to the room's sockets (client updates are, on arrival; the relay's own after the commit). */
	forwarded?: boolean;
}

/** A closed epoch's document, loaded to validate and carry what its clients still send. */
interface ClosedEpochDoc {
	epoch: number;
	doc: Y.Doc;
	index: RoomIndex;
}

export interface RoomDeps {
	store: DocStore;
	bus: Bus;
	history: HistoryStore;
	log: Logger;
	/** This relay instance, as the holder of compaction leases. */
	owner: string;
	/** LIVE_MESSAGES_MAX: messages the live document keeps before compaction. */
	liveMessagesMax: number;
	/** Removed entries after which the document rolls over to a new epoch. */
	rollover: RolloverLimits;
	/** How long a compaction lease lasts unless renewed (COMPACTION_LEASE_MS). */
	compactionLeaseMs: number;
	/** Entries written to DynamoDB per lease renewal (COMPACTION_WRITE_CHUNK). */
	compactionWriteChunk: number;
	/**
	 * No other relay writes to these rooms (no bus between instances): a compaction's plan then
	 * needs no check against the stored document, which costs a read of the whole live document.
	 */
	soleInstance: boolean;
	/** Called when the room has no sockets and nothing left to write. */
	onIdle(room: Room): void;
	/**
	 * Called when the in-memory document can no longer be trusted: unload it now. `moved`: another
	 * instance rolled the room over to a new epoch (its sockets are told 4410, as by the rollover).
	 */
	onCorrupt(room: Room, moved?: boolean): void;
	/** Called when the room was deleted: close its sockets for good. */
	onGone(room: Room): void;
	/** Called when the room rolls over to a new epoch: `next` settles once the new one is stored. */
	onRetire(room: Room, next: Promise<void>): void;
	/** Compaction steps this relay runs at once, shared by its rooms. */
	compactionSlots: Slots;
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
		sealedIds: new Set(),
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
	/** The background merge of stored rows under way, if any. */
	#merging: Promise<void> | null = null;
	#unsubscribe: (() => Promise<void>) | null = null;
	#destroyed = false;
	#epoch = 0;
	/** Yjs client id → the closed epoch it wrote in, to recognise clients of old documents. */
	readonly #closedClients = new Map<number, number>();
	readonly #closedDocs = new Map<number, Promise<ClosedEpochDoc>>();
	#compaction: Promise<void> | null = null;
	/** Set once the room is rolling over or unloading: it takes no more work. */
	#retiring = false;
	/**
	 * This copy of the room as a compaction lease holder: per copy, not per process, so a stale
	 * copy (one a rollover or reload replaced) can never seal alongside its successor.
	 */
	readonly #owner: string;
	/** Compaction writes this copy of the room has started: the last part of each one's order. */
	#writeAttempts = 0;
	/** Whether this copy took the lease (then it hands it back when it is destroyed). */
	#leased = false;
	/** Another copy held the lease: try again later, in case that copy unloaded or vanished. */
	#compactRetry: NodeJS.Timeout | null = null;

	private constructor(id: string, deps: RoomDeps) {
		this.id = id;
		this.#deps = deps;
		this.#owner = `${deps.owner}/${randomUUID()}`;
		this.#index.clientOwners.set(this.doc.clientID, RELAY_OWNER);
		this.awareness = new awarenessProtocol.Awareness(this.doc);
		this.awareness.setLocalState(null);
		this.awareness.on('update', this.#onAwarenessUpdate);
		this.doc.on('afterTransaction', (transaction: Y.Transaction) => indexNewMessages(transaction, this.#index.messageAuthors));
		for (const key of [...PER_USER_KEYS, EDITS_KEY, DELETIONS_KEY]) this.doc.getMap(key);
	}

	static async load(id: string, deps: RoomDeps): Promise<Room> {
		const room = new Room(id, deps);
		const stored = await deps.store.load(id);
		Y.applyUpdate(room.doc, stored.state, 'load');
		// The relay writes (carried messages) with its document's client id: never one in use.
		while (room.doc.store.clients.has(room.doc.clientID)) room.doc.clientID = randomClientId();
		room.#index.clientOwners.set(room.doc.clientID, RELAY_OWNER);
		room.#epoch = stored.epoch;
		room.#storedRows = stored.rows;
		for (const { epoch, stateVector } of stored.closedEpochs) {
			for (const client of stateVector.keys()) room.#closedClients.set(client, epoch);
		}
		for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(room.doc))) room.#durable.set(client, clock);
		indexClientOwners(room.doc, room.#index);
		room.#unsubscribe = await deps.bus.subscribe(roomChannel(id), (payload) => room.#onBusMessage(payload));
		room.#maybeCompact();
		return room;
	}

	get epoch(): number {
		return this.#epoch;
	}

	get idle(): boolean {
		return (
			this.connections.size === 0 && this.#queue.length === 0 && this.#flushing === null && this.#compaction === null && this.#merging === null
		);
	}

	/** Tells the relay this room may be unloaded; never for a copy that is on its way out. */
	#notifyIdle(): void {
		if (this.idle && !this.#retiring && !this.#destroyed) this.#deps.onIdle(this);
	}

	/**
	 * Starts a socket's session with the current awareness states. The relay's sync step 1 waits
	 * for the client's: its state vector tells which epoch the client's document belongs to.
	 */
	join(conn: Connection): void {
		if (this.#retiring) {
			conn.close(CloseCode.goingAway, 'room reloading');
			return;
		}
		this.connections.add(conn);
		const states = this.awareness.getStates();
		if (states.size > 0) {
			conn.send(encodeAwarenessFrame(this.awareness, [...states.keys()]));
		}
		if (conn.identity.extensions) conn.send(this.#durableFrame());
	}

	leave(conn: Connection): void {
		if (!this.connections.delete(conn)) return;
		if (conn.legacy) this.#dropUnusedClosedDocs();
		if (conn.awarenessClients.size > 0) {
			awarenessProtocol.removeAwarenessStates(this.awareness, [...conn.awarenessClients], conn);
		}
		this.#notifyIdle();
	}

	/** Handles one inbound frame; throws on a malformed one (the relay closes that socket). */
	receive(conn: Connection, frame: Uint8Array): void {
		if (this.#retiring) return;
		const decoder = decoding.createDecoder(frame);
		const type = decoding.readVarUint(decoder);
		switch (type) {
			case MessageType.sync:
				this.#receiveSync(conn, decoder);
				return;
			case MessageType.awareness:
				// A client of a closed epoch is on its way out: its presence is not the room's.
				if (conn.legacy) return;
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
			const stateVector = decoding.readVarUint8Array(decoder);
			if (conn.legacy) return; // it was asked for what it has; nothing of this epoch is its
			const closedEpoch = conn.synced ? null : this.#closedEpochOf(Y.decodeStateVector(stateVector));
			if (closedEpoch !== null) {
				this.#beginCarry(conn, closedEpoch);
				return;
			}
			const encoder = encoding.createEncoder();
			encoding.writeVarUint(encoder, MessageType.sync);
			syncProtocol.writeSyncStep2(encoder, this.doc, stateVector);
			conn.send(encoding.toUint8Array(encoder));
			if (!conn.synced) {
				conn.synced = true;
				conn.send(syncStep1Frame(this.doc));
			}
			return;
		}
		if (syncType === syncProtocol.messageYjsSyncStep2 || syncType === syncProtocol.messageYjsUpdate) {
			const update = decoding.readVarUint8Array(decoder);
			if (conn.legacy) this.#receiveCarry(conn, update);
			else this.#receiveUpdate(conn, update);
			return;
		}
		throw new Error(`unknown sync message type ${syncType}`);
	}

	#receiveUpdate(conn: Connection, update: Uint8Array): void {
		conn.synced = true; // a client that writes without a sync step 1 writes to this epoch
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
		if (rejection && FOREIGN_WRITES.has(rejection.problem)) {
			this.#deps.log.info(`[relay] room ${this.id}: ${conn.userId} sent others' writes the room lacks: ${rejection.problem} (${rejection.detail})`);
			conn.close(CloseCode.resync, `start over on a fresh document: ${rejection.problem}`);
			this.leave(conn);
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
		// An update of new structs only (what a client's own changes are) integrates the same way
		// in every copy of the room: it is forwarded and stored as sent, and Yjs, with no listener
		// asking for it, does not encode it again. One that repeats structs the room has is not:
		// its repeated items may have origins only the relay has, which would break recipients'
		// copies, so what goes on is the update Yjs encodes for what it integrated.
		let integrated: Uint8Array | null = update;
		try {
			if (admitted.repeats) integrated = captureUpdate(this.doc, conn, () => Y.applyUpdate(this.doc, update, conn));
			else Y.applyUpdate(this.doc, update, conn);
		} catch (error) {
			this.#integrationFailed(conn, error);
			return;
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
		// Forwarded before the commit, for latency: the acknowledgement (`durable`) and the other
		// instances wait for the commit, so what its sender sees as stored is stored.
		this.#broadcast(updateMessage(integrated), conn);
		this.#enqueue({ update: integrated, sender: conn, effects, clocks: admitted.clocks, forwarded: true });
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
		conn.send(syncStep1Frame(this.doc));
	}

	/**
	 * Brings a refused sender's document back in line with the room: an update that deletes,
	 * in the sender's copy, every item the refused update added. The sender's own client then
	 * holds them as tombstones, which validation admits, so its later updates stay contiguous.
	 */
	#revert(conn: Connection, update: Uint8Array, doc: Y.Doc = this.doc): void {
		const ranges = new Map<number, Array<[number, number]>>();
		// Safe to decode: only updates that passed the shape check and decoding reach here.
		for (const struct of Y.decodeUpdate(update).structs) {
			const start = Math.max(struct.id.clock, Y.getState(doc.store, struct.id.client));
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
		conn.send(updateMessage(encoding.toUint8Array(encoder)));
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
		const frame = WireMessage.of(wrapAwarenessUpdate(update));
		for (const conn of this.connections) if (!conn.legacy) conn.send(frame);
		if (origin !== 'bus') void this.#publish(BusKind.awareness, '', update);
	};

	/**
	 * Sends a frame of this epoch's document to the room's sockets — not to one whose epoch is not
	 * known yet (its sync step 2 will carry the update) nor to one of a closed epoch.
	 */
	#broadcast(frame: WireMessage, except: Connection | null): void {
		for (const conn of this.connections) if (conn !== except && conn.synced && !conn.legacy) conn.send(frame);
	}

	#enqueue(write: PendingWrite): void {
		this.#queue.push(write);
		this.#flushing ??= this.#flush();
	}

	/** Queues the relay's own write and resolves once it is committed. */
	#commitOwn(write: Omit<PendingWrite, 'sender' | 'effects' | 'settle'>): Promise<void> {
		return new Promise((resolve, reject) => {
			this.#enqueue({ ...write, sender: null, effects: NO_EFFECTS, settle: (error) => (error ? reject(error) : resolve()) });
		});
	}

	/**
	 * The next batch: the queued client updates up to the first compaction or carry, which commit
	 * alone (their transactions check conditions of their own).
	 */
	#nextBatch(): PendingWrite[] {
		const first = this.#queue[0];
		if (first.seal || first.legacy) return [first];
		const end = this.#queue.findIndex((w) => w.seal !== undefined || w.legacy !== undefined);
		return this.#queue.slice(0, Math.min(end < 0 ? this.#queue.length : end, ROOM_BATCH_MAX_WRITES));
	}

	/** Commits queued updates in batches, in arrival order, retrying until the store answers. */
	async #flush(): Promise<void> {
		let retryMs = PERSIST_RETRY_MIN_MS;
		while (this.#queue.length > 0) {
			// A snapshot: updates accepted while this batch commits wait for the next one.
			const batch = this.#nextBatch();
			let stored: number;
			try {
				const updates = batch.flatMap((w) => (w.update ? [w.update] : []));
				stored = await this.#deps.store.append(this.id, this.#epoch, updates, mergeEffects(batch), { seal: batch[0].seal, legacy: batch[0].legacy });
			} catch (error) {
				if (this.#destroyed) {
					// Nothing more will be tried: whoever waits on these writes is told so.
					for (const write of this.#queue.splice(0)) write.settle?.(error);
					break;
				}
				if (error instanceof StoreConflict) {
					this.#storeConflict(error);
					break;
				}
				this.#deps.log.error(`[relay] room ${this.id}: storing ${batch.length} updates failed, retrying in ${retryMs} ms:`, error);
				await new Promise((resolve) => setTimeout(resolve, retryMs));
				retryMs = Math.min(retryMs * 2, PERSIST_RETRY_MAX_MS);
				continue;
			}
			retryMs = PERSIST_RETRY_MIN_MS;
			this.#queue.splice(0, batch.length);
			this.#storedRows += stored;
			const unsent = batch.filter((w) => w.update !== null && !w.forwarded);
			if (unsent.length === 1) {
				this.#broadcast(updateMessage(unsent[0].update!), unsent[0].sender);
			} else if (unsent.length > 1) {
				this.#broadcast(updateMessage(Y.mergeUpdates(unsent.map((w) => w.update!))), null);
			}
			for (const write of batch) {
				if (write.update) {
					advanceClocks(this.#durable, write.clocks);
					void this.#publish(BusKind.update, write.sender?.userId ?? RELAY_OWNER, write.update);
				}
				write.settle?.();
			}
			this.#sendDurable();
			if (this.#storedRows >= ROOM_UPDATE_ROWS_MERGE_AT) this.#mergeStoredRows();
			this.#maybeCompact();
		}
		this.#flushing = null;
		this.#notifyIdle();
	}

	/** The store refused a write for good: the room is gone, or this copy of it is stale. */
	#storeConflict(conflict: StoreConflict): void {
		this.#deps.log.info(`[relay] room ${this.id}: ${conflict.message}; reloading`);
		for (const write of this.#queue.splice(0)) write.settle?.(conflict);
		this.#retiring = true;
		if (conflict.kind === 'room_gone') this.#deps.onGone(this);
		else this.#deps.onCorrupt(this, conflict.kind === 'epoch_moved');
	}

	/**
	 * Merges the room's stored rows in the background: commits go on meanwhile (new rows are
	 * counted towards the next merge), and the store replaces only the rows it read.
	 */
	#mergeStoredRows(): void {
		if (this.#merging) return;
		this.#storedRows = 1;
		this.#merging = this.#deps.store
			.mergeRows(this.id, this.#epoch, ROOM_UPDATE_ROWS_MERGE_AT)
			.then(
				() => undefined,
				// Merging only saves space; the rows stay valid. Tried again after more writes.
				(error: unknown) => this.#deps.log.error(`[relay] room ${this.id}: merging stored updates failed:`, error)
			)
			.finally(() => {
				this.#merging = null;
				this.#notifyIdle();
			});
	}

	/** Applies the relay's own change to the document and returns the update Yjs encoded for it. */
	#localChange(change: () => void): Uint8Array | null {
		return captureUpdate(this.doc, RELAY_ORIGIN, () => this.doc.transact(change, RELAY_ORIGIN));
	}

	// ---- Compaction and epochs ----

	/** Starts compaction when the live document holds too much; at most one run at a time. */
	#maybeCompact(): void {
		// Refused the lease: another copy compacts, and is woken by the same updates. Asking again
		// on every update would only queue more statements on the room's row.
		if (this.#compaction || this.#compactRetry || this.#retiring || this.#destroyed) return;
		if (this.doc.getArray(MESSAGES_KEY).length <= this.#deps.liveMessagesMax) return;
		this.#compaction = this.#compact().finally(() => {
			this.#compaction = null;
			this.#notifyIdle();
		});
	}

	/**
	 * Seals the oldest live messages into DynamoDB until the live document is back under its
	 * limit, then rolls over when removed entries' metadata has grown too large. Retries with
	 * backoff while a store is unreachable; the room keeps serving meanwhile.
	 */
	async #compact(): Promise<void> {
		const { store, history, liveMessagesMax } = this.#deps;
		const owner = this.#owner;
		const messages = this.doc.getArray<ChatMessage>(MESSAGES_KEY);
		let retryMs = COMPACTION_RETRY_MIN_MS;
		while (!this.#destroyed && !this.#retiring) {
			// A step at a time per relay, however many rooms pass their limit together (rooms of
			// one conversation's size fill up at the same pace): their steps queue instead of all
			// contending for the event loop, the HTTP client and the database at once.
			const release = await this.#deps.compactionSlots.acquire();
			let failure: unknown = null;
			try {
				if (this.#destroyed || this.#retiring) return;
				const leaseFrom = Date.now();
				const lease = await store.acquireLease(this.id, owner, this.#deps.compactionLeaseMs);
				if (!lease) {
					// Another copy compacts this room. It is woken by the updates this copy publishes;
					// should it unload (handing the lease back) or vanish (the lease lapses), this
					// copy takes over at its next try, a quarter of a lease from now.
					if (this.#destroyed || this.#retiring) return;
					this.#compactRetry ??= setTimeout(() => {
						this.#compactRetry = null;
						this.#maybeCompact();
					}, this.#deps.compactionLeaseMs / 4);
					this.#compactRetry.unref();
					return;
				}
				this.#leased = true;
				if (this.#destroyed) {
					// destroy() ran while the lease was being taken: hand it back, as it would have.
					await store.releaseLease(this.id, owner).catch(() => undefined);
					return;
				}
				if (this.#retiring) return;
				// The document rolls over once removed entries' metadata has built up, checked before
				// every step. While it is still over its limit (a backlog being sealed, or traffic
				// faster than compaction) only at four times that: a backlog then costs one or two
				// rollovers rather than one per step, and traffic that never lets up still rolls it over.
				const over = messages.length > liveMessagesMax;
				const { connected, idle } = this.#deps.rollover;
				const removedLimit = (this.connections.size > 0 ? connected : idle) * (over ? ROLLOVER_OVER_LIMIT_FACTOR : 1);
				if (removedMessageCount(this.doc) >= removedLimit) {
					release();
					await this.#rollover(lease.fence);
					return;
				}
				if (over) {
					// A backlog (after an outage, or a burst) is sealed in steps, each committed on its own.
					const count = Math.min(messages.length - compactionKeep(liveMessagesMax), COMPACTION_BATCH_MAX);
					const from = lease.historyCount;
					const entries = sealedEntries(this.doc, count, from);
					if (!(await this.#writeSealed(entries, from, lease.fence, leaseFrom))) continue;
					if (this.#destroyed || this.#retiring) return;
					const ids = leadingIds(this.doc, count);
					// An offline client's message can land among the oldest while the write was under
					// way: plan again (the same keys are simply written over).
					if (ids.some((id, i) => id !== entries[i].message.id)) continue;
					const update = this.#localChange(() => {
						messages.delete(0, count);
						const edits = this.doc.getMap(EDITS_KEY);
						const deletions = this.doc.getMap(DELETIONS_KEY);
						for (const id of ids) {
							if (edits.has(id)) edits.delete(id);
							if (deletions.has(id)) deletions.delete(id);
						}
					});
					for (const id of ids) {
						this.#index.messageAuthors.delete(id);
						this.#index.sealedIds.add(id);
					}
					await this.#commitOwn({
						update,
						clocks: new Map(),
						seal: {
							from,
							count,
							owner,
							fence: lease.fence,
							leadingIds: this.#deps.soleInstance ? null : (state) => startsWith(state, ids)
						}
					});
					retryMs = COMPACTION_RETRY_MIN_MS;
					continue;
				}
				return;
			} catch (error) {
				if (error instanceof StoreConflict) return; // the room is reloading
				failure = error;
			} finally {
				release();
			}
			this.#deps.log.error(`[relay] room ${this.id}: compaction failed, retrying in ${retryMs} ms:`, failure);
			await new Promise((resolve) => setTimeout(resolve, retryMs));
			retryMs = Math.min(retryMs * 2, COMPACTION_RETRY_MAX_MS);
		}
	}

	/**
	 * Writes a compaction step's entries to DynamoDB, each chunk well inside the lease: a write
	 * still in flight when the lease lapses could land after the next holder's writes to the same
	 * keys, so it is abandoned first. The lease is renewed before every chunk after the first.
	 * Every attempt writes in an order of its own (its step, fence and a number this copy of the
	 * room raises per attempt), so whichever of two attempts' writes lands last, the later attempt's
	 * entries are the ones read. Chunks end at multiples of HISTORY_ITEM_MESSAGES, where the store
	 * cuts its runs anyway. False: the lease changed hands meanwhile (the step is planned again).
	 */
	async #writeSealed(entries: HistoryEntry[], from: number, fence: number, leaseFrom: number): Promise<boolean> {
		const { store, history, compactionLeaseMs, compactionWriteChunk: writeChunk } = this.#deps;
		const order = { step: from, fence, attempt: ++this.#writeAttempts };
		for (let at = 0; at < entries.length; ) {
			if (this.#destroyed || this.#retiring) return false;
			if (at > 0) {
				leaseFrom = Date.now();
				const renewed = await store.acquireLease(this.id, this.#owner, compactionLeaseMs);
				// destroy() handed the lease back while it was being renewed: hand it back again, or
				// the next copy of the room would wait a whole lease to compact.
				if (this.#destroyed) await store.releaseLease(this.id, this.#owner).catch(() => undefined);
				if (renewed?.fence !== fence || this.#destroyed || this.#retiring) return false;
			}
			const budget = Math.floor(leaseFrom + compactionLeaseMs * COMPACTION_WRITE_SHARE - Date.now());
			// Taking or renewing the lease took the write's whole share: not a request sent late.
			if (budget <= 0) throw new Error('the compaction lease ran short before the write could start');
			const chunkEnd = from + at + writeChunk;
			const aligned = chunkEnd - (chunkEnd % HISTORY_ITEM_MESSAGES);
			const end = (aligned > from + at ? aligned : chunkEnd) - from;
			await history.putEntries(this.id, entries.slice(at, end), { signal: AbortSignal.timeout(budget), order });
			at = end;
		}
		return true;
	}

	/**
	 * Before an idle room leaves memory: a worn document rolls over now, when no socket has to
	 * move. Errors are logged; the room unloads either way.
	 */
	async beforeUnload(): Promise<void> {
		await this.#compaction;
		if (this.#retiring || this.#destroyed || this.connections.size > 0) return;
		if (removedMessageCount(this.doc) < this.#deps.rollover.idle) return;
		try {
			const lease = await this.#deps.store.acquireLease(this.id, this.#owner, this.#deps.compactionLeaseMs);
			this.#leased = lease !== null;
			if (lease && !this.#retiring && !this.#destroyed) await this.#rollover(lease.fence);
		} catch (error) {
			this.#deps.log.error(`[relay] room ${this.id}: rolling over before unloading failed:`, error);
		}
	}

	/**
	 * Closes this epoch and opens the next, seeded with the live messages. Sockets on this one
	 * are closed with 4410 first; the relay loads the new epoch for whoever connects next.
	 */
	async #rollover(fence: number): Promise<void> {
		if (this.#retiring || this.#destroyed) return; // unloading, or already rolling over
		this.#retiring = true;
		const next = (async () => {
			// What this copy took commits, and is acknowledged on the sockets still open, before
			// any 4410: a client then appends again only what the room never took. (A message taken
			// but unacknowledged could be sealed in the next epoch before its sender came back,
			// and no later copy of the room knows its id.) Frames arriving meanwhile are not taken;
			// carries under way finish first, each with its own acknowledgement.
			await this.flushed();
			await Promise.all([...this.connections].map((conn) => conn.legacy?.chain));
			await this.flushed();
			for (const conn of [...this.connections]) {
				// A client of a closed epoch whose carry had not finished is told what that epoch
				// holds, as the carry would have: it may hold messages of its own the relay took
				// before (a restart cut the acknowledgement) that are in history by now.
				const closed = conn.legacy ? await this.#closedDoc(conn.legacy.epoch).catch(() => null) : null;
				if (closed && !conn.closed) {
					this.#moveLegacy(conn, closed);
					continue;
				}
				conn.close(CloseCode.roomMoved, 'the room moved to a new document; fetch a new descriptor');
				this.leave(conn);
			}
			await this.#deps.store.rollover(this.id, this.#epoch, { owner: this.#owner, fence }, closeEpoch);
			this.#deps.log.info(`[relay] room ${this.id}: rolled over to epoch ${this.#epoch + 1}`);
			await publishControl(this.#deps.bus, { type: 'room-moved', roomId: this.id, epoch: this.#epoch + 1 }).catch((error) =>
				this.#deps.log.error(`[relay] room ${this.id}: announcing the new epoch failed:`, error)
			);
		})();
		this.#deps.onRetire(this, next);
		await next;
	}

	/** The closed epoch a client's document belongs to, from its state vector; null: this one. */
	#closedEpochOf(stateVector: Map<number, number>): number | null {
		let closed: number | null = null;
		for (const client of stateVector.keys()) {
			if (this.doc.store.clients.has(client)) return null;
			const epoch = this.#closedClients.get(client);
			if (epoch !== undefined && (closed === null || epoch > closed)) closed = epoch;
		}
		return closed;
	}

	#closedDoc(epoch: number): Promise<ClosedEpochDoc> {
		let loading = this.#closedDocs.get(epoch);
		if (!loading) {
			loading = this.#deps.store.loadEpoch(this.id, epoch).then((state) => {
				const doc = new Y.Doc();
				Y.applyUpdate(doc, state, 'load');
				const index: RoomIndex = {
					messageAuthors: new Map(doc.getArray<ChatMessage>(MESSAGES_KEY).map((m) => [m.id, m.author])),
					sealedIds: new Set(),
					clientOwners: new Map([[this.doc.clientID, RELAY_OWNER]]),
					isAdmin: this.#index.isAdmin
				};
				indexClientOwners(doc, index);
				return { epoch, doc, index };
			});
			loading.catch(() => this.#closedDocs.delete(epoch));
			this.#closedDocs.set(epoch, loading);
		}
		return loading;
	}

	#dropUnusedClosedDocs(): void {
		for (const [epoch, loading] of this.#closedDocs) {
			if ([...this.connections].some((c) => c.legacy?.epoch === epoch)) continue;
			this.#closedDocs.delete(epoch);
			void loading.then((closed) => closed.doc.destroy(), () => undefined);
		}
	}

	/** Runs a closed-epoch client's frames one after another (loading its epoch is async). */
	#carryStep(conn: Connection, step: (closed: ClosedEpochDoc) => void | Promise<void>): void {
		const legacy = conn.legacy!;
		legacy.chain = legacy.chain
			.then(async () => {
				if (conn.closed || this.#retiring) return;
				const closed = await this.#closedDoc(legacy.epoch);
				// The room may have begun to roll over or unload while the epoch loaded.
				if (conn.closed || this.#retiring) return;
				await step(closed);
			})
			.catch((error: unknown) => {
				if (error instanceof StoreConflict) return; // the room reloads; the client comes back
				this.#deps.log.error(`[relay] room ${this.id}: carrying from epoch ${legacy.epoch} failed:`, error);
				conn.close(CloseCode.goingAway, 'try again');
			});
	}

	/** A client of closed epoch `epoch`: ask it for what that epoch lacks. */
	#beginCarry(conn: Connection, epoch: number): void {
		this.#deps.log.info(`[relay] room ${this.id}: ${conn.userId} holds a document of closed epoch ${epoch}; carrying its updates`);
		conn.legacy = { epoch, chain: Promise.resolve(), asked: false };
		this.#carryStep(conn, (closed) => {
			conn.send(syncStep1Frame(closed.doc));
			conn.legacy!.asked = true;
		});
	}

	/**
	 * An update from a client of a closed epoch: validated against that epoch, applied to it, and
	 * its new messages (and read marker) appended to the current document by the relay. Once the
	 * answer to the relay's sync step 1 is stored, the socket is closed with 4410.
	 */
	#receiveCarry(conn: Connection, update: Uint8Array): void {
		if (!conn.updateRate.take()) {
			this.#reject(conn, 'rate_limited', 'too many updates; slow down and resync');
			return;
		}
		this.#carryStep(conn, async (closed) => {
			const finish = (): void => {
				if (conn.legacy?.asked && !conn.closed) this.#moveLegacy(conn, closed);
			};
			const admitted = emptyAdmitted();
			const rejection = validateUpdate(closed.doc, closed.index, conn.userId, update, Date.now(), admitted);
			if (rejection?.problem === 'missing_dependency') {
				if (this.#countOffence(conn, 'missing_dependency')) return;
				conn.send(syncStep1Frame(closed.doc));
				return;
			}
			if (rejection) {
				this.#reject(conn, rejection.problem, rejection.detail);
				if (conn.identity.extensions && !conn.closed && REVERTIBLE.has(rejection.problem)) this.#revert(conn, update, closed.doc);
				return;
			}
			if (!admitted.changes) {
				finish();
				return;
			}
			const clients = [...admitted.clocks.keys()];
			const expected = new Map(clients.map((c) => [c, Y.getState(closed.doc.store, c)] as const));
			const integrated = captureUpdate(closed.doc, conn, () => Y.applyUpdate(closed.doc, update, conn));
			if (closed.doc.store.pendingStructs !== null || closed.doc.store.pendingDs !== null || integrated === null) {
				// Drop the copy that may now be off; the next carry reloads it from the store.
				this.#closedDocs.delete(closed.epoch);
				conn.close(CloseCode.malformed, 'update could not be applied');
				return;
			}
			for (const client of admitted.clientIds) closed.index.clientOwners.set(client, conn.userId);
			const next = new Map(clients.map((c) => [c, Y.getState(closed.doc.store, c)] as const));
			const carried = this.#carryIntoCurrent(conn, admitted);
			const last = carried.messages.at(-1);
			await new Promise<void>((resolve, reject) => {
				this.#enqueue({
					update: carried.update,
					sender: conn,
					effects: {
						lastMessage: last ? toPreview(last, conn.identity.userName) : null,
						reads: carried.readId ? new Map([[conn.userId, carried.readId]]) : new Map()
					},
					clocks: carried.update ? updateClocks(carried.update) : new Map(),
					legacy: { epoch: closed.epoch, update: integrated, expected, next },
					settle: (error) => (error ? reject(error) : resolve())
				});
			});
			finish();
		});
	}

	/** A closed-epoch client is told what that epoch holds (with the extensions), then to move (4410). */
	#moveLegacy(conn: Connection, closed: ClosedEpochDoc): void {
		if (conn.identity.extensions) conn.send(durableFrame(stateVectorOf(closed.doc)));
		conn.close(CloseCode.roomMoved, 'the room moved to a new document; fetch a new descriptor');
		this.leave(conn);
	}

	/** Appends a closed-epoch client's new messages (those the room lacks) and read marker. */
	#carryIntoCurrent(conn: Connection, admitted: Admitted): { update: Uint8Array | null; messages: ChatMessage[]; readId: string | null } {
		const fresh = admitted.messages.filter((m) => !this.#index.messageAuthors.has(m.id) && !this.#index.sealedIds.has(m.id));
		const reads = this.doc.getMap<string>(READS_KEY);
		const current = reads.get(conn.userId);
		const readId = admitted.readId !== null && (current === undefined || current < admitted.readId) ? admitted.readId : null;
		if (fresh.length === 0 && readId === null) return { update: null, messages: [], readId: null };
		const update = this.#localChange(() => {
			if (fresh.length > 0) this.doc.getArray<ChatMessage>(MESSAGES_KEY).push(fresh);
			if (readId !== null) reads.set(conn.userId, readId);
		});
		return { update, messages: fresh, readId };
	}

	#durableFrame(): Uint8Array {
		return durableFrame(this.#durable);
	}

	#sendDurable(): void {
		let frame: WireMessage | null = null;
		for (const conn of this.connections) {
			if (!conn.identity.extensions || conn.legacy) continue;
			frame ??= WireMessage.of(this.#durableFrame());
			conn.send(frame);
		}
	}

	async #publish(kind: BusKind, userId: string, data: Uint8Array): Promise<void> {
		if (this.#deps.soleInstance) return; // no other relay instance to tell
		const encoder = encoding.createEncoder();
		encoding.writeVarString(encoder, this.#deps.bus.instanceId);
		encoding.writeVarUint(encoder, this.#epoch);
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
		// Another instance still on an older epoch (or already on a newer one): not this document.
		if (decoding.readVarUint(decoder) !== this.#epoch || this.#retiring) return;
		const kind = decoding.readVarUint(decoder);
		const userId = decoding.readVarString(decoder);
		const data = decoding.readVarUint8Array(decoder);
		if (kind === BusKind.update) {
			const clocks = updateClocks(data);
			for (const client of clocks.keys()) if (!this.#index.clientOwners.has(client)) this.#index.clientOwners.set(client, userId);
			this.#broadcast(updateMessage(data), null);
			Y.applyUpdate(this.doc, data, 'bus' satisfies ChangeOrigin);
			advanceClocks(this.#durable, clocks);
			this.#sendDurable();
			// The lease holder seals what other instances committed too, or it would wait for a
			// write of its own: a room whose other copies take every write would never compact.
			this.#maybeCompact();
		} else if (kind === BusKind.awareness) {
			awarenessProtocol.applyAwarenessUpdate(this.awareness, data, 'bus' satisfies ChangeOrigin);
		}
	}

	/** Waits for queued writes to commit and a merge under way to end (bounded by the caller's timeout). */
	async flushed(): Promise<void> {
		for (let busy = this.#flushing ?? this.#merging; busy; busy = this.#flushing ?? this.#merging) await busy;
	}

	/** Closes every socket with `code` and forgets the room. Safe to call twice. */
	async destroy(code: number = CloseCode.goingAway, reason = 'room unloaded'): Promise<void> {
		// A copy on its way out starts no compaction or rollover while its writes commit (the next
		// copy does that when it loads).
		this.#retiring = true;
		for (const conn of this.connections) conn.close(code, reason);
		this.connections.clear();
		await this.flushed();
		if (this.#destroyed) return;
		this.#destroyed = true;
		this.#retiring = true;
		if (this.#compactRetry) clearTimeout(this.#compactRetry);
		this.#compactRetry = null;
		for (const loading of this.#closedDocs.values()) void loading.then((closed) => closed.doc.destroy(), () => undefined);
		this.#closedDocs.clear();
		this.awareness.off('update', this.#onAwarenessUpdate);
		this.awareness.destroy();
		this.doc.destroy();
		if (this.#leased) {
			// The next copy of the room may compact at once instead of waiting for the lease to lapse.
			await this.#deps.store.releaseLease(this.id, this.#owner).catch(() => undefined);
		}
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
	admitted.repeats = true; // not checked: take Yjs's own encoding of what it integrated
	return null;
}

/** A closing epoch's final state (removed content dropped) and the next epoch's seed. */
function closeEpoch(committed: Uint8Array): EpochClose {
	const doc = new Y.Doc();
	try {
		Y.applyUpdate(doc, committed);
		return { closing: { state: Y.encodeStateAsUpdate(doc), stateVector: Y.encodeStateVector(doc) }, seed: epochSeed(doc) };
	} finally {
		doc.destroy();
	}
}

/** Whether the live document stored as `state` begins with the messages `ids`, in that order. */
function startsWith(state: Uint8Array, ids: string[]): boolean {
	const doc = new Y.Doc();
	try {
		Y.applyUpdate(doc, state);
		return leadingIds(doc, ids.length).every((id, i) => id === ids[i]);
	} finally {
		doc.destroy();
	}
}

/** Runs `change` on `doc` and returns the update Yjs encoded for what it changed under `origin`. */
function captureUpdate(doc: Y.Doc, origin: unknown, change: () => void): Uint8Array | null {
	let captured: Uint8Array | null = null;
	const capture = (encoded: Uint8Array, from: unknown): void => {
		if (from === origin) captured = captured ? Y.mergeUpdates([captured, encoded]) : encoded;
	};
	doc.on('update', capture);
	try {
		change();
	} finally {
		doc.off('update', capture);
	}
	return captured;
}

const NO_EFFECTS: UpdateEffects = { lastMessage: null, reads: new Map() };

/**
 * Records the messages a transaction appended (id → author), from the structs it added alone. An
 * array observer's `event.changes` would walk the whole live array, tombstones included, on every
 * update: a thousand items per message, the largest part of applying one (bench/peers.ts --profile).
 */
function indexNewMessages(transaction: Y.Transaction, messageAuthors: Map<string, string>): void {
	const messages = transaction.doc.getArray(MESSAGES_KEY);
	for (const [client, after] of transaction.afterState) {
		const before = transaction.beforeState.get(client) ?? 0;
		if (after <= before) continue;
		const structs = transaction.doc.store.clients.get(client);
		if (!structs) continue;
		// Items merged with their left neighbours start before `before`: re-recording those is harmless.
		for (let i = Y.findIndexSS(structs, before); i < structs.length; i++) {
			const struct = structs[i];
			if (!(struct instanceof Y.Item) || struct.deleted || struct.parent !== messages || !(struct.content instanceof Y.ContentAny)) continue;
			for (const value of struct.content.arr as ChatMessage[]) messageAuthors.set(value.id, value.author);
		}
	}
}

/** Records which account each Yjs client id of `doc` belongs to, from what it wrote first. */
function indexClientOwners(doc: Y.Doc, index: RoomIndex): void {
	const messages = doc.getArray<ChatMessage>(MESSAGES_KEY);
	const perUserMaps: unknown[] = PER_USER_KEYS.map((key) => doc.getMap<string>(key));
	for (const [client, structs] of doc.store.clients) {
		if (index.clientOwners.has(client)) continue;
		for (const struct of structs) {
			if (!(struct instanceof Y.Item) || struct.deleted) continue;
			if (struct.parent === messages && struct.content instanceof Y.ContentAny) {
				const author = (struct.content.arr[0] as ChatMessage | undefined)?.author;
				if (author) index.clientOwners.set(client, author);
				break;
			}
			if (perUserMaps.includes(struct.parent) && struct.parentSub) {
				index.clientOwners.set(client, struct.parentSub);
				break;
			}
		}
	}
}

function randomClientId(): number {
	return Math.floor(Math.random() * 0xffffffff);
}

function stateVectorOf(doc: Y.Doc): Map<number, number> {
	return Y.decodeStateVector(Y.encodeStateVector(doc));
}

function syncStep1Frame(doc: Y.Doc): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, MessageType.sync);
	syncProtocol.writeSyncStep1(encoder, doc);
	return encoding.toUint8Array(encoder);
}

/** The `durable` extension frame: client id → clock of what is committed. */
function durableFrame(clocks: Map<number, number>): Uint8Array {
	const encoder = encoding.createEncoder();
	encoding.writeVarUint(encoder, MessageType.durable);
	encoding.writeVarUint(encoder, clocks.size);
	for (const [client, clock] of clocks) {
		encoding.writeVarUint(encoder, client);
		encoding.writeVarUint(encoder, clock);
	}
	return encoding.toUint8Array(encoder);
}

const enum BusKind {
	update = 0,
	awareness = 1
}

export function roomChannel(roomId: string): string {
	return `room:${roomId}`;
}

/**
 * A sync update message ([sync][update][length][update], as y-protocols writes it), framed for the
 * wire in one allocation: it goes to every other socket of the room.
 */
export function updateMessage(update: Uint8Array): WireMessage {
	let lengthBytes = 1;
	for (let n = update.length; n > 0x7f; n = Math.floor(n / 128)) lengthBytes++;
	return new WireMessage(2 + lengthBytes + update.length, (into) => {
		into[0] = MessageType.sync;
		into[1] = syncProtocol.messageYjsUpdate;
		let at = 2;
		let n = update.length;
		// lib0's varUint: seven bits a byte, lowest first, the high bit set on all but the last.
		for (; n > 0x7f; n = Math.floor(n / 128)) into[at++] = 0x80 | (n & 0x7f);
		into[at++] = n;
		into.set(update, at);
	});
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

/**
 * The room list's preview of a message, stored as jsonb: cut by code points (a cut through a
 * surrogate pair leaves text PostgreSQL refuses), without NUL (which jsonb cannot hold).
 */
export function toPreview(message: ChatMessage, authorName: string): RoomPreview {
	const text = message.text.replaceAll('\u0000', '');
	// A string has at most as many code points as UTF-16 units: a short one is never cut, and
	// splitting it into code points (a preview per message) is skipped.
	const chars = text.length > PREVIEW_MAX_CHARS ? Array.from(text) : null;
	return {
		id: message.id,
		author: message.author,
		authorName,
		text: chars && chars.length > PREVIEW_MAX_CHARS ? `${chars.slice(0, PREVIEW_MAX_CHARS - 1).join('')}…` : text,
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
