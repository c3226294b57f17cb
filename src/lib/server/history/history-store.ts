/**
 * Compacted room history (DynamoDB: partition key the room id, sort key an order-preserving key).
 * Writes are idempotent: putting the same (roomId, key) twice stores one item.
 */
import type { ChatMessage } from '$lib/shared/schema';

export interface HistoryEntry {
	/** Order-preserving key within the room; lexicographic order is the room's order. */
	key: string;
	message: ChatMessage;
}

export interface HistoryPage {
	entries: HistoryEntry[];
	/** Pass as `beforeKey` to get the page before this one; null at the room's first message. */
	nextBeforeKey: string | null;
}

export interface HistoryStore {
	readonly kind: 'dynamodb';
	/** Stores entries idempotently; resolves once every entry is durably written. */
	putEntries(roomId: string, entries: HistoryEntry[]): Promise<void>;
	/** Up to `limit` entries with key < beforeKey (or the newest when null), oldest first. */
	pageBefore(roomId: string, beforeKey: string | null, limit: number): Promise<HistoryPage>;
	/** Deletes up to `limit` entries of the room; returns how many were deleted (0 when empty). */
	purgeBatch(roomId: string, limit: number): Promise<number>;
	/** Answers when the backing service is reachable. */
	ping(): Promise<void>;
	close(): Promise<void>;
}
