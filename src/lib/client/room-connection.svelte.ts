/**
 * One room's live connection in the browser: the Yjs document, its copy on the device
 * (IndexedDB, so the room opens before the network answers and accepts messages with none), the
 * other tabs of the same account (TabChannel), the relay (RelayLink) and awareness for presence
 * and typing; and, from all of these, the status of the viewer's own messages.
 *
 * Create one per room and `destroy()` it when the room is left; the fields below are Svelte
 * state, so components read them directly.
 */
import * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import { Awareness } from 'y-protocols/awareness';
import { ulid } from 'ulid';
import { registerRoomDatabase, roomDatabaseName } from './device-store';
import { mergeClocks, readDurableClocks, saveDurableClocks, type DurableClocks } from './durable-clocks';
import { memberReceipts, ownMessageStatuses, type ItemId, type MemberReceipt, type MessageStatus, type ReceiptInputs } from './receipts';
import { RelayLink, type ConnectionStatus } from './relay-link.svelte';
import type { Rejection, StopReason } from './relay-protocol';
import { TabChannel } from './tab-channel';
import { DELIVERED_KEY, MESSAGES_KEY, READS_KEY, MESSAGE_TEXT_MAX_CHARS, isChatMessage, type ChatMessage } from '$lib/shared/schema';
import type { User } from '$lib/shared/api-types';

export { roomDatabaseName };
export type { ConnectionStatus, MessageStatus, MemberReceipt, StopReason };

export interface PresentUser {
	id: string;
	name: string;
}

export interface RoomConnectionOptions {
	/**
	 * A connection the user does not see (the inbox sync): it publishes no awareness state, so it
	 * neither shows the user as present in the room nor announces typing.
	 */
	background?: boolean;
}

interface AwarenessState {
	user?: { id?: unknown; name?: unknown };
	typing?: unknown;
}

/** "Typing" ends this long after the last keystroke. */
const TYPING_IDLE_MS = 3_000;
/**
 * Typing changes are published at most this often (the last state wins): someone sending short
 * messages in quick succession toggles it twice per message, and the relay rate-limits awareness.
 */
const TYPING_PUBLISH_INTERVAL_MS = 500;
/** The device's `delivered` mark is written at most this often while messages stream in. */
const DELIVERED_MARK_INTERVAL_MS = 300;

/** Connections open in this tab, so sign-out can close them before deleting their databases. */
const openConnections = new Set<RoomConnection>();

/** Closes every room connection of this tab (sign-out). */
export function closeAllRoomConnections(): void {
	for (const connection of [...openConnections]) connection.destroy();
}

/**
 * The first message from someone else after the read pointer `readId` (null: nothing read yet),
 * in the log's order. A pointer that left the live log (compacted) is older than all of it.
 */
export function firstUnreadId(messages: readonly ChatMessage[], readId: string | null, viewerId: string): string | null {
	const readIndex = readId === null ? -1 : messages.findIndex((m) => m.id === readId);
	const first = messages.find(
		(m, i) => m.author !== viewerId && (readId === null || (readIndex >= 0 ? i > readIndex : m.id > readId))
	);
	return first?.id ?? null;
}

function stringEntries(map: Y.Map<unknown>): Map<string, string> {
	const out = new Map<string, string>();
	for (const [key, value] of map.entries()) if (typeof value === 'string') out.set(key, value);
	return out;
}

export class RoomConnection {
	/** The room's live log, in the document's order (the same everywhere). */
	messages = $state.raw<ChatMessage[]>([]);
	/** True once the device's copy (or the relay) has been loaded: an empty log now means an empty room. */
	loaded = $state(false);
	/** Other people typing right now. */
	typingUsers = $state.raw<PresentUser[]>([]);
	/** Users with an open connection to this room (from awareness), the viewer's other tabs included. */
	presentUserIds = $state.raw<ReadonlySet<string>>(new Set());
	/** The viewer's read pointer (`reads[me]`), or null. */
	myReadId = $state<string | null>(null);
	/** Client id → next clock the relay has durably stored (from `durable` frames and the device). */
	durable = $state.raw<DurableClocks>(new Map());
	/** user id → newest message id some device of theirs holds. */
	delivered = $state.raw<ReadonlyMap<string, string>>(new Map());
	/** user id → newest message id they have read. */
	reads = $state.raw<ReadonlyMap<string, string>>(new Map());

	readonly roomId: string;
	readonly user: User;

	/** Yjs ids of the viewer's own messages; changes together with `messages`. */
	readonly #itemIds = new Map<string, ItemId>();
	/** Next clock of this tab's client id, i.e. how much it has written (state, for `localWritesDurable`). */
	#writtenClock = $state(0);
	#doc = new Y.Doc();
	#log: Y.Array<unknown>;
	#readsMap: Y.Map<unknown>;
	#deliveredMap: Y.Map<unknown>;
	#awareness: Awareness;
	#persistence: IndexeddbPersistence;
	#tabs: TabChannel;
	#relay: RelayLink;
	#typingTimer: ReturnType<typeof setTimeout> | null = null;
	#typingWanted = false;
	#typingPublishedAt = 0;
	#typingPublishTimer: ReturnType<typeof setTimeout> | null = null;
	#deliveredTimer: ReturnType<typeof setTimeout> | null = null;
	#destroyed = false;

	constructor(roomId: string, user: User, options: RoomConnectionOptions = {}) {
		this.roomId = roomId;
		this.user = user;
		this.#log = this.#doc.getArray(MESSAGES_KEY);
		this.#readsMap = this.#doc.getMap(READS_KEY);
		this.#deliveredMap = this.#doc.getMap(DELIVERED_KEY);
		this.#awareness = new Awareness(this.#doc);
		if (options.background) this.#awareness.setLocalState(null);
		else this.#awareness.setLocalState({ user: { id: user.id, name: user.displayName }, typing: false });
		this.durable = readDurableClocks(user.id, roomId);

		this.#log.observe(this.#onLogChange);
		this.#readsMap.observe(this.#onReadsChange);
		this.#deliveredMap.observe(this.#onDeliveredChange);
		this.#awareness.on('change', this.#onAwarenessChange);
		this.#doc.on('afterTransaction', this.#onAfterTransaction);

		const databaseName = roomDatabaseName(user.id, roomId);
		registerRoomDatabase(user.id, databaseName);
		this.#persistence = new IndexeddbPersistence(databaseName, this.#doc);
		this.#persistence.on('synced', () => {
			if (!this.#destroyed) this.loaded = true;
		});
		this.#tabs = new TabChannel(user.id, roomId, this.#doc, this.#persistence);
		this.#relay = new RelayLink(roomId, this.#doc, this.#awareness, {
			onDurable: (clocks) => this.#onDurable(clocks),
			onSynced: () => {
				this.loaded = true;
				this.#scheduleDeliveredMark();
			}
		});
		openConnections.add(this);
	}

	/** Where the relay link stands (see ConnectionStatus). */
	get status(): ConnectionStatus {
		return this.#relay.status;
	}

	/** True while the document is in sync with the relay. */
	get synced(): boolean {
		return this.#relay.synced;
	}

	/** Why the connection stopped for good, or null. */
	get stopped(): StopReason | null {
		return this.#relay.stopped;
	}

	/** The relay's last refusal of an update from this device. */
	get rejection(): Rejection | null {
		return this.#relay.rejection;
	}

	/** When the next attempt is due (ms since the epoch) while reconnecting or offline. */
	get nextRetryAt(): number | null {
		return this.#relay.nextRetryAt;
	}

	/** Tries the relay now instead of waiting for the next scheduled attempt. */
	retryNow(): void {
		this.#relay.retryNow();
	}

	/** The status of each of the viewer's own messages, given the room's other members. */
	statuses(recipientIds: readonly string[]): Map<string, MessageStatus> {
		return ownMessageStatuses(this.#receiptInputs(recipientIds), this.user.id);
	}

	/** Per other member: whether a device of theirs has `messageId` and whether they read it. */
	receipts(messageId: string, recipientIds: readonly string[]): MemberReceipt[] {
		return memberReceipts(this.#receiptInputs(recipientIds), messageId);
	}

	/** True when everything this tab wrote has been durably stored by the relay. */
	get localWritesDurable(): boolean {
		return this.#writtenClock <= (this.durable.get(this.#doc.clientID) ?? 0);
	}

	/** Appends a text message; works offline (it waits in the document). Null for blank text. */
	send(text: string): ChatMessage | null {
		const body = text.trim();
		if (this.#destroyed || this.stopped || body.length === 0 || body.length > MESSAGE_TEXT_MAX_CHARS) return null;
		const message: ChatMessage = { id: ulid(), author: this.user.id, ts: Date.now(), kind: 'text', text: body };
		this.#doc.transact(() => this.#log.push([message]));
		this.setTyping(false);
		return message;
	}

	/** Announces typing; it ends by itself after a few idle seconds. */
	setTyping(typing: boolean): void {
		if (this.#destroyed || this.#awareness.getLocalState() === null) return;
		if (this.#typingTimer) clearTimeout(this.#typingTimer);
		this.#typingTimer = typing ? setTimeout(() => this.setTyping(false), TYPING_IDLE_MS) : null;
		this.#typingWanted = typing;
		this.#publishTyping();
	}

	/** Moves the viewer's read pointer forward to `messageId`; never backwards. */
	markRead(messageId: string): void {
		if (this.#destroyed) return;
		const current = this.#readsMap.get(this.user.id);
		if (current === messageId) return;
		if (typeof current === 'string' && !this.#isAfter(messageId, current)) return;
		this.#doc.transact(() => this.#readsMap.set(this.user.id, messageId));
	}

	/** Stops syncing and frees everything; safe to call twice. The device keeps its copy. */
	destroy(): void {
		if (this.#destroyed) return;
		this.#destroyed = true;
		openConnections.delete(this);
		if (this.#typingTimer) clearTimeout(this.#typingTimer);
		if (this.#typingPublishTimer) clearTimeout(this.#typingPublishTimer);
		if (this.#deliveredTimer) clearTimeout(this.#deliveredTimer);
		this.#relay.destroy();
		this.#tabs.close();
		this.#awareness.destroy();
		void this.#persistence.destroy();
		this.#doc.destroy();
	}

	#publishTyping(): void {
		const state = this.#awareness.getLocalState() as AwarenessState | null;
		if (this.#destroyed || this.#typingPublishTimer || state === null) return;
		if ((state.typing === true) === this.#typingWanted) return;
		const wait = this.#typingPublishedAt + TYPING_PUBLISH_INTERVAL_MS - Date.now();
		if (wait > 0) {
			this.#typingPublishTimer = setTimeout(() => {
				this.#typingPublishTimer = null;
				this.#publishTyping();
			}, wait);
			return;
		}
		this.#typingPublishedAt = Date.now();
		this.#awareness.setLocalStateField('typing', this.#typingWanted);
	}

	#receiptInputs(recipientIds: readonly string[]): ReceiptInputs {
		return {
			messages: this.messages,
			itemIds: this.#itemIds,
			durable: this.durable,
			recipientIds,
			delivered: this.delivered,
			reads: this.reads
		};
	}

	#onDurable(clocks: DurableClocks): void {
		const merged = mergeClocks(this.durable, clocks);
		if (merged === this.durable) return;
		this.durable = merged;
		this.#persistDurable();
	}

	/** Keeps the clocks of the client ids behind the viewer's messages on the device. */
	#persistDurable(): void {
		const ownClients = new Set([...this.#itemIds.values()].map((item) => item.client));
		saveDurableClocks(this.user.id, this.roomId, this.durable, ownClients);
	}

	#onLogChange = (event: Y.YArrayEvent<unknown>): void => {
		let ownAdded = false;
		for (const item of event.changes.added) {
			if (!(item.content instanceof Y.ContentAny)) continue;
			item.content.arr.forEach((value, offset) => {
				if (isChatMessage(value, Number.MAX_SAFE_INTEGER) && value.author === this.user.id) {
					this.#itemIds.set(value.id, { client: item.id.client, clock: item.id.clock + offset });
					ownAdded = true;
				}
			});
		}
		// Acknowledgements may have come before the messages they cover (relay before IndexedDB).
		if (ownAdded && this.durable.size > 0) this.#persistDurable();
		this.messages = this.#log.toArray().filter((m): m is ChatMessage => isChatMessage(m, Number.MAX_SAFE_INTEGER));
		this.#scheduleDeliveredMark();
	};

	#onReadsChange = (): void => {
		this.reads = stringEntries(this.#readsMap);
		this.myReadId = this.reads.get(this.user.id) ?? null;
	};

	#onDeliveredChange = (): void => {
		this.delivered = stringEntries(this.#deliveredMap);
		this.#scheduleDeliveredMark();
	};

	#onAfterTransaction = (transaction: Y.Transaction): void => {
		if (transaction.local) this.#writtenClock = Y.getState(this.#doc.store, this.#doc.clientID);
	};

	/**
	 * This device holds the log up to its newest message: say so in `delivered` (own key), once in
	 * sync with the relay so the mark reflects what the room has, and throttled.
	 */
	#scheduleDeliveredMark(): void {
		if (this.#destroyed || !this.synced || this.#deliveredTimer) return;
		this.#deliveredTimer = setTimeout(() => {
			this.#deliveredTimer = null;
			if (this.#destroyed || !this.synced) return;
			const newest = this.messages.at(-1);
			if (!newest) return;
			const current = this.#deliveredMap.get(this.user.id);
			if (current === newest.id || (typeof current === 'string' && !this.#isAfter(newest.id, current))) return;
			this.#doc.transact(() => this.#deliveredMap.set(this.user.id, newest.id));
		}, DELIVERED_MARK_INTERVAL_MS);
	}

	#onAwarenessChange = (): void => {
		const present = new Set<string>();
		const typing = new Map<string, PresentUser>();
		for (const [clientId, raw] of this.#awareness.getStates()) {
			const state = raw as AwarenessState;
			const id = state.user?.id;
			if (typeof id !== 'string') continue;
			present.add(id);
			if (clientId === this.#doc.clientID || id === this.user.id || state.typing !== true) continue;
			const name = typeof state.user?.name === 'string' ? state.user.name : 'Someone';
			typing.set(id, { id, name });
		}
		this.presentUserIds = present;
		this.typingUsers = [...typing.values()];
	};

	/** Whether message `a` comes after message `b` in the room's order. */
	#isAfter(a: string, b: string): boolean {
		let indexA = -1;
		let indexB = -1;
		this.messages.forEach((m, i) => {
			if (m.id === a) indexA = i;
			if (m.id === b) indexB = i;
		});
		if (indexA === -1) return false;
		// `b` left the live log (compacted into history), so it is older than anything in it.
		if (indexB === -1) return true;
		return indexA > indexB;
	}
}
