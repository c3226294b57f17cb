/**
 * A message as the room view shows it: from the live document (`ChatMessage`) or from a history
 * page, which may carry the API's extension fields (docs/api.md: `editedAt`, `deleted`).
 */
import { MESSAGE_KINDS, isUlid, type ChatMessage, type MessageDeletion, type MessageKind } from '$lib/shared/schema';

export type HistoryMessage = ChatMessage & { editedAt?: number; deleted?: MessageDeletion };

export interface ParsedPage {
	messages: HistoryMessage[];
	nextBefore: string | null;
}

function isFiniteTime(value: unknown): value is number {
	return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** One history message, or null when the shape is not one (the server is trusted, not blindly). */
export function parseHistoryMessage(value: unknown): HistoryMessage | null {
	if (typeof value !== 'object' || value === null) return null;
	const v = value as Record<string, unknown>;
	if (!isUlid(v.id) || typeof v.author !== 'string' || !isFiniteTime(v.ts) || typeof v.text !== 'string') return null;
	if (!MESSAGE_KINDS.includes(v.kind as MessageKind)) return null;
	const message: HistoryMessage = { id: v.id, author: v.author, ts: v.ts, kind: v.kind as MessageKind, text: v.text };
	if (isFiniteTime(v.editedAt)) message.editedAt = v.editedAt;
	const deleted = v.deleted as Record<string, unknown> | undefined;
	if (deleted && typeof deleted.by === 'string' && isFiniteTime(deleted.ts)) message.deleted = { by: deleted.by, ts: deleted.ts };
	return message;
}

/** A page of `GET /api/rooms/:id/messages`, keeping only well-formed messages. */
export function parseMessagesPage(page: unknown): ParsedPage {
	const p = page as { messages?: unknown; nextBefore?: unknown } | null;
	const raw = Array.isArray(p?.messages) ? p.messages : [];
	const messages = raw.map(parseHistoryMessage).filter((m): m is HistoryMessage => m !== null);
	return { messages, nextBefore: typeof p?.nextBefore === 'string' ? p.nextBefore : null };
}

/**
 * The room's order as one list: the history run (oldest first), then the live log. Ids are
 * unique in a room; a message in both (a page fetched while it was still live) is shown once, in
 * the live log's place. Linear in the total.
 */
export function historyThenLive(history: readonly HistoryMessage[], live: readonly HistoryMessage[]): HistoryMessage[] {
	if (history.length === 0) return live as HistoryMessage[];
	const liveIds = new Set(live.map((m) => m.id));
	const seen = new Set<string>();
	const out: HistoryMessage[] = [];
	for (const m of history) {
		if (liveIds.has(m.id) || seen.has(m.id)) continue;
		seen.add(m.id);
		out.push(m);
	}
	for (const m of live) out.push(m);
	return out;
}
