/**
 * The history API's pages: compacted history (DynamoDB, positions 0 .. H-1) then the live
 * document (positions H ..), as one sequence. H and the live document are read in one
 * PostgreSQL transaction, and compaction raises H in the same transaction that removes the
 * sealed messages from the live document, so every read sees each message exactly once.
 *
 * A cursor names the message a page ends before, with the position it had. Compaction moves a
 * prefix of the live array into history in order, so a message's position never changes when
 * it is sealed; only a message an offline client inserts further back can shift later ones, and
 * the cursor's id then finds the message near its old position.
 */
import * as Y from 'yjs';
import { historyKey, historyPosition, type HistoryEntry, type HistoryStore } from './history/history-store';
import type { Database } from './db/database';
import { ApiError } from './http';
import {
	DELETIONS_KEY,
	EDITS_KEY,
	isUlid,
	MESSAGES_KEY,
	type ChatMessage,
	type MessageDeletion,
	type MessageEdit
} from '$lib/shared/schema';
import type { MessagesPage } from '$lib/shared/api-types';

/** A message as the history API shows it: edits applied, deletions marked (extensions). */
export type PagedMessage = ChatMessage & { editedAt?: number; deleted?: MessageDeletion };

export const PAGE_LIMIT_MAX = 100;
export const PAGE_LIMIT_DEFAULT = 50;
const CURSOR_VERSION = 2;
/** How far past its recorded position a cursor's message is looked for in compacted history. */
const CURSOR_SEARCH_WINDOW = 200;

export interface Cursor {
	/** The message the page ends before. */
	before: string;
	/** Its position in the room's order when the cursor was issued. */
	position: number;
}

export function encodeCursor(cursor: Cursor): string {
	return Buffer.from(JSON.stringify({ v: CURSOR_VERSION, b: cursor.before, p: cursor.position })).toString('base64url');
}

export function decodeCursor(raw: string): Cursor {
	try {
		const value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { v?: unknown; b?: unknown; p?: unknown };
		if (value.v === CURSOR_VERSION && typeof value.b === 'string' && Number.isSafeInteger(value.p) && (value.p as number) >= 0) {
			return { before: value.b, position: value.p as number };
		}
	} catch {
		// fall through to the error below
	}
	throw new ApiError(400, 'invalid_cursor', 'before is not a cursor this server issued');
}

/** A cursor for a message of the live document, known by id only (the `beforeId` parameter). */
export function cursorForLiveMessage(messageId: string): Cursor {
	if (!isUlid(messageId)) throw new ApiError(400, 'invalid_cursor', 'beforeId is not a message id');
	// A position past any compacted message: only the live document is searched.
	return { before: messageId, position: Number.MAX_SAFE_INTEGER };
}

export function parseLimit(raw: string | null): number {
	if (raw === null || raw === '') return PAGE_LIMIT_DEFAULT;
	const limit = Number(raw);
	if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_LIMIT_MAX) {
		throw new ApiError(400, 'invalid_limit', `limit must be an integer from 1 to ${PAGE_LIMIT_MAX}`);
	}
	return limit;
}

interface LiveSnapshot {
	historyCount: number;
	messages: PagedMessage[];
}

/** H and the live document's messages (edits and deletions applied), as of one transaction. */
async function readLive(db: Database, roomId: string): Promise<LiveSnapshot> {
	const { historyCount, updates } = await db.transaction(async (tx) => {
		// One snapshot for both reads: a compaction committing between them would otherwise hide
		// the messages it sealed from both (PostgreSQL's default gives each statement its own).
		await tx.query('set transaction isolation level repeatable read');
		const [room] = await tx.query<{ epoch: number; history_count: string | number }>(
			'select epoch, history_count from rooms where id = $1',
			[roomId]
		);
		if (!room) throw new ApiError(404, 'room_not_found', 'no such room');
		const rows = await tx.query<{ data: Uint8Array }>(
			'select data from room_updates where room_id = $1 and epoch = $2 order by seq',
			[roomId, room.epoch]
		);
		return { historyCount: Number(room.history_count), updates: rows.map((r) => new Uint8Array(r.data)) };
	});
	const doc = new Y.Doc();
	try {
		if (updates.length > 0) Y.applyUpdate(doc, updates.length === 1 ? updates[0] : Y.mergeUpdates(updates));
		const edits = doc.getMap<MessageEdit>(EDITS_KEY);
		const deletions = doc.getMap<MessageDeletion>(DELETIONS_KEY);
		const messages = doc.getArray<ChatMessage>(MESSAGES_KEY).map(({ id, author, ts, kind, text }): PagedMessage => {
			const deletion = deletions.get(id);
			if (deletion) return { id, author, ts, kind, text: '', deleted: { by: deletion.by, ts: deletion.ts } };
			const edit = edits.get(id);
			if (edit) return { id, author, ts, kind, text: edit.text, editedAt: edit.ts };
			return { id, author, ts, kind, text };
		});
		return { historyCount, messages };
	} finally {
		doc.destroy();
	}
}

function fromEntry({ message, edit, deletion }: HistoryEntry): PagedMessage {
	const { id, author, ts, kind, text } = message;
	if (deletion) return { id, author, ts, kind, text: '', deleted: deletion };
	if (edit) return { id, author, ts, kind, text: edit.text, editedAt: edit.ts };
	return { id, author, ts, kind, text };
}

/** Compacted history at positions [start, end) (end ≤ H), oldest first. */
async function readSealed(history: HistoryStore, roomId: string, start: number, end: number): Promise<PagedMessage[]> {
	if (end <= start) return [];
	const page = await history.pageBefore(roomId, historyKey(end), end - start);
	const entries = page.entries.filter((e) => historyPosition(e.key) >= start);
	if (entries.length !== end - start) {
		throw new Error(`room ${roomId}: compacted history is missing positions in [${start}, ${end})`);
	}
	return entries.map(fromEntry);
}

/** Where the page before `cursor` ends: the current position of the cursor's message. */
async function locate(history: HistoryStore, roomId: string, cursor: Cursor, live: LiveSnapshot): Promise<number> {
	const liveIndex = live.messages.findIndex((m) => m.id === cursor.before);
	if (liveIndex >= 0) return live.historyCount + liveIndex;
	const H = live.historyCount;
	if (cursor.position < H) {
		// Sealed: at its recorded position, or a little later if messages were inserted before it.
		const windowEnd = Math.min(H, cursor.position + CURSOR_SEARCH_WINDOW);
		const page = await history.pageBefore(roomId, historyKey(windowEnd), windowEnd - cursor.position);
		const found = page.entries.find((e) => e.message.id === cursor.before);
		if (found) return historyPosition(found.key);
	}
	throw new ApiError(400, 'invalid_cursor', 'the cursor names no message of this room');
}

export async function pageMessages(
	db: Database,
	history: HistoryStore,
	roomId: string,
	cursor: Cursor | null,
	limit: number
): Promise<MessagesPage> {
	const live = await readLive(db, roomId);
	const H = live.historyCount;
	const end = cursor === null ? H + live.messages.length : await locate(history, roomId, cursor, live);
	const start = Math.max(0, end - limit);
	const sealed = await readSealed(history, roomId, start, Math.min(end, H));
	const messages = [...sealed, ...live.messages.slice(Math.max(0, start - H), Math.max(0, end - H))];
	return {
		messages,
		nextBefore: start > 0 && messages.length > 0 ? encodeCursor({ before: messages[0].id, position: start }) : null
	};
}
