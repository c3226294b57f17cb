/**
 * A room's live document in PostgreSQL: every accepted update is a row of the room's current
 * epoch, committed before the relay calls it durable. Loading merges the rows; the relay merges
 * old rows from time to time. The same transactions keep the room's history watermark (what
 * compaction sealed into DynamoDB), its epoch, and closed epochs' state vectors, so a commit
 * that a newer compactor, epoch or carry has overtaken fails instead of writing stale state.
 */
import * as Y from 'yjs';
import type { Database, Queryable } from '../src/lib/server/db/database';
import { mergeUpdatesOffThread } from './merge-thread';
import type { RoomPreview } from '../src/lib/shared/api-types';

export interface UpdateEffects {
	/** The newest message the batch appended, for the room list's preview and ordering. */
	lastMessage: RoomPreview | null;
	/** user id → newest read message id written in the batch. */
	reads: Map<string, string>;
}

/** A compaction's commit: `count` messages sealed at keys `from` .. `from + count - 1`. */
export interface SealCommit {
	from: number;
	count: number;
	owner: string;
	fence: number;
	/**
	 * Ids of the sealed messages: the stored live document must still begin with them (another
	 * instance may have committed a message among them that this one has not seen yet).
	 */
	leadingIds: ((state: Uint8Array) => boolean) | null;
}

/** What a rollover stores, computed from the epoch's committed state (not a relay's copy of it). */
export interface EpochClose {
	closing: { state: Uint8Array; stateVector: Uint8Array };
	seed: Uint8Array;
}

/** Updates that a client of a closed epoch sent, stored into that epoch as they are carried. */
export interface LegacyCommit {
	epoch: number;
	update: Uint8Array;
	/** The closed epoch's state vector this carry was computed against, for its clients. */
	expected: Map<number, number>;
	/** The same clients' clocks after the update. */
	next: Map<number, number>;
}

export interface StoredRoom {
	epoch: number;
	state: Uint8Array;
	rows: number;
	historyCount: number;
	/** Closed epochs and the state vectors they ended with, oldest first. */
	closedEpochs: Array<{ epoch: number; stateVector: Map<number, number> }>;
}

export interface CompactionLease {
	fence: number;
	historyCount: number;
}

/** Why a commit was refused without retrying: the room must reload from the store. */
export type StoreConflictKind = 'room_gone' | 'epoch_moved' | 'seal_conflict' | 'carry_conflict';

export class StoreConflict extends Error {
	readonly kind: StoreConflictKind;
	constructor(kind: StoreConflictKind, message: string) {
		super(message);
		this.name = 'StoreConflict';
		this.kind = kind;
	}
}

interface RoomRow {
	epoch: number;
	history_count: string | number;
	compactor: string | null;
	compactor_fence: string | number;
	deleted_at: Date | string | null;
}

export class DocStore {
	readonly #db: Database;
	/** Whether the group commit locks the rooms it writes (not on PGlite: migration 004 says why). */
	readonly #lockRooms: boolean;

	constructor(db: Database) {
		this.#db = db;
		this.#lockRooms = db.kind !== 'pglite';
	}

	async roomExists(roomId: string): Promise<boolean> {
		const rows = await this.#db.query('select 1 from rooms where id = $1 and deleted_at is null', [roomId]);
		return rows.length > 0;
	}

	/** The room's current epoch as one update (empty document when nothing is stored). */
	async load(roomId: string): Promise<StoredRoom> {
		return this.#db.transaction(async (tx) => {
			await tx.query('set transaction isolation level repeatable read'); // one snapshot for every read
			const [room] = await tx.query<RoomRow>('select epoch, history_count, compactor, compactor_fence, deleted_at from rooms where id = $1', [roomId]);
			if (!room || room.deleted_at !== null) throw new StoreConflict('room_gone', `room ${roomId} does not exist`);
			const { state, rows } = await readEpoch(tx, roomId, room.epoch);
			const closed = await tx.query<{ epoch: number; state_vector: Uint8Array }>(
				'select epoch, state_vector from room_epochs where room_id = $1 order by epoch',
				[roomId]
			);
			return {
				epoch: room.epoch,
				state,
				rows,
				historyCount: Number(room.history_count),
				closedEpochs: closed.map((r) => ({ epoch: r.epoch, stateVector: Y.decodeStateVector(new Uint8Array(r.state_vector)) }))
			};
		});
	}

	/** A closed epoch's document as one update: its final state and every carry since. */
	async loadEpoch(roomId: string, epoch: number): Promise<Uint8Array> {
		return (await readEpoch(this.#db, roomId, epoch)).state;
	}

	/**
	 * Commits a batch of a room's current-epoch updates and their effects. Plain batches from
	 * every room are committed together (group commit): whatever arrives while one transaction
	 * runs goes into the next, so the cost per transaction is shared by every room that wrote
	 * meanwhile. A compaction or a carry commits alone, with the conditions of its own.
	 * Resolves with the rows stored (a group-committed batch is one row).
	 */
	append(
		roomId: string,
		epoch: number,
		updates: Uint8Array[],
		effects: UpdateEffects,
		extra: { seal?: SealCommit; legacy?: LegacyCommit } = {}
	): Promise<number> {
		if (extra.seal || extra.legacy) return this.#appendAlone(roomId, epoch, updates, effects, extra);
		return new Promise((resolve, reject) => {
			this.#pending.push({ roomId, epoch, updates, effects, resolve, reject });
			this.#committing ??= this.#drain();
		});
	}

	readonly #pending: GroupedWrite[] = [];
	#committing: Promise<void> | null = null;
	#lastCommitAt = -Infinity;

	async #drain(): Promise<void> {
		while (this.#pending.length > 0) {
			// At most one group commit per window: a lone write goes at once, but under load the
			// writes of a few milliseconds share one transaction instead of each paying for its own.
			const wait = this.#lastCommitAt + GROUP_COMMIT_WINDOW_MS - performance.now();
			if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
			this.#lastCommitAt = performance.now();
			const group = takeGroup(this.#pending);
			try {
				settle(group, await this.#commitGroup(group));
			} catch (error) {
				// One room's bad batch must not hold the others back: each room alone, once more.
				const rooms = new Map<string, GroupedWrite[]>();
				for (const write of group) rooms.set(write.roomId, [...(rooms.get(write.roomId) ?? []), write]);
				if (rooms.size === 1) {
					for (const write of group) write.reject(error);
					continue;
				}
				for (const writes of rooms.values()) {
					try {
						settle(writes, await this.#commitGroup(writes));
					} catch (roomError) {
						for (const write of writes) write.reject(roomError);
					}
				}
			}
		}
		this.#committing = null;
	}

	/**
	 * One statement for many rooms' batches; returns the writes refused (room gone, or moved to
	 * another epoch), by room and epoch. It locks the rooms, and inserts rows and updates previews
	 * and read marks only for rooms still present and at the batch's epoch: one statement is one
	 * round trip, atomic without a transaction around it. It calls a function (migration 004)
	 * whose plans are made once per connection, with the rows as arrays, so it is short to send
	 * and cheap to parse whatever the group holds: a VALUES list of a few hundred parameters cost
	 * PGlite a third more per commit, and planning the statement itself each time ~1 ms more.
	 */
	async #commitGroup(group: GroupedWrite[]): Promise<Map<string, StoreConflict>> {
		const rows = { room: [] as string[], epoch: [] as number[], data: [] as Array<Uint8Array | Promise<Uint8Array>> };
		const previews = new Map<string, { room: string; epoch: number; message: string }>();
		const reads = new Map<string, { room: string; epoch: number; user: string; message: string }>();
		for (const write of group) {
			// A room's batch is one row: under load a batch holds several updates, and each row is
			// an insert now and part of a merge later, PGlite's largest costs. The merge (~15 µs an
			// update, a twentieth of the event loop at scenario 2's knee) runs on the merge thread,
			// at the background priority the commit itself has.
			if (write.updates.length > 0) {
				rows.room.push(write.roomId);
				rows.epoch.push(write.epoch);
				rows.data.push(write.updates.length === 1 ? write.updates[0] : mergeUpdatesOffThread(write.updates));
			}
			if (write.effects.lastMessage) {
				previews.set(writeKey(write), { room: write.roomId, epoch: write.epoch, message: JSON.stringify(write.effects.lastMessage) });
			}
			for (const [user, message] of write.effects.reads) {
				const key = `${writeKey(write)} ${user}`;
				const known = reads.get(key);
				if (!known || known.message < message) reads.set(key, { room: write.roomId, epoch: write.epoch, user, message });
			}
		}
		const preview = [...previews.values()];
		const read = [...reads.values()];
		const locked = await this.#db.query<{ id: string; epoch: number; deleted: boolean }>(
			GROUP_COMMIT,
			[
				this.#lockRooms,
				[...new Set(group.map((w) => w.roomId))].sort(),
				rows.room,
				rows.epoch,
				await Promise.all(rows.data),
				preview.map((p) => p.room),
				preview.map((p) => p.epoch),
				preview.map((p) => p.message),
				read.map((r) => r.room),
				read.map((r) => r.epoch),
				read.map((r) => r.user),
				read.map((r) => r.message)
			]
		);
		const epochs = new Map(locked.filter((r) => !r.deleted).map((r) => [r.id, r.epoch]));
		// Refused per room and epoch: a group may hold a stale copy's write and the current one's.
		const refused = new Map<string, StoreConflict>();
		for (const write of group) {
			const epoch = epochs.get(write.roomId);
			if (epoch === undefined) refused.set(writeKey(write), new StoreConflict('room_gone', `room ${write.roomId} was deleted`));
			else if (epoch !== write.epoch) refused.set(writeKey(write), new StoreConflict('epoch_moved', `room ${write.roomId} moved to epoch ${epoch}`));
		}
		return refused;
	}

	async #appendAlone(
		roomId: string,
		epoch: number,
		updates: Uint8Array[],
		effects: UpdateEffects,
		extra: { seal?: SealCommit; legacy?: LegacyCommit }
	): Promise<number> {
		await this.#db.transaction(async (tx) => {
			const room = await lockRoom(tx, roomId);
			if (room.epoch !== epoch) throw new StoreConflict('epoch_moved', `room ${roomId} moved to epoch ${room.epoch}`);
			if (extra.seal) {
				const { from, count, owner, fence } = extra.seal;
				if (Number(room.history_count) !== from || room.compactor !== owner || Number(room.compactor_fence) !== fence) {
					throw new StoreConflict('seal_conflict', `room ${roomId}: another compactor sealed history`);
				}
				const check = extra.seal.leadingIds;
				if (check && !check((await readEpoch(tx, roomId, epoch)).state)) {
					throw new StoreConflict('seal_conflict', `room ${roomId}: a message committed elsewhere lies among the sealed ones`);
				}
				await tx.query('update rooms set history_count = $2 where id = $1', [roomId, from + count]);
			}
			if (extra.legacy) await commitCarry(tx, roomId, extra.legacy);
			if (updates.length > 0) {
				const params: unknown[] = [roomId, epoch];
				const values = updates.map((update, i) => {
					params.push(update);
					return `($1, $2, $${i + 3})`;
				});
				await tx.query(`insert into room_updates (room_id, epoch, data) values ${values.join(', ')}`, params);
			}
			if (effects.lastMessage) {
				await tx.query('update rooms set last_activity_at = now(), last_message = $2 where id = $1', [
					roomId,
					JSON.stringify(effects.lastMessage)
				]);
			}
			for (const [userId, messageId] of effects.reads) {
				await tx.query(
					`update room_members set last_read_id = $3
					 where room_id = $1 and user_id = $2 and (last_read_id is null or last_read_id < $3)`,
					[roomId, userId, messageId]
				);
			}
		});
		return updates.length;
	}

	/**
	 * Merges the room's newest stored rows of an epoch into one, once there are at least
	 * `minRows`. Not all of them: walking back from the newest, a row joins the merge while it is
	 * no larger than the rows already taken together, so the large row that holds most of the
	 * document is rewritten only once the newer rows add up to its size (like a binary counter:
	 * a few rows of doubling size stay behind). Yjs merging grows with the bytes merged:
	 * re-merging the whole document for every few hundred small updates made it the relay's
	 * longest pause (it now runs on the merge thread). The rows are read and merged with no lock
	 * held, so the database (PGlite's single connection) is never held while Yjs merges; a short
	 * transaction then locks the room, as every writer does first, and replaces exactly the rows
	 * read — or nothing, when the room was deleted, moved to another epoch, or any of those rows
	 * is gone (another relay merged them). Merges run one at a time: rooms written at the same
	 * pace reach the threshold together, and a hundred merges at once held the relay's thread
	 * and PGlite's connection long enough to show in delivery latency.
	 */
	mergeRows(roomId: string, epoch: number, minRows: number): Promise<boolean> {
		const merge = this.#merges.then(() => this.#mergeRows(roomId, epoch, minRows));
		this.#merges = merge.catch(() => undefined);
		return merge;
	}

	#merges: Promise<unknown> = Promise.resolve();

	async #mergeRows(roomId: string, epoch: number, minRows: number): Promise<boolean> {
		const sizes = await this.#db.query<{ seq: string | number; size: number }>(
			'select seq, octet_length(data) as size from room_updates where room_id = $1 and epoch = $2 order by seq',
			[roomId, epoch]
		);
		if (sizes.length < Math.max(minRows, 2)) return false;
		const from = mergeFrom(sizes.map((r) => Number(r.size)));
		const rows = await this.#db.query<{ seq: number; data: Uint8Array }>(
			'select seq, data from room_updates where room_id = $1 and epoch = $2 and seq >= $3 order by seq',
			[roomId, epoch, sizes[from].seq]
		);
		if (rows.length < 2) return false;
		const merged = await mergeUpdatesOffThread(rows.map((r) => new Uint8Array(r.data)));
		const seqs = rows.map((r) => Number(r.seq));
		try {
			return await this.#db.transaction(async (tx) => {
				const [room] = await tx.query<{ epoch: number; deleted: boolean }>(
					'select epoch, deleted_at is not null as deleted from rooms where id = $1 for update',
					[roomId]
				);
				if (!room || room.deleted || room.epoch !== epoch) return false;
				const gone = await tx.query('delete from room_updates where room_id = $1 and epoch = $2 and seq = any($3::bigint[]) returning seq', [
					roomId,
					epoch,
					seqs
				]);
				if (gone.length !== seqs.length) throw ROWS_CHANGED;
				await tx.query('insert into room_updates (room_id, epoch, data) values ($1, $2, $3)', [roomId, epoch, merged]);
				return true;
			});
		} catch (error) {
			if (error === ROWS_CHANGED) return false; // rolled back: merged elsewhere meanwhile
			throw error;
		}
	}

	/**
	 * Takes or renews the room's compaction lease. The fence stays while the same owner holds it
	 * and grows when the lease changes hands. Null while another instance holds an unexpired lease.
	 */
	async acquireLease(roomId: string, owner: string, ttlMs: number): Promise<CompactionLease | null> {
		const rows = await this.#db.query<{ compactor_fence: string | number; history_count: string | number }>(
			`update rooms set
				compactor_fence = case when compactor = $2 then compactor_fence else compactor_fence + 1 end,
				compactor = $2,
				compactor_until = now() + make_interval(secs => $3::double precision / 1000)
			 where id = $1 and deleted_at is null and (compactor is null or compactor = $2 or compactor_until < now())
			 returning compactor_fence, history_count`,
			[roomId, owner, ttlMs]
		);
		if (rows.length === 0) return null;
		return { fence: Number(rows[0].compactor_fence), historyCount: Number(rows[0].history_count) };
	}

	async releaseLease(roomId: string, owner: string): Promise<void> {
		await this.#db.query('update rooms set compactor_until = now() - interval \'1 second\' where id = $1 and compactor = $2', [roomId, owner]);
	}

	/**
	 * Closes `epoch` and opens the next: the closed epoch keeps one row (its final state, content
	 * of removed items dropped) and its state vector; the new epoch starts from `seed`.
	 */
	async rollover(
		roomId: string,
		epoch: number,
		lease: { owner: string; fence: number },
		close: (committed: Uint8Array) => EpochClose
	): Promise<void> {
		await this.#db.transaction(async (tx) => {
			const room = await lockRoom(tx, roomId);
			if (room.epoch !== epoch) throw new StoreConflict('epoch_moved', `room ${roomId} moved to epoch ${room.epoch}`);
			if (room.compactor !== lease.owner || Number(room.compactor_fence) !== lease.fence) {
				throw new StoreConflict('seal_conflict', `room ${roomId}: the compaction lease changed hands`);
			}
			// Everything committed, by any instance: the room row is locked, so nothing joins it now.
			const { closing, seed } = close((await readEpoch(tx, roomId, epoch)).state);
			await tx.query('insert into room_epochs (room_id, epoch, state_vector) values ($1, $2, $3)', [roomId, epoch, closing.stateVector]);
			await tx.query('delete from room_updates where room_id = $1 and epoch = $2', [roomId, epoch]);
			await tx.query('insert into room_updates (room_id, epoch, data) values ($1, $2, $3)', [roomId, epoch, closing.state]);
			await tx.query('insert into room_updates (room_id, epoch, data) values ($1, $2, $3)', [roomId, epoch + 1, seed]);
			await tx.query('update rooms set epoch = $2 where id = $1', [roomId, epoch + 1]);
		});
	}
}

interface GroupedWrite {
	roomId: string;
	epoch: number;
	updates: Uint8Array[];
	effects: UpdateEffects;
	resolve(rows: number): void;
	reject(error: unknown): void;
}

/**
 * Shortest time between the starts of two group commits. A group commit costs 3–4 ms of CPU on
 * PGlite whatever it holds, and ~0.05 ms more per row (measured on this project's machine), so
 * the fewer the better. Updates are forwarded before they commit: the window delays only the
 * `durable` acknowledgement (the sender's "sent" tick) and other relay instances, not delivery.
 * Measured in scenario 1 of bench/peers.ts: CPU per delivery 71–74 µs at 16 ms, 58–65 µs at 50 ms.
 */
const GROUP_COMMIT_WINDOW_MS = 50;

/** The group commit: the function of migration 004, planned once per connection. */
const GROUP_COMMIT = 'select id, epoch, deleted from room_group_commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)';

/** What a group commit refuses: one room at one epoch. */
function writeKey(write: GroupedWrite): string {
	return `${write.roomId} ${write.epoch}`;
}

function settle(group: GroupedWrite[], refused: Map<string, StoreConflict>): void {
	for (const write of group) {
		const conflict = refused.get(writeKey(write));
		if (conflict) write.reject(conflict);
		else write.resolve(write.updates.length > 0 ? 1 : 0);
	}
}

/**
 * Where the merge of a room's rows (sizes in commit order) starts: the newest two rows, and each
 * older one that is no larger than the rows after it together.
 */
export function mergeFrom(sizes: readonly number[]): number {
	let from = Math.max(sizes.length - 2, 0);
	let taken = sizes.slice(from).reduce((sum, size) => sum + size, 0);
	while (from > 0 && sizes[from - 1] <= taken) {
		from -= 1;
		taken += sizes[from];
	}
	return from;
}

/** Thrown inside a merge's transaction to roll it back: rows it read are gone. */
const ROWS_CHANGED = new Error('the rows to merge changed');

/** Rows one group commit inserts at most: a long outage's backlog commits in steps, not one huge statement. */
const GROUP_COMMIT_MAX_ROWS = 2000;

/** The next group: queued batches in arrival order, up to GROUP_COMMIT_MAX_ROWS rows. */
function takeGroup(pending: GroupedWrite[]): GroupedWrite[] {
	let rows = 0;
	let count = 0;
	while (count < pending.length && (count === 0 || rows + pending[count].updates.length <= GROUP_COMMIT_MAX_ROWS)) {
		rows += pending[count].updates.length;
		count++;
	}
	return pending.splice(0, count);
}

async function lockRoom(tx: Queryable, roomId: string): Promise<RoomRow> {
	const [room] = await tx.query<RoomRow>(
		'select epoch, history_count, compactor, compactor_fence, deleted_at from rooms where id = $1 for update',
		[roomId]
	);
	if (!room || room.deleted_at !== null) throw new StoreConflict('room_gone', `room ${roomId} was deleted`);
	return room;
}

async function readEpoch(q: Queryable, roomId: string, epoch: number): Promise<{ state: Uint8Array; rows: number }> {
	const rows = await q.query<{ data: Uint8Array }>('select data from room_updates where room_id = $1 and epoch = $2 order by seq', [roomId, epoch]);
	const updates = rows.map((r) => new Uint8Array(r.data));
	// Off the relay's thread like the row merges: a room loads while its other rooms' sockets wait.
	const state = updates.length === 0 ? Y.encodeStateAsUpdate(new Y.Doc()) : updates.length === 1 ? updates[0] : await mergeUpdatesOffThread(updates);
	return { state, rows: rows.length };
}

/**
 * Stores a closed epoch's late update, once: the epoch's state vector must still be what the
 * carry was computed against for every client the update touches; another instance that carried
 * the same update first has moved it on.
 */
async function commitCarry(tx: Queryable, roomId: string, legacy: LegacyCommit): Promise<void> {
	const [row] = await tx.query<{ state_vector: Uint8Array }>(
		'select state_vector from room_epochs where room_id = $1 and epoch = $2 for update',
		[roomId, legacy.epoch]
	);
	if (!row) throw new StoreConflict('carry_conflict', `room ${roomId} has no closed epoch ${legacy.epoch}`);
	const stored = Y.decodeStateVector(new Uint8Array(row.state_vector));
	for (const [client, clock] of legacy.expected) {
		if ((stored.get(client) ?? 0) !== clock) throw new StoreConflict('carry_conflict', `room ${roomId}: epoch ${legacy.epoch} moved on`);
	}
	for (const [client, clock] of legacy.next) if (clock > (stored.get(client) ?? 0)) stored.set(client, clock);
	await tx.query('update room_epochs set state_vector = $3 where room_id = $1 and epoch = $2', [roomId, legacy.epoch, encodeStateVector(stored)]);
	await tx.query('insert into room_updates (room_id, epoch, data) values ($1, $2, $3)', [roomId, legacy.epoch, legacy.update]);
}

export function encodeStateVector(vector: Map<number, number>): Uint8Array {
	return Y.encodeStateVector(vector);
}
