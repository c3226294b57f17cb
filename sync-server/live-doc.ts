/**
 * What compaction and epochs read from and build out of a room's live document: the sealed form
 * of its oldest messages, the count of removed entries Yjs still keeps, and the seed of a fresh
 * epoch. Pure functions of a Y.Doc; the Room decides when to call them.
 */
import * as Y from 'yjs';
import { historyKey, type HistoryEntry } from '../src/lib/server/history/history-store';
import {
	DELETIONS_KEY,
	EDITS_KEY,
	MESSAGES_KEY,
	PER_USER_KEYS,
	type ChatMessage,
	type MessageDeletion,
	type MessageEdit
} from '../src/lib/shared/schema';

/** The first `count` live messages as history entries at positions `from`, `from + 1`, … */
export function sealedEntries(doc: Y.Doc, count: number, from: number): HistoryEntry[] {
	const edits = doc.getMap<MessageEdit>(EDITS_KEY);
	const deletions = doc.getMap<MessageDeletion>(DELETIONS_KEY);
	return doc
		.getArray<ChatMessage>(MESSAGES_KEY)
		.slice(0, count)
		.map((message, i) => {
			const entry: HistoryEntry = { key: historyKey(from + i), message };
			const deletion = deletions.get(message.id);
			if (deletion) return { ...entry, message: { ...message, text: '' }, deletion: { by: deletion.by, ts: deletion.ts } };
			const edit = edits.get(message.id);
			if (edit) entry.edit = { text: edit.text, ts: edit.ts };
			return entry;
		});
}

/** Messages removed from the live array that the document still keeps metadata for. */
export function removedMessageCount(doc: Y.Doc): number {
	let removed = 0;
	for (let item = doc.getArray(MESSAGES_KEY)._start; item !== null; item = item.right) {
		if (item.deleted) removed += item.length;
	}
	return removed;
}

/**
 * A fresh epoch's first update: the live messages in their order, each user's receipts, and the
 * edits and deletions of live messages — written in one transaction by a new client id, so the
 * whole log is a single item, whatever its length.
 */
export function epochSeed(doc: Y.Doc): Uint8Array {
	const seed = new Y.Doc();
	try {
		const messages = doc.getArray<ChatMessage>(MESSAGES_KEY).toArray();
		const live = new Set(messages.map((m) => m.id));
		seed.transact(() => {
			if (messages.length > 0) seed.getArray<ChatMessage>(MESSAGES_KEY).push(messages);
			for (const key of PER_USER_KEYS) {
				const target = seed.getMap<string>(key);
				for (const [userId, value] of doc.getMap<string>(key)) target.set(userId, value);
			}
			for (const key of [EDITS_KEY, DELETIONS_KEY]) {
				const target = seed.getMap(key);
				for (const [id, value] of doc.getMap(key)) if (live.has(id)) target.set(id, value);
			}
		});
		return Y.encodeStateAsUpdate(seed);
	} finally {
		seed.destroy();
	}
}

/** Ids of the first `count` live messages, to check a plan still holds before removing them. */
export function leadingIds(doc: Y.Doc, count: number): string[] {
	return doc
		.getArray<ChatMessage>(MESSAGES_KEY)
		.slice(0, count)
		.map((m) => m.id);
}
