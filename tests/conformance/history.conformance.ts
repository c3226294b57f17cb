/**
 * One behavioural contract for every HistoryStore: run against the embedded dynalite always and
 * against a real DynamoDB endpoint when one is configured. `openStore` is called once per suite
 * and must return a store whose table exists; room ids are unique per test, so a shared table
 * holds many runs without interference.
 */
import { randomUUID } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyKey, type HistoryEntry, type HistoryStore } from '../../src/lib/server/history/history-store';
import type { ChatMessage } from '../../src/lib/shared/schema';

const PAGE_LIMIT = 100;
const nextUlid = monotonicFactory();

function room(label: string): string {
	return `${label}-${randomUUID()}`;
}

function keyAt(index: number): string {
	return historyKey(index);
}

function makeEntries(count: number, label = 'message', from = 0): HistoryEntry[] {
	return Array.from({ length: count }, (_, offset) => {
		const index = from + offset;
		const message: ChatMessage = {
			id: nextUlid(),
			author: 'user-1',
			ts: 1_700_000_000_000 + index,
			kind: 'text',
			text: `${label} ${index}`
		};
		return { key: keyAt(index), message };
	});
}

/**
 * Pages back from the newest entry (or from the watermark `end`, as the relay's readers do) to
 * the first, returning every entry oldest first.
 */
async function readAllBackwards(
	store: HistoryStore,
	roomId: string,
	limit: number,
	end: string | null = null
): Promise<{ entries: HistoryEntry[]; pageSizes: number[] }> {
	const pages: HistoryEntry[][] = [];
	let before = end;
	do {
		const page = await store.pageBefore(roomId, before, limit);
		pages.unshift(page.entries);
		before = page.nextBeforeKey;
	} while (before !== null && pages.length < 1_000);
	return { entries: pages.flat(), pageSizes: pages.map((p) => p.length).reverse() };
}

export function describeHistoryConformance(name: string, openStore: () => Promise<HistoryStore>): void {
	describe(`HistoryStore conformance: ${name}`, () => {
		let store: HistoryStore;

		beforeAll(async () => {
			store = await openStore();
		});

		afterAll(async () => {
			await store?.close();
		});

		it('answers ping', async () => {
			await expect(store.ping()).resolves.toBeUndefined();
		});

		it('returns an empty first page for an empty room', async () => {
			const roomId = room('empty');
			expect(await store.pageBefore(roomId, null, PAGE_LIMIT)).toEqual({ entries: [], nextBeforeKey: null });
			expect(await store.pageBefore(roomId, keyAt(5), PAGE_LIMIT)).toEqual({
				entries: [],
				nextBeforeKey: null
			});
		});

		it('pages back across 250 entries, returning each exactly once and in order', async () => {
			const roomId = room('paging');
			const entries = makeEntries(250);
			await store.putEntries(roomId, entries);

			const { entries: read, pageSizes } = await readAllBackwards(store, roomId, PAGE_LIMIT);

			expect(pageSizes).toEqual([100, 100, 50]);
			expect(read).toEqual(entries);
		});

		it('returns each page oldest first and names its oldest key as the next cursor', async () => {
			const roomId = room('cursor');
			await store.putEntries(roomId, makeEntries(10));

			const newest = await store.pageBefore(roomId, null, 4);
			expect(newest.entries.map((e) => e.key)).toEqual([keyAt(6), keyAt(7), keyAt(8), keyAt(9)]);
			expect(newest.nextBeforeKey).toBe(keyAt(6));

			const older = await store.pageBefore(roomId, keyAt(6), 4);
			expect(older.entries.map((e) => e.key)).toEqual([keyAt(2), keyAt(3), keyAt(4), keyAt(5)]);
		});

		it('ends with a null cursor when a full page reaches the first message', async () => {
			const roomId = room('exact');
			await store.putEntries(roomId, makeEntries(PAGE_LIMIT));

			const page = await store.pageBefore(roomId, null, PAGE_LIMIT);

			expect(page.entries).toHaveLength(PAGE_LIMIT);
			expect(page.nextBeforeKey).toBeNull();
		});

		it('stores re-put entries once', async () => {
			const roomId = room('idempotent');
			const entries = makeEntries(30);
			await store.putEntries(roomId, entries);
			await store.putEntries(roomId, entries);
			await store.putEntries(roomId, [...entries.slice(20), ...entries.slice(25)]);

			const { entries: read } = await readAllBackwards(store, roomId, PAGE_LIMIT);

			expect(read).toEqual(entries);
		});

		it('keeps rooms apart', async () => {
			const [first, second] = [room('first'), room('second')];
			const firstEntries = makeEntries(5, 'first');
			const secondEntries = makeEntries(7, 'second');
			await store.putEntries(first, firstEntries);
			await store.putEntries(second, secondEntries);

			expect((await store.pageBefore(first, null, PAGE_LIMIT)).entries).toEqual(firstEntries);
			expect((await store.pageBefore(second, null, PAGE_LIMIT)).entries).toEqual(secondEntries);

			expect(await store.purgeBatch(first, PAGE_LIMIT)).toBeGreaterThan(0);
			expect((await store.pageBefore(first, null, PAGE_LIMIT)).entries).toEqual([]);
			expect((await store.pageBefore(second, null, PAGE_LIMIT)).entries).toEqual(secondEntries);
		});

		it('purges a room in batches until it is empty', async () => {
			const roomId = room('purge');
			await store.putEntries(roomId, makeEntries(60));
			await store.putEntries(roomId, makeEntries(3, 'late', 60));

			const deleted: number[] = [];
			for (let batch = 0; batch < 100; batch++) {
				const count = await store.purgeBatch(roomId, 1);
				deleted.push(count);
				if (count === 0) break;
			}

			// Two writes are two items at least; each call deletes at most what it was allowed.
			expect(deleted.at(-1)).toBe(0);
			expect(deleted.slice(0, -1).every((count) => count === 1)).toBe(true);
			expect(deleted.length).toBeGreaterThan(2);
			expect(await store.pageBefore(roomId, null, PAGE_LIMIT)).toEqual({ entries: [], nextBeforeKey: null });
		});

		it('pages back the same whatever sizes the entries were written in', async () => {
			const roomId = room('sizes');
			const entries = makeEntries(120);
			for (let at = 0; at < entries.length; at += 7) await store.putEntries(roomId, entries.slice(at, at + 7));

			for (const limit of [1, 10, 33, 100]) {
				const { entries: read, pageSizes } = await readAllBackwards(store, roomId, limit);
				expect(read).toEqual(entries);
				expect(pageSizes.slice(0, -1).every((size) => size === limit)).toBe(true);
			}
			const middle = await store.pageBefore(roomId, keyAt(50), 15);
			expect(middle.entries).toEqual(entries.slice(35, 50));
			expect(middle.nextBeforeKey).toBe(keyAt(35));
		});

		it('reads what the latest compaction step wrote where writes overlap', async () => {
			// A step from 0 wrote 50 entries in three calls, then crashed; redone, it sealed 5. The next
			// step (from 5) sealed 20 in two calls, the one after (from 25) 16: what the room holds is
			// those three steps' entries, not the first attempt's, though some of its items remain.
			const roomId = room('overlap');
			const first = makeEntries(50, 'lost');
			const order = (step: number, attempt = 1) => ({ order: { step, fence: 1, attempt } });
			for (const [at, end] of [[0, 10], [10, 20], [20, 50]]) await store.putEntries(roomId, first.slice(at, end), order(0));
			const sealed = [...makeEntries(5, 'redone'), ...makeEntries(20, 'second', 5), ...makeEntries(16, 'third', 25)];
			await store.putEntries(roomId, sealed.slice(0, 5), order(0, 2));
			await store.putEntries(roomId, sealed.slice(5, 15), order(5, 3));
			await store.putEntries(roomId, sealed.slice(15, 25), order(5, 3));
			await store.putEntries(roomId, sealed.slice(25), order(25, 4));

			const page = await store.pageBefore(roomId, keyAt(sealed.length), PAGE_LIMIT);
			expect(page.entries).toEqual(sealed);
			expect(page.nextBeforeKey).toBeNull();
			for (const limit of [3, 8]) expect((await readAllBackwards(store, roomId, limit, keyAt(sealed.length))).entries).toEqual(sealed);
		});

		it('reads the later attempt of a step, whichever of their writes lands last', async () => {
			// An attempt sealing 40 timed out, its request still on the way; the redo sealed 70 of
			// the same step, in calls of other sizes, and then the first attempt's write landed.
			const roomId = room('late');
			const redo = makeEntries(70, 'redo', 10);
			await store.putEntries(roomId, redo.slice(0, 25), { order: { step: 10, fence: 3, attempt: 8 } });
			await store.putEntries(roomId, redo.slice(25), { order: { step: 10, fence: 3, attempt: 8 } });
			await store.putEntries(roomId, makeEntries(40, 'abandoned', 10), { order: { step: 10, fence: 3, attempt: 7 } });
			// A holder that lost the lease, with a later attempt number than the new holder's.
			await store.putEntries(roomId, makeEntries(20, 'stale holder', 30), { order: { step: 10, fence: 2, attempt: 99 } });

			expect((await store.pageBefore(roomId, keyAt(80), PAGE_LIMIT)).entries).toEqual(redo);
			for (const limit of [7, 32, 50]) {
				const { entries } = await readAllBackwards(store, roomId, limit, keyAt(80));
				expect(entries).toEqual(redo);
			}
		});

		it('refuses an entry that is not a valid message', async () => {
			const roomId = room('invalid');
			const [entry] = makeEntries(1);
			const bad = { key: entry.key, message: { ...entry.message, text: '' } };

			await expect(store.putEntries(roomId, [bad])).rejects.toThrow(/bad_text/);
			expect((await store.pageBefore(roomId, null, PAGE_LIMIT)).entries).toEqual([]);
		});

		it('sends nothing once the signal has aborted', async () => {
			const roomId = room('abandoned');
			const signal = AbortSignal.abort(new Error('lease running out'));

			await expect(store.putEntries(roomId, makeEntries(30), { signal })).rejects.toThrow(/lease running out/);
			expect((await store.pageBefore(roomId, null, PAGE_LIMIT)).entries).toEqual([]);
		});
	});
}
