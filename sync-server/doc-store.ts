/**
 * A room's live document in PostgreSQL: every accepted update is a row, committed before the
 * relay calls it durable. Loading merges the rows; the relay merges old rows from time to time.
 */
import * as Y from 'yjs';
import type { Database } from '../src/lib/server/db/database';
import type { RoomPreview } from '../src/lib/shared/api-types';

export interface UpdateEffects {
	/** The newest message the batch appended, for the room list's preview and ordering. */
	lastMessage: RoomPreview | null;
	/** user id → newest read message id written in the batch. */
	reads: Map<string, string>;
}

export class DocStore {
	readonly #db: Database;

	constructor(db: Database) {
		this.#db = db;
	}

	async roomExists(roomId: string): Promise<boolean> {
		const rows = await this.#db.query('select 1 from rooms where id = $1', [roomId]);
		return rows.length > 0;
	}

	/** The room's stored state as one update (empty document when nothing is stored). */
	async load(roomId: string): Promise<{ state: Uint8Array; rows: number }> {
		const rows = await this.#db.query<{ data: Uint8Array }>(
			'select data from room_updates where room_id = $1 order by seq',
			[roomId]
		);
		const updates = rows.map((r) => new Uint8Array(r.data));
		const state = updates.length === 1 ? updates[0] : Y.mergeUpdates(updates);
		return { state, rows: rows.length };
	}

	/** Commits a batch of updates and their effects in one transaction. */
	async append(roomId: string, updates: Uint8Array[], effects: UpdateEffects): Promise<void> {
		await this.#db.transaction(async (tx) => {
			const params: unknown[] = [roomId];
			const values = updates.map((update, i) => {
				params.push(update);
				return `($1, $${i + 2})`;
			});
			await tx.query(`insert into room_updates (room_id, data) values ${values.join(', ')}`, params);
			if (effects.lastMessage) {
				await tx.query(
					'update rooms set last_activity_at = now(), last_message = $2 where id = $1',
					[roomId, JSON.stringify(effects.lastMessage)]
				);
			}
			for (const [userId, messageId] of effects.reads) {
				await tx.query(
					`update room_members set last_read_id = $3
					 where room_id = $1 and user_id = $2 and (last_read_id is null or last_read_id < $3)`,
					[roomId, userId, messageId]
				);
			}
		});
	}

	/** Replaces the room's rows with one merged row, when it has gathered at least `minRows`. */
	async mergeRows(roomId: string, minRows: number): Promise<boolean> {
		return this.#db.transaction(async (tx) => {
			const rows = await tx.query<{ seq: number; data: Uint8Array }>(
				'select seq, data from room_updates where room_id = $1 order by seq for update',
				[roomId]
			);
			if (rows.length < minRows) return false;
			const merged = Y.mergeUpdates(rows.map((r) => new Uint8Array(r.data)));
			const lastSeq = rows[rows.length - 1].seq;
			await tx.query('delete from room_updates where room_id = $1 and seq <= $2', [roomId, lastSeq]);
			await tx.query('insert into room_updates (room_id, data) values ($1, $2)', [roomId, merged]);
			return true;
		});
	}
}
