/**
 * Compacted room history (DynamoDB: partition key the room id; each entry at a position of the
 * room's order, named by its history key). Writes are idempotent: an entry put again is read once.
 */
import type { ChatMessage, MessageDeletion, MessageEdit } from '$lib/shared/schema';

export interface HistoryEntry {
	/** historyKey(position): lexicographic order is the room's order. */
	key: string;
	message: ChatMessage;
	/** The message's last edit when it was sealed. */
	edit?: MessageEdit;
	/** Set when the message had been deleted; its text is then stored empty. */
	deletion?: MessageDeletion;
}

/** Digits of a sealed message's position in its room: keys sort as the positions do. */
export const HISTORY_KEY_DIGITS = 12;

/**
 * Consecutive messages one stored item holds at most; runs are cut at its multiples. Part of the
 * stored form: every relay and reader of one table must agree on it.
 */
export const HISTORY_ITEM_MESSAGES = 32;

/**
 * Where writes cover the same positions (a redo after a failure or a crash, a write abandoned
 * but applied late, a later step over an attempt that sealed more), the one read is the later by
 * `step` (the history position the compaction step began at), then `fence` (the compaction
 * lease's fence: a later holder), then `attempt` (growing with every write its holder starts).
 * Every part is below 10^12.
 */
export interface WriteOrder {
	step: number;
	fence: number;
	attempt: number;
}

export interface PutOptions {
	/** Once it aborts, no further request is sent and the one in flight is abandoned (it rejects). */
	signal?: AbortSignal;
	/** Which write is read where writes overlap (default: step at the first position written, fence and attempt 0). */
	order?: WriteOrder;
}

/** The sort key of the message at `position` (0 = the room's first message) of compacted history. */
export function historyKey(position: number): string {
	if (!Number.isSafeInteger(position) || position < 0 || position >= 10 ** HISTORY_KEY_DIGITS) {
		throw new RangeError(`history position out of range: ${position}`);
	}
	return position.toString().padStart(HISTORY_KEY_DIGITS, '0');
}

export function historyPosition(key: string): number {
	if (!/^\d{12}$/.test(key)) throw new Error(`not a history key: ${key}`);
	return Number(key);
}

export interface HistoryPage {
	entries: HistoryEntry[];
	/** Pass as `beforeKey` to get the page before this one; null at the room's first message. */
	nextBeforeKey: string | null;
}

export interface HistoryStore {
	readonly kind: 'dynamodb';
	/**
	 * Stores entries idempotently; resolves once every entry is durably written. Once `signal`
	 * aborts, no further request is sent and the one in flight is abandoned (it rejects). `order`
	 * says which write is read where writes overlap, whichever lands last (default: step at the
	 * first position written, fence and attempt 0).
	 */
	putEntries(roomId: string, entries: HistoryEntry[], options?: PutOptions): Promise<void>;
	/** Up to `limit` entries with key < beforeKey (or the newest when null), oldest first. */
	pageBefore(roomId: string, beforeKey: string | null, limit: number): Promise<HistoryPage>;
	/** Deletes up to `limit` stored items of the room (each holds one or more entries); returns how many (0 when empty). */
	purgeBatch(roomId: string, limit: number): Promise<number>;
	/** Answers when the backing service is reachable. */
	ping(): Promise<void>;
	close(): Promise<void>;
}
