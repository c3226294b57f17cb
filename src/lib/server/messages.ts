/**
 * The history API's pages. For now the room's whole log lives in its live document, read from
 * PostgreSQL (the durable copy, so a page never shows what was not committed). Cursors are
 * opaque to clients: base64url JSON naming the message the page ends before.
 */
import * as Y from 'yjs';
import { DocStore } from '../../../sync-server/doc-store';
import type { Database } from './db/database';
import { ApiError } from './http';
import {
	DELETIONS_KEY,
	EDITS_KEY,
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
const CURSOR_VERSION = 1;

export function encodeCursor(messageId: string): string {
	return Buffer.from(JSON.stringify({ v: CURSOR_VERSION, before: messageId })).toString('base64url');
}

export function decodeCursor(cursor: string): string {
	try {
		const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: unknown; before?: unknown };
		if (value.v === CURSOR_VERSION && typeof value.before === 'string') return value.before;
	} catch {
		// fall through to the error below
	}
	throw new ApiError(400, 'invalid_cursor', 'before is not a cursor this server issued');
}

export function parseLimit(raw: string | null): number {
	if (raw === null || raw === '') return PAGE_LIMIT_DEFAULT;
	const limit = Number(raw);
	if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_LIMIT_MAX) {
		throw new ApiError(400, 'invalid_limit', `limit must be an integer from 1 to ${PAGE_LIMIT_MAX}`);
	}
	return limit;
}

export async function pageMessages(db: Database, roomId: string, before: string | null, limit: number): Promise<MessagesPage> {
	const { state } = await new DocStore(db).load(roomId);
	const doc = new Y.Doc();
	try {
		Y.applyUpdate(doc, state);
		const all = doc.getArray<ChatMessage>(MESSAGES_KEY).toArray();
		let end = all.length;
		if (before !== null) {
			end = all.findIndex((m) => m.id === before);
			if (end < 0) throw new ApiError(400, 'invalid_cursor', 'the cursor names no message of this room');
		}
		const start = Math.max(0, end - limit);
		const edits = doc.getMap<MessageEdit>(EDITS_KEY);
		const deletions = doc.getMap<MessageDeletion>(DELETIONS_KEY);
		const messages = all.slice(start, end).map(({ id, author, ts, kind, text }): PagedMessage => {
			const deletion = deletions.get(id);
			if (deletion) return { id, author, ts, kind, text: '', deleted: { by: deletion.by, ts: deletion.ts } };
			const edit = edits.get(id);
			if (edit) return { id, author, ts, kind, text: edit.text, editedAt: edit.ts };
			return { id, author, ts, kind, text };
		});
		return { messages, nextBefore: start > 0 ? encodeCursor(all[start].id) : null };
	} finally {
		doc.destroy();
	}
}
