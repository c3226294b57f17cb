/**
 * The room document's schema (CONTRACT.md, "The room document"), shared by the browser, the
 * relay and the HTTP API so all three agree on what a valid message is.
 */

/** Root type names of a room document. */
export const MESSAGES_KEY = 'messages';
/** user id → id of the newest message that user has read. */
export const READS_KEY = 'reads';
/** Extension: user id → id of the newest message some device of that user has received. */
export const DELIVERED_KEY = 'delivered';
/** Maps in which each user writes only their own key, and only message ids. */
export const PER_USER_KEYS: readonly string[] = [READS_KEY, DELIVERED_KEY];
/** Extension: message id → {text, ts}, the message's current text; written by its author only. */
export const EDITS_KEY = 'edits';
/** Extension: message id → {by, ts}, a tombstone; written by the author or a room admin. */
export const DELETIONS_KEY = 'deletions';

export interface MessageEdit {
	text: string;
	ts: number;
}

export interface MessageDeletion {
	by: string;
	ts: number;
}

/** Checks an edit value; null when valid. */
export function checkEdit(value: unknown, now: number = Date.now()): MessageProblem | null {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not_an_object';
	const v = value as Record<string, unknown>;
	if (Object.keys(v).some((k) => k !== 'text' && k !== 'ts')) return 'extra_fields';
	if (typeof v.ts !== 'number' || !Number.isSafeInteger(v.ts) || v.ts < 0) return 'bad_ts';
	if (v.ts > now + MESSAGE_TS_MAX_SKEW_MS) return 'ts_in_future';
	if (typeof v.text !== 'string' || v.text.trim().length === 0) return 'bad_text';
	if (v.text.length > MESSAGE_TEXT_MAX_CHARS) return 'text_too_long';
	return null;
}

/** Checks a deletion value written by `userId`; null when valid. */
export function checkDeletion(value: unknown, userId: string, now: number = Date.now()): MessageProblem | null {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not_an_object';
	const v = value as Record<string, unknown>;
	if (Object.keys(v).some((k) => k !== 'by' && k !== 'ts')) return 'extra_fields';
	if (v.by !== userId) return 'bad_author';
	if (typeof v.ts !== 'number' || !Number.isSafeInteger(v.ts) || v.ts < 0) return 'bad_ts';
	if (v.ts > now + MESSAGE_TS_MAX_SKEW_MS) return 'ts_in_future';
	return null;
}

export const MESSAGE_KINDS = ['text'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** Longest message body, in UTF-16 code units (what String.length counts). */
export const MESSAGE_TEXT_MAX_CHARS = 4000;
/** How far a sender's clock may run ahead of the relay's. */
export const MESSAGE_TS_MAX_SKEW_MS = 5 * 60_000;

export interface ChatMessage {
	/** ULID made by the sender. */
	id: string;
	/** The sender's user id. */
	author: string;
	/** The sender's clock, in ms since the epoch. */
	ts: number;
	kind: MessageKind;
	text: string;
}

const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function isUlid(value: unknown): value is string {
	return typeof value === 'string' && ULID_PATTERN.test(value);
}

export type MessageProblem =
	| 'not_an_object'
	| 'bad_id'
	| 'bad_author'
	| 'bad_ts'
	| 'ts_in_future'
	| 'bad_kind'
	| 'bad_text'
	| 'text_too_long'
	| 'extra_fields';

const MESSAGE_FIELDS = new Set(['id', 'author', 'ts', 'kind', 'text']);

/** Checks the shape of one message; null when it is valid. */
export function checkMessage(value: unknown, now: number = Date.now()): MessageProblem | null {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not_an_object';
	const m = value as Record<string, unknown>;
	for (const key of Object.keys(m)) if (!MESSAGE_FIELDS.has(key)) return 'extra_fields';
	if (!isUlid(m.id)) return 'bad_id';
	if (typeof m.author !== 'string' || m.author.length === 0 || m.author.length > 64) return 'bad_author';
	if (typeof m.ts !== 'number' || !Number.isSafeInteger(m.ts) || m.ts < 0) return 'bad_ts';
	if (m.ts > now + MESSAGE_TS_MAX_SKEW_MS) return 'ts_in_future';
	if (!MESSAGE_KINDS.includes(m.kind as MessageKind)) return 'bad_kind';
	if (typeof m.text !== 'string' || m.text.trim().length === 0) return 'bad_text';
	if (m.text.length > MESSAGE_TEXT_MAX_CHARS) return 'text_too_long';
	return null;
}

export function isChatMessage(value: unknown, now?: number): value is ChatMessage {
	return checkMessage(value, now) === null;
}
