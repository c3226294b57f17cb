/** Merging Yjs updates on the merge thread gives what Y.mergeUpdates gives on this one. */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { mergeUpdatesOffThread } from '../../sync-server/merge-thread';

function updatesOf(writers: number, each: number): Uint8Array[] {
	const shared = new Y.Doc();
	const updates: Uint8Array[] = [];
	const docs = Array.from({ length: writers }, () => new Y.Doc());
	for (let i = 0; i < each; i++) {
		for (const [w, doc] of docs.entries()) {
			Y.applyUpdate(doc, Y.encodeStateAsUpdate(shared, Y.encodeStateVector(doc)));
			const before = Y.encodeStateVector(doc);
			doc.getArray('messages').push([{ id: `${w}-${i}`, text: `message ${i} from ${w}` }]);
			const update = Y.encodeStateAsUpdate(doc, before);
			Y.applyUpdate(shared, update);
			updates.push(update);
		}
	}
	return updates;
}

const ids = (update: Uint8Array) => {
	const doc = new Y.Doc();
	Y.applyUpdate(doc, update);
	return doc.getArray<{ id: string }>('messages').toArray().map((m) => m.id);
};

describe('the merge thread', () => {
	it('merges updates of several writers into the same bytes as Y.mergeUpdates', async () => {
		const updates = updatesOf(5, 40);
		const expected = Y.mergeUpdates(updates);
		const merged = await mergeUpdatesOffThread(updates.map((u) => u.slice()));
		expect(merged).toEqual(expected);
		expect(ids(merged)).toHaveLength(200);
		expect(ids(merged)).toEqual(ids(expected));
	});

	it('takes many merges at once and answers each with its own result', async () => {
		const sets = Array.from({ length: 8 }, (_, i) => updatesOf(2, 5 + i));
		const merged = await Promise.all(sets.map((set) => mergeUpdatesOffThread(set)));
		expect(merged.map((m) => ids(m).length)).toEqual(sets.map((set) => set.length));
	});

	it('rejects bytes that are not updates, and keeps working after', async () => {
		await expect(mergeUpdatesOffThread([new Uint8Array([255, 255, 255, 255, 255]), new Uint8Array([1, 2, 3])])).rejects.toThrow();
		const updates = updatesOf(2, 3);
		expect(ids(await mergeUpdatesOffThread(updates))).toHaveLength(6);
	});
});
