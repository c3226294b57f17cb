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
import { newMessageId } from '$lib/shared/message-id';
import { forgetRoomDatabase, readRoomGeneration, registerRoomDatabase, roomDatabaseName, roomGenerationKey, writeJson } from './device-store';
import { mergeClocks, readDurableClocks, saveDurableClocks, type DurableClocks } from './durable-clocks';
import { compactedPrefix, isOwnPending, messagesToCarry, type Compaction, readLiveLog, unconfirmedOwnMessages } from './live-log';
import { compactedMessageStatus, isDurable, memberReceipts, ownMessageStatuses, type ItemId, type MemberReceipt, type MessageStatus, type ReceiptInputs } from './receipts';
import { reconnectDelayMs } from './reconnect-policy';
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

/** Closes this tab's connections to one room (it was deleted), so its databases can go. */
export function closeRoomConnections(roomId: string): void {
	for (const connection of [...openConnections]) if (connection.roomId === roomId) connection.destroy();
}

/** Epoch switches in a row without a sync before the next attempt waits (a loop would hammer the relay). */
const MOVES_BEFORE_BACKOFF = 3;

/** A fresh name for a room document's generation on this device. */
function newGeneration(): string {
	return ulid().toLowerCase();
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
	/**
	 * Called with messages that left the live log because the relay compacted them into history
	 * (or that a new epoch's document no longer holds): they stay on screen (RoomHistory.retain),
	 * and whatever was compacted unseen behind them is fetched.
	 */
	onCompacted: ((compaction: Compaction) => void) | null = null;

	readonly roomId: string;
	readonly user: User;

	/** Yjs ids of the viewer's own messages; changes together with `messages`. */
	readonly #itemIds = new Map<string, ItemId>();
	/** Next clock of this tab's client id, i.e. how much it has written (state, for `localWritesDurable`). */
	#writtenClock = $state(0);
	readonly #background: boolean;
	/** Yjs client ids of the documents this connection has written with. */
	readonly #localClients = new Set<number>();
	/** Which of the room's device databases this connection uses (see roomDatabaseName). */
	#generation: string;
	#doc!: Y.Doc;
	#log!: Y.Array<unknown>;
	#readsMap!: Y.Map<unknown>;
	#deliveredMap!: Y.Map<unknown>;
	#awareness!: Awareness;
	#persistence!: IndexeddbPersistence;
	#tabs!: TabChannel;
	#relay = $state.raw<RelayLink | null>(null);
	/**
	 * While moving to a new epoch's document: the viewer's unconfirmed messages to append to it
	 * after its first sync, and the old log, shown until then. Null otherwise.
	 */
	#move = $state.raw<{ carried: ChatMessage[]; previous: ChatMessage[]; oldDatabases: string[]; attempts: number } | null>(null);
	#syncWaiters: (() => void)[] = [];
	#typingTimer: ReturnType<typeof setTimeout> | null = null;
	#typingWanted = false;
	#typingPublishedAt = 0;
	#typingPublishTimer: ReturnType<typeof setTimeout> | null = null;
	#deliveredTimer: ReturnType<typeof setTimeout> | null = null;
	#destroyed = false;

	constructor(roomId: string, user: User, options: RoomConnectionOptions = {}) {
		this.roomId = roomId;
		this.user = user;
		this.#background = options.background ?? false;
		this.durable = readDurableClocks(user.id, roomId);
		this.#generation = readRoomGeneration(user.id, roomId);
		this.#openDocument(0);
		openConnections.add(this);
	}

	/** Where the relay link stands (see ConnectionStatus). */
	get status(): ConnectionStatus {
		return this.#relay?.status ?? 'connecting';
	}

	/** True while the document is in sync with the relay (not while moving to a new epoch). */
	get synced(): boolean {
		return this.#move === null && (this.#relay?.synced ?? false);
	}

	/** Why the connection stopped for good, or null. */
	get stopped(): StopReason | null {
		return this.#relay?.stopped ?? null;
	}

	/** The relay's last refusal of an update from this device. */
	get rejection(): Rejection | null {
		return this.#relay?.rejection ?? null;
	}

	/** When the next attempt is due (ms since the epoch) while reconnecting or offline. */
	get nextRetryAt(): number | null {
		return this.#relay?.nextRetryAt ?? null;
	}

	/** Tries the relay now instead of waiting for the next scheduled attempt. */
	retryNow(): void {
		this.#relay?.retryNow();
	}

	/** Resolves the next time the document is in sync with the relay (at once if it is). */
	whenSynced(): Promise<void> {
		if (this.synced || this.#destroyed) return Promise.resolve();
		return new Promise((resolve) => this.#syncWaiters.push(resolve));
	}

	/** The status of each of the viewer's own messages, given the room's other members. */
	statuses(recipientIds: readonly string[]): Map<string, MessageStatus> {
		return ownMessageStatuses(this.#receiptInputs(recipientIds), this.user.id);
	}

	/** The status of the viewer's own messages that were compacted out of the live log. */
	compactedStatus(recipientIds: readonly string[]): MessageStatus {
		return compactedMessageStatus(this.#receiptInputs(recipientIds));
	}

	/** Per other member: whether a device of theirs has `messageId` and whether they read it. */
	receipts(messageId: string, recipientIds: readonly string[]): MemberReceipt[] {
		return memberReceipts(this.#receiptInputs(recipientIds), messageId);
	}

	/** True when everything this tab wrote has been durably stored by the relay. */
	get localWritesDurable(): boolean {
		return this.#move === null && this.#writtenClock <= (this.durable.get(this.#doc.clientID) ?? 0);
	}

	/** Appends a text message; works offline (it waits in the document). Null for blank text. */
	send(text: string): ChatMessage | null {
		const body = text.trim();
		if (this.#destroyed || this.stopped || body.length === 0 || body.length > MESSAGE_TEXT_MAX_CHARS) return null;
		const message: ChatMessage = { id: newMessageId(), author: this.user.id, ts: Date.now(), kind: 'text', text: body };
		if (this.#move) {
			// The new epoch's document is not synced yet: append it there with the carried ones.
			this.#move.carried.push(message);
			this.messages = [...this.messages, message];
		} else {
			this.#doc.transact(() => this.#log.push([message]));
		}
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
		if (this.#destroyed || this.#move) return;
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
		this.#closeDocument();
		for (const resolve of this.#syncWaiters.splice(0)) resolve();
	}

	/** Opens the document of the current generation: device copy, other tabs, relay, awareness. */
	#openDocument(firstAttemptDelayMs: number): void {
		const doc = new Y.Doc();
		this.#doc = doc;
		this.#localClients.add(doc.clientID);
		this.#writtenClock = 0;
		this.#log = doc.getArray(MESSAGES_KEY);
		this.#readsMap = doc.getMap(READS_KEY);
		this.#deliveredMap = doc.getMap(DELIVERED_KEY);
		this.#awareness = new Awareness(doc);
		if (this.#background) this.#awareness.setLocalState(null);
		else this.#awareness.setLocalState({ user: { id: this.user.id, name: this.user.displayName }, typing: false });

		this.#log.observe(this.#onLogChange);
		this.#readsMap.observe(this.#onReadsChange);
		this.#deliveredMap.observe(this.#onDeliveredChange);
		this.#awareness.on('change', this.#onAwarenessChange);
		doc.on('afterTransaction', this.#onAfterTransaction);

		const databaseName = roomDatabaseName(this.user.id, this.roomId, this.#generation);
		registerRoomDatabase(this.user.id, databaseName);
		const persistence = new IndexeddbPersistence(databaseName, doc);
		this.#persistence = persistence;
		persistence.on('synced', () => {
			if (!this.#destroyed && persistence === this.#persistence) this.loaded = true;
		});
		this.#tabs = new TabChannel(this.user.id, this.roomId, doc, persistence, this.#generation);
		const relay: RelayLink = new RelayLink(
			this.roomId,
			doc,
			this.#awareness,
			{
				onDurable: (clocks) => {
					if (relay === this.#relay) this.#onDurable(clocks);
				},
				onSynced: () => {
					if (relay !== this.#relay) return;
					if (this.#move) this.#finishMove();
					this.loaded = true;
					this.#scheduleDeliveredMark();
					for (const resolve of this.#syncWaiters.splice(0)) resolve();
				},
				onRoomMoved: () => {
					if (relay === this.#relay) this.#moveToNewEpoch();
				}
			},
			{ firstAttemptDelayMs }
		);
		this.#relay = relay;
	}

	#closeDocument(): void {
		this.#relay?.destroy();
		this.#tabs.close();
		this.#awareness.destroy();
		void this.#persistence.destroy();
		this.#doc.destroy();
	}

	/**
	 * Close code 4410: the room's live document rolled over to a new epoch. The device's copy of
	 * the old one is discarded; a new, empty document syncs from a fresh descriptor; the viewer's
	 * messages the relay never confirmed are appended to it after its first sync unless it already
	 * holds them (the relay carried what arrived before the close). Until then the old log stays
	 * on screen. Tabs of the account follow the generation the first of them made.
	 */
	#moveToNewEpoch(): void {
		if (this.#destroyed) return;
		const carried = unconfirmedOwnMessages(this.messages, this.user.id, this.#itemIds, this.durable);
		const previous = this.#move;
		this.#move = {
			carried: previous ? messagesToCarry([...previous.carried, ...carried], []) : carried,
			previous: previous ? previous.previous : this.messages,
			oldDatabases: [...(previous?.oldDatabases ?? []), roomDatabaseName(this.user.id, this.roomId, this.#generation)],
			attempts: (previous?.attempts ?? 0) + 1
		};
		this.#closeDocument();
		const stored = readRoomGeneration(this.user.id, this.roomId);
		this.#generation = stored !== this.#generation ? stored : newGeneration();
		const attempts = this.#move.attempts;
		this.#openDocument(attempts >= MOVES_BEFORE_BACKOFF ? reconnectDelayMs(attempts - MOVES_BEFORE_BACKOFF + 1) : 0);
	}

	/** The new epoch's document is in sync: carry the viewer's messages over, forget the old copy. */
	#finishMove(): void {
		const move = this.#move;
		if (!move) return;
		this.#move = null;
		const live = readLiveLog(this.#log);
		const toCarry = messagesToCarry(move.carried, live);
		const carriedIds = new Set(move.carried.map((m) => m.id));
		const compacted = compactedPrefix(move.previous, live, (m) => carriedIds.has(m.id), (m) => carriedIds.has(m.id) || this.#isOwnPending(m));
		if (compacted.messages.length > 0) this.onCompacted?.(compacted);
		if (toCarry.length > 0) this.#doc.transact(() => this.#log.push(toCarry));
		this.messages = readLiveLog(this.#log);
		writeJson(roomGenerationKey(this.user.id, this.roomId), this.#generation);
		for (const name of move.oldDatabases) {
			if (name !== roomDatabaseName(this.user.id, this.roomId, this.#generation)) void forgetRoomDatabase(this.user.id, name);
		}
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
		// Moving to a new epoch: the old log stays on screen until the new document is synced.
		if (this.#move) return;
		const next = readLiveLog(this.#log);
		if (event.changes.deleted.size > 0) {
			const compacted = compactedPrefix(this.messages, next, (m) => this.#isUnconfirmedOwn(m), (m) => this.#isOwnPending(m));
			if (compacted.messages.length > 0) this.onCompacted?.(compacted);
		}
		this.messages = next;
		this.#scheduleDeliveredMark();
	};

	/**
	 * A message this tab wrote that the relay has not confirmed: the only kind whose removal can
	 * undo a refused update (refused updates reach no other document) rather than compact it.
	 */
	#isUnconfirmedOwn(message: ChatMessage): boolean {
		if (message.author !== this.user.id) return false;
		const item = this.#itemIds.get(message.id);
		return item !== undefined && this.#localClients.has(item.client) && !isDurable(item, this.durable);
	}

	/** The viewer's message no `durable` frame has covered yet, whichever session wrote it. */
	#isOwnPending(message: ChatMessage): boolean {
		return isOwnPending(message, this.user.id, this.#itemIds, this.durable);
	}

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
