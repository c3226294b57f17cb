/**
 * The status of the viewer's own messages (CONTRACT.md "UI landmarks"; issue 3):
 *
 * - `pending` until the relay says the message is durably stored: a `durable` frame's clock for
 *   the message's Yjs client id is greater than the message's clock (docs/protocol.md);
 * - `sent` once stored;
 * - `delivered` once every other member's `delivered` mark (the newest message some device of
 *   theirs holds) is at or after the message in the room's order;
 * - `read` once every other member's `reads` mark is at or after it.
 *
 * Marks are high-water marks in the log's (array) order, one per user, so the cost is one map
 * entry per member however long the room. A mark that is not in the live log was compacted into
 * history and so is older than all of it. Each stage implies the ones before: a message is never
 * shown delivered or read before it is durable.
 */
import type { ChatMessage } from '$lib/shared/schema';

export type MessageStatus = 'pending' | 'sent' | 'delivered' | 'read';

/** A Yjs item id: the writer's client id and the element's clock. */
export interface ItemId {
	client: number;
	clock: number;
}

export interface ReceiptInputs {
	/** The live log in the room's order. */
	messages: readonly ChatMessage[];
	/** Yjs ids of the viewer's own messages, by message id. */
	itemIds: ReadonlyMap<string, ItemId>;
	/** Client id → next clock PostgreSQL holds (the relay's `durable` frames, merged). */
	durable: ReadonlyMap<number, number>;
	/** Everyone in the room except the viewer. */
	recipientIds: readonly string[];
	delivered: ReadonlyMap<string, string>;
	reads: ReadonlyMap<string, string>;
}

export interface MemberReceipt {
	userId: string;
	delivered: boolean;
	read: boolean;
}

export function isDurable(item: ItemId, durable: ReadonlyMap<number, number>): boolean {
	return (durable.get(item.client) ?? 0) > item.clock;
}

function positions(messages: readonly ChatMessage[]): Map<string, number> {
	const index = new Map<string, number>();
	messages.forEach((m, i) => index.set(m.id, i));
	return index;
}

/** Position of a user's mark in the log; -1 when unset or older than the live log. */
function markPosition(marks: ReadonlyMap<string, string>, userId: string, index: ReadonlyMap<string, number>): number {
	const id = marks.get(userId);
	return id === undefined ? -1 : (index.get(id) ?? -1);
}

interface MemberMarks {
	userId: string;
	deliveredUpTo: number;
	readUpTo: number;
}

function memberMarks(inputs: ReceiptInputs, index: ReadonlyMap<string, number>): MemberMarks[] {
	return inputs.recipientIds.map((userId) => {
		const readUpTo = markPosition(inputs.reads, userId, index);
		// Reading a message means a device of theirs has it.
		const deliveredUpTo = Math.max(markPosition(inputs.delivered, userId, index), readUpTo);
		return { userId, deliveredUpTo, readUpTo };
	});
}

/** The status of each of the viewer's own messages, by message id. */
export function ownMessageStatuses(inputs: ReceiptInputs, viewerId: string): Map<string, MessageStatus> {
	const index = positions(inputs.messages);
	const marks = memberMarks(inputs, index);
	// With nobody else in the room there is nobody to deliver to: a message stays `sent`.
	const deliveredUpTo = marks.length === 0 ? -1 : Math.min(...marks.map((m) => m.deliveredUpTo));
	const readUpTo = marks.length === 0 ? -1 : Math.min(...marks.map((m) => m.readUpTo));
	const statuses = new Map<string, MessageStatus>();
	inputs.messages.forEach((message, i) => {
		if (message.author !== viewerId) return;
		const item = inputs.itemIds.get(message.id);
		if (!item || !isDurable(item, inputs.durable)) statuses.set(message.id, 'pending');
		else if (i <= readUpTo) statuses.set(message.id, 'read');
		else if (i <= deliveredUpTo) statuses.set(message.id, 'delivered');
		else statuses.set(message.id, 'sent');
	});
	return statuses;
}

/** Per recipient: whether a device of theirs has the message, and whether they read it. */
export function memberReceipts(inputs: ReceiptInputs, messageId: string): MemberReceipt[] {
	const index = positions(inputs.messages);
	const at = index.get(messageId);
	if (at === undefined) return [];
	return memberMarks(inputs, index).map((m) => ({ userId: m.userId, delivered: at <= m.deliveredUpTo, read: at <= m.readUpTo }));
}

/**
 * The status of the viewer's own messages that left the live log (compacted into history): the
 * relay stored them, and every mark that is in the live log comes after them. A mark that is not
 * in it (unset, or compacted too) says nothing, so such a message is at least `sent`.
 */
export function compactedMessageStatus(inputs: ReceiptInputs): MessageStatus {
	if (inputs.recipientIds.length === 0) return 'sent';
	const marks = memberMarks(inputs, positions(inputs.messages));
	if (marks.every((m) => m.readUpTo >= 0)) return 'read';
	if (marks.every((m) => m.deliveredUpTo >= 0)) return 'delivered';
	return 'sent';
}
