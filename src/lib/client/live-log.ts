/**
 * Pure rules about the live log that the room connection applies when it changes: which
 * messages left it because the relay compacted them, and which of the viewer's own messages must
 * be carried into a new epoch's document (close code 4410, src/lib/shared/relay-wire.ts).
 */
import * as Y from 'yjs';
import { isChatMessage, type ChatMessage } from '$lib/shared/schema';
import { isDurable, type ItemId } from './receipts';

/**
 * The log's messages in its order, each id once. Ids are unique in a room; a duplicate can only
 * be a copy the relay is about to refuse (two tabs carrying the same message into a new epoch).
 */
export function readLiveLog(log: Y.Array<unknown>): ChatMessage[] {
	const seen = new Set<string>();
	const out: ChatMessage[] = [];
	for (const value of log.toArray()) {
		if (!isChatMessage(value, Number.MAX_SAFE_INTEGER) || seen.has(value.id)) continue;
		seen.add(value.id);
		out.push(value);
	}
	return out;
}

/** Messages that left the front of the live log, and whether others may have left unseen. */
export interface Compaction {
	/** What left, in the room's order. */
	messages: ChatMessage[];
	/**
	 * True when the log now starts with a message this device did not hold: messages may have
	 * arrived and been compacted while it was away (offline, or moving to a new epoch), so some
	 * history between `messages` and the log is only on the server.
	 */
	unseenMayFollow: boolean;
}

/**
 * Messages that left the front of the log between `before` and `after`: only the relay removes
 * entries, and it compacts the oldest. The viewer's own messages the relay never confirmed are
 * not history (their removal undoes a refused update), so they are left out. `isOwnPending`: the
 * viewer's messages not known to be stored, from any session of this device.
 */
export function compactedPrefix(
	before: readonly ChatMessage[],
	after: readonly ChatMessage[],
	isUnconfirmedOwn: (message: ChatMessage) => boolean,
	isOwnPending: (message: ChatMessage) => boolean = isUnconfirmedOwn
): Compaction {
	if (before.length === 0) return { messages: [], unseenMayFollow: false };
	const kept = new Set(after.map((m) => m.id));
	const gone: ChatMessage[] = [];
	for (const message of before) {
		if (kept.has(message.id)) break;
		if (!isUnconfirmedOwn(message)) gone.push(message);
	}
	// The log's first message someone else confirmed is one it held: everything between was seen
	// on the way. (The viewer's pending messages do not count: one written offline can land among
	// the oldest, before messages this device never saw.)
	const firstSettled = after.find((m) => !isOwnPending(m));
	const unseenMayFollow = gone.length > 0 && !(firstSettled && before.some((m) => m.id === firstSettled.id));
	return { messages: gone, unseenMayFollow };
}

/** Whether `message` is the viewer's and no `durable` frame has covered its Yjs item yet. */
export function isOwnPending(
	message: ChatMessage,
	viewerId: string,
	itemIds: ReadonlyMap<string, ItemId>,
	durable: ReadonlyMap<number, number>
): boolean {
	if (message.author !== viewerId) return false;
	const item = itemIds.get(message.id);
	return !item || !isDurable(item, durable);
}

/** The viewer's own messages whose Yjs item no `durable` frame has covered, in log order. */
export function unconfirmedOwnMessages(
	messages: readonly ChatMessage[],
	viewerId: string,
	itemIds: ReadonlyMap<string, ItemId>,
	durable: ReadonlyMap<number, number>
): ChatMessage[] {
	return messages.filter((m) => isOwnPending(m, viewerId, itemIds, durable));
}

/** `carried` messages the new document does not hold yet (by id), each once, in order. */
export function messagesToCarry(carried: readonly ChatMessage[], present: readonly ChatMessage[]): ChatMessage[] {
	const ids = new Set(present.map((m) => m.id));
	const out: ChatMessage[] = [];
	for (const message of carried) {
		if (ids.has(message.id)) continue;
		ids.add(message.id);
		out.push(message);
	}
	return out;
}
