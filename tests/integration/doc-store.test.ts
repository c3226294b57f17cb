/**
 * The relay's store of room documents against the real database (PGlite, or PostgreSQL with
 * DATABASE_URL): group commits across rooms, and merging a room's rows without holding the
 * database while the merge runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { DocStore, StoreConflict, mergeFrom, type UpdateEffects } from '../../sync-server/doc-store';
import type { Database } from '../../src/lib/server/db/database';
import type { RoomPreview } from '../../src/lib/shared/api-types';
import { createGroupRoom, markRoomDeleted } from '../../src/lib/server/rooms';
import { chatMessage, createTestAccount, openTestDatabase, type TestAccount } from '../helpers/relay';

let db: Database;
let owner: TestAccount;

beforeAll(async () => {
	db = await openTestDatabase();
	owner = await createTestAccount(db);
});

afterAll(async () => {
	await db?.close();
});

const NO_EFFECTS: UpdateEffects = { lastMessage: null, reads: new Map() };

/** A document with `texts` appended one update each, and those updates. */
function writes(texts: string[]): { doc: Y.Doc; updates: Uint8Array[] } {
	const doc = new Y.Doc();
	const updates: Uint8Array[] = [];
	doc.on('update', (update: Uint8Array) => updates.push(update));
	for (const text of texts) doc.getArray('messages').push([chatMessage(owner.id, text)]);
	return { doc, updates };
}

function texts(state: Uint8Array): string[] {
	const doc = new Y.Doc();
	Y.applyUpdate(doc, state);
	return doc.getArray<{ text: string }>('messages').toArray().map((m) => m.text);
}

async function rowCount(roomId: string): Promise<number> {
	const [row] = await db.query<{ n: number }>('select count(*)::int as n from room_updates where room_id = $1', [roomId]);
	return row.n;
}

describe('group commit', () => {
	it('commits the batches of several rooms together, keeps each room\'s order, and refuses a deleted room alone', async () => {
		const store = new DocStore(db);
		const [a, b, gone] = await Promise.all(['A', 'B', 'Gone'].map((name) => createGroupRoom(db, owner.id, name, [])));
		await markRoomDeleted(db, gone);
		const { updates: aUpdates } = writes(['a1', 'a2', 'a3']);
		const { updates: bUpdates } = writes(['b1']);
		const preview = { id: 'M1', author: owner.id, authorName: owner.name, ts: 1, text: 'b1' } as unknown as RoomPreview;
		const results = await Promise.allSettled([
			store.append(a, 0, aUpdates.slice(0, 2), NO_EFFECTS),
			store.append(gone, 0, writes(['lost']).updates, { lastMessage: preview, reads: new Map([[owner.id, 'M1']]) }),
			store.append(b, 0, bUpdates, { lastMessage: preview, reads: new Map([[owner.id, 'M1']]) }),
			store.append(a, 0, aUpdates.slice(2), NO_EFFECTS)
		]);
		expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
		const refusal = (results[1] as PromiseRejectedResult).reason;
		expect(refusal).toBeInstanceOf(StoreConflict);
		expect((refusal as StoreConflict).kind).toBe('room_gone');
		// One row per batch (its updates merged), in the order the room wrote them.
		const rows = await db.query<{ data: Uint8Array }>('select data from room_updates where room_id = $1 order by seq', [a]);
		const replay = new Y.Doc();
		const afterEachRow = rows.map((r) => {
			Y.applyUpdate(replay, new Uint8Array(r.data));
			return replay.getArray<{ text: string }>('messages').toArray().map((m) => m.text);
		});
		expect(afterEachRow).toEqual([['a1', 'a2'], ['a1', 'a2', 'a3']]);
		expect(texts((await store.load(a)).state)).toEqual(['a1', 'a2', 'a3']);
		expect(texts((await store.load(b)).state)).toEqual(['b1']);
		expect(await rowCount(gone)).toBe(0);
		// The batch's effects land with it: the room list's preview and the sender's read mark.
		const effects = async (roomId: string) =>
			(await db.query<{ last_message: unknown; last_read_id: string | null }>(
				'select r.last_message, m.last_read_id from rooms r left join room_members m on m.room_id = r.id and m.user_id = $2 where r.id = $1',
				[roomId, owner.id]
			))[0];
		expect(await effects(b)).toEqual({ last_message: preview, last_read_id: 'M1' });
		expect(await effects(gone)).toEqual({ last_message: null, last_read_id: null });
	});

	it('refuses a batch written for an epoch the room has left', async () => {
		const store = new DocStore(db);
		const roomId = await createGroupRoom(db, owner.id, 'Moved', []);
		await db.query('update rooms set epoch = 1 where id = $1', [roomId]);
		const refusal = await store.append(roomId, 0, writes(['late']).updates, NO_EFFECTS).catch((error: unknown) => error);
		expect((refusal as StoreConflict).kind).toBe('epoch_moved');
		expect(await rowCount(roomId)).toBe(0);
	});
});

describe('a group holding two copies of one room', () => {
	it('refuses the stale copy\'s write and commits the current one\'s', async () => {
		const store = new DocStore(db);
		const roomId = await createGroupRoom(db, owner.id, 'Two copies', []);
		const other = await createGroupRoom(db, owner.id, 'Other', []);
		await db.query('update rooms set epoch = 1 where id = $1', [roomId]);
		// The first write keeps a group commit busy, so the next two share the group after it.
		const results = await Promise.allSettled([
			store.append(other, 0, writes(['other']).updates, NO_EFFECTS),
			store.append(roomId, 0, writes(['stale']).updates, NO_EFFECTS),
			store.append(roomId, 1, writes(['current']).updates, NO_EFFECTS)
		]);
		expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
		expect(((results[1] as PromiseRejectedResult).reason as StoreConflict).kind).toBe('epoch_moved');
		const rows = await db.query<{ epoch: number; data: Uint8Array }>('select epoch, data from room_updates where room_id = $1', [roomId]);
		expect(rows.map((r) => [r.epoch, texts(new Uint8Array(r.data))])).toEqual([[1, ['current']]]);
	});
});

describe('merging stored rows', () => {
	it('leaves a deleted room\'s rows and another epoch\'s rows alone', async () => {
		const store = new DocStore(db);
		const [deleted, moved] = await Promise.all(['Deleted', 'Moved on'].map((name) => createGroupRoom(db, owner.id, name, [])));
		for (const roomId of [deleted, moved]) {
			for (const update of writes(['x', 'y', 'z']).updates) await store.append(roomId, 0, [update], NO_EFFECTS);
		}
		await markRoomDeleted(db, deleted);
		await db.query('update rooms set epoch = 1 where id = $1', [moved]);
		expect(await store.mergeRows(deleted, 0, 3)).toBe(false);
		expect(await store.mergeRows(moved, 0, 3)).toBe(false);
		expect(await rowCount(deleted)).toBe(3);
		expect(await rowCount(moved)).toBe(3);
	});

	it('replaces the rows with one that holds the same document', async () => {
		const store = new DocStore(db);
		const roomId = await createGroupRoom(db, owner.id, 'Merge', []);
		const { updates } = writes(Array.from({ length: 12 }, (_, i) => `m${i}`));
		for (const update of updates) await store.append(roomId, 0, [update], NO_EFFECTS);
		expect(await store.mergeRows(roomId, 0, 20)).toBe(false);
		expect(await rowCount(roomId)).toBe(12);
		expect(await store.mergeRows(roomId, 0, 10)).toBe(true);
		expect(await rowCount(roomId)).toBe(1);
		expect(texts((await store.load(roomId)).state)).toEqual(updates.map((_, i) => `m${i}`));
	});

	it('merges the newer rows and rewrites an older, larger one only once they add up to it', async () => {
		const store = new DocStore(db);
		const roomId = await createGroupRoom(db, owner.id, 'Tiers', []);
		const all = Array.from({ length: 60 }, (_, i) => `t${i}`);
		const { updates } = writes(all);
		// The document so far in one large row, then single messages.
		await store.append(roomId, 0, [Y.mergeUpdates(updates.slice(0, 40))], NO_EFFECTS);
		for (const update of updates.slice(40, 50)) await store.append(roomId, 0, [update], NO_EFFECTS);
		const sizes = async () =>
			(await db.query<{ size: number }>('select octet_length(data) as size from room_updates where room_id = $1 order by seq', [roomId])).map((r) => Number(r.size));
		const [large] = await sizes();
		expect(await store.mergeRows(roomId, 0, 5)).toBe(true);
		expect(await rowCount(roomId)).toBe(2);
		expect((await sizes())[0]).toBe(large); // left alone: the ten small rows are far smaller
		expect(texts((await store.load(roomId)).state)).toEqual(all.slice(0, 50));
		// Once the newer rows together are as large as the old one, everything is merged.
		await store.append(roomId, 0, [Y.mergeUpdates(updates.slice(50, 60))], NO_EFFECTS);
		const before = await sizes();
		expect(before[1] + before[2]).toBeLessThan(large);
		await store.append(roomId, 0, [Y.mergeUpdates(writes(Array.from({ length: 80 }, (_, i) => `pad${i}`)).updates)], NO_EFFECTS);
		expect(await store.mergeRows(roomId, 0, 3)).toBe(true);
		expect(await rowCount(roomId)).toBe(1);
		expect(texts((await store.load(roomId)).state).filter((t) => t.startsWith('t'))).toEqual(all);
	});

	it('starts a merge at the oldest row no larger than the newer ones together', () => {
		expect(mergeFrom([5, 5, 5])).toBe(0);
		expect(mergeFrom([100, 1, 1, 1])).toBe(1);
		expect(mergeFrom([100, 30, 20, 10])).toBe(1);
		expect(mergeFrom([100, 60, 30, 20, 10])).toBe(0);
		// A tiny newest row does not pull in the larger ones before it.
		expect(mergeFrom([100, 60, 30, 20, 10, 1])).toBe(4);
		expect(mergeFrom([7, 9])).toBe(0);
	});

	it('changes nothing when the rows it read changed before it wrote', async () => {
		const roomId = await createGroupRoom(db, owner.id, 'Race', []);
		const { updates } = writes(['r0', 'r1', 'r2', 'r3']);
		const plain = new DocStore(db);
		for (const update of updates.slice(0, 3)) await plain.append(roomId, 0, [update], NO_EFFECTS);
		// Between the merge's read and its write, another writer merges two of the rows it read.
		const racing: Database = {
			...db,
			kind: db.kind,
			query: async (sql, params) => {
				const rows = await db.query(sql, params);
				if (sql.startsWith('select seq, data from room_updates')) {
					await db.query(
						`with gone as (delete from room_updates where seq in (select seq from room_updates where room_id = $1 order by seq limit 2) returning data)
						 insert into room_updates (room_id, epoch, data) values ($1, 0, $2)`,
						[roomId, Y.mergeUpdates(updates.slice(0, 2))]
					);
				}
				return rows as never;
			},
			transaction: (work) => db.transaction(work),
			close: () => db.close()
		};
		expect(await new DocStore(racing).mergeRows(roomId, 0, 3)).toBe(false);
		expect(await rowCount(roomId)).toBe(2);
		expect(texts((await plain.load(roomId)).state)).toEqual(['r0', 'r1', 'r2']);
		// The database is usable at once, and the next merge takes every row.
		await plain.append(roomId, 0, [updates[3]], NO_EFFECTS);
		expect(await plain.mergeRows(roomId, 0, 3)).toBe(true);
		expect(await rowCount(roomId)).toBe(1);
		expect(texts((await plain.load(roomId)).state)).toEqual(['r0', 'r1', 'r2', 'r3']);
	});
});
