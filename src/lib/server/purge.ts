/**
 * Erases deleted rooms: their compacted history in DynamoDB, then their documents in PostgreSQL,
 * in batches, and finally what the room row still says (name, preview); the emptied row stays,
 * so the room keeps answering "deleted". Every step is idempotent and the work left is read from
 * the stores themselves, so a job that crashes midway simply resumes on the next run (on any
 * instance).
 */
import type { Database } from './db/database';
import type { HistoryStore } from './history/history-store';

/** Items deleted per DynamoDB round trip and rows per PostgreSQL statement. */
export const PURGE_BATCH = 100;
/** How often an instance looks for deleted rooms whose purge has not finished. */
export const PURGE_INTERVAL_MS = 60_000;

export interface PurgeDeps {
	db: Database;
	history: HistoryStore;
	log: { error(...args: unknown[]): void; info(...args: unknown[]): void };
}

/** Purges one deleted room completely; returns false when it is not (or no longer) deleted. */
export async function purgeRoom(deps: PurgeDeps, roomId: string, batch = PURGE_BATCH): Promise<boolean> {
	const rows = await deps.db.query<{ compacting: boolean }>(
		`select compactor_until is not null and compactor_until > now() as compacting
		 from rooms where id = $1 and deleted_at is not null and purged_at is null`,
		[roomId]
	);
	if (rows.length === 0) return false;
	// A compaction still under way could write to DynamoDB after the purge emptied it: wait for
	// its lease to be handed back or to lapse (the room's copies are closing; the next run goes on).
	if (rows[0].compacting) return false;
	while ((await deps.history.purgeBatch(roomId, batch)) > 0) {
		// keep going until DynamoDB has nothing left for the room
	}
	for (;;) {
		const deleted = await deps.db.query(
			`delete from room_updates where room_id = $1 and seq in
			 (select seq from room_updates where room_id = $1 order by seq limit $2) returning seq`,
			[roomId, batch]
		);
		if (deleted.length > 0) continue;
		// A statement that deleted nothing may have skipped rows a transaction that began before
		// the deletion was still replacing (a row merge): done only when a fresh look finds none.
		if ((await deps.db.query('select 1 from room_updates where room_id = $1 limit 1', [roomId])).length === 0) break;
	}
	await deps.db.transaction(async (tx) => {
		await tx.query('delete from room_epochs where room_id = $1', [roomId]);
		await tx.query(
			`update rooms set name = '', last_message = null, created_by = null, purged_at = now()
			 where id = $1 and deleted_at is not null`,
			[roomId]
		);
	});
	deps.log.info(`[purge] room ${roomId} erased`);
	return true;
}

/** Purges every deleted room; errors are logged and the room is retried on the next run. */
export async function purgeDeletedRooms(deps: PurgeDeps): Promise<number> {
	const rooms = await deps.db.query<{ id: string }>(
		'select id from rooms where deleted_at is not null and purged_at is null order by deleted_at'
	);
	let purged = 0;
	for (const { id } of rooms) {
		try {
			if (await purgeRoom(deps, id)) purged++;
		} catch (error) {
			deps.log.error(`[purge] room ${id}: purge interrupted, resuming on the next run:`, error);
		}
	}
	return purged;
}

/** Runs the purge now and then every interval, one run at a time; `wake()` starts one early. */
export class PurgeJob {
	readonly #deps: PurgeDeps;
	#timer: NodeJS.Timeout | null = null;
	#running: Promise<void> | null = null;
	#again = false;
	#stopped = false;

	constructor(deps: PurgeDeps, intervalMs = PURGE_INTERVAL_MS) {
		this.#deps = deps;
		this.#timer = setInterval(() => this.wake(), intervalMs);
		this.#timer.unref();
		this.wake();
	}

	wake(): void {
		if (this.#stopped) return;
		if (this.#running) {
			this.#again = true;
			return;
		}
		this.#running = purgeDeletedRooms(this.#deps)
			.then(
				() => undefined,
				(error) => this.#deps.log.error('[purge] run failed:', error)
			)
			.finally(() => {
				this.#running = null;
				if (this.#again) {
					this.#again = false;
					this.wake();
				}
			});
	}

	async stop(): Promise<void> {
		this.#stopped = true;
		if (this.#timer) clearInterval(this.#timer);
		await this.#running;
	}
}
