/**
 * One room's live connection in the browser: the Yjs document, its copy on the device
 * (IndexedDB, so the room opens before the network answers) and the relay connection
 * (y-websocket), with awareness for presence and typing. Create one per room and `destroy()` it
 * when the room is left; the fields below are Svelte state, so components read them directly.
 */
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { IndexeddbPersistence } from 'y-indexeddb';
import { Awareness } from 'y-protocols/awareness';
import { ulid } from 'ulid';
import { getSyncDescriptor, ApiError } from './api';
import { MESSAGES_KEY, READS_KEY, MESSAGE_TEXT_MAX_CHARS, isChatMessage, type ChatMessage } from '$lib/shared/schema';
import type { SyncDescriptor, User } from '$lib/shared/api-types';

export type ConnectionStatus = 'connecting' | 'online' | 'offline';
export type MessageStatus = 'pending' | 'sent';
/** Why a connection stopped for good: the member was removed, or the session ended. */
export type RoomEndReason = 'removed' | 'signed_out';

export interface PresentUser {
	id: string;
	name: string;
}

interface AwarenessState {
	user?: { id?: unknown; name?: unknown };
	typing?: unknown;
}

/** First retry after about this long; doubles per failed attempt, with jitter. */
const RECONNECT_BASE_MS = 500;
/** Longest wait between attempts, so a relay restart is no stampede yet recovery stays quick. */
const RECONNECT_MAX_MS = 20_000;
/** "Typing" ends this long after the last keystroke. */
const TYPING_IDLE_MS = 3_000;

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

export function roomDatabaseName(userId: string, roomId: string): string {
	return `chat:${userId}:${roomId}`;
}

export class RoomConnection {
	/** The room's live log, in the document's order (the same everywhere). */
	messages = $state.raw<ChatMessage[]>([]);
	status = $state<ConnectionStatus>('connecting');
	/** True while the document is in sync with the relay. */
	synced = $state(false);
	/** True once the device's copy (or the relay) has been loaded: an empty log now means an empty room. */
	loaded = $state(false);
	/** Other people typing right now. */
	typingUsers = $state.raw<PresentUser[]>([]);
	/** Users with an open connection to this room (from awareness), the viewer's other tabs included. */
	presentUserIds = $state.raw<ReadonlySet<string>>(new Set());
	/** The viewer's read pointer (`reads[me]`), or null. */
	myReadId = $state<string | null>(null);
	/** Set when the connection stopped for good. */
	ended = $state<RoomEndReason | null>(null);

	readonly roomId: string;
	readonly user: User;

	/** Own messages first seen while not in sync with the relay: the "local-only marker". */
	#pendingIds = $state.raw<ReadonlySet<string>>(new Set());
	#doc = new Y.Doc();
	#log: Y.Array<unknown>;
	#reads: Y.Map<unknown>;
	#awareness: Awareness;
	#persistence: IndexeddbPersistence;
	#provider: WebsocketProvider | null = null;
	#failedAttempts = 0;
	#reconnectTimer: ReturnType<typeof setTimeout> | null = null;
	#typingTimer: ReturnType<typeof setTimeout> | null = null;
	#destroyed = false;

	constructor(roomId: string, user: User) {
		this.roomId = roomId;
		this.user = user;
		this.#log = this.#doc.getArray(MESSAGES_KEY);
		this.#reads = this.#doc.getMap(READS_KEY);
		this.#awareness = new Awareness(this.#doc);
		this.#awareness.setLocalState({ user: { id: user.id, name: user.displayName }, typing: false });

		this.#log.observe(this.#onLogChange);
		this.#reads.observe(this.#onReadsChange);
		this.#awareness.on('change', this.#onAwarenessChange);

		this.#persistence = new IndexeddbPersistence(roomDatabaseName(user.id, roomId), this.#doc);
		this.#persistence.on('synced', () => {
			if (!this.#destroyed) this.loaded = true;
		});
		window.addEventListener('online', this.#onBrowserOnline);
		void this.#connect();
	}

	/**
	 * Whether the viewer's own message has reached the relay. Approximation until the relay sends
	 * acknowledgements: a message is "sent" unless it was first seen while the document was not in
	 * sync with the relay; such messages become "sent" when the next sync completes. Null for
	 * other people's messages.
	 */
	messageStatus(message: ChatMessage): MessageStatus | null {
		if (message.author !== this.user.id) return null;
		return this.#pendingIds.has(message.id) ? 'pending' : 'sent';
	}

	/** Appends a text message; works offline (it waits in the document). Null for blank text. */
	send(text: string): ChatMessage | null {
		const body = text.trim();
		if (this.#destroyed || this.ended || body.length === 0 || body.length > MESSAGE_TEXT_MAX_CHARS) return null;
		const message: ChatMessage = { id: ulid(), author: this.user.id, ts: Date.now(), kind: 'text', text: body };
		this.#doc.transact(() => this.#log.push([message]));
		this.setTyping(false);
		return message;
	}

	/** Announces typing; it ends by itself after a few idle seconds. */
	setTyping(typing: boolean): void {
		if (this.#destroyed) return;
		if (this.#typingTimer) clearTimeout(this.#typingTimer);
		this.#typingTimer = typing ? setTimeout(() => this.setTyping(false), TYPING_IDLE_MS) : null;
		const current = (this.#awareness.getLocalState() as AwarenessState | null)?.typing === true;
		if (current !== typing) this.#awareness.setLocalStateField('typing', typing);
	}

	/** Moves the viewer's read pointer forward to `messageId`; never backwards. */
	markRead(messageId: string): void {
		if (this.#destroyed) return;
		const current = this.#reads.get(this.user.id);
		if (current === messageId) return;
		if (typeof current === 'string' && !this.#isAfter(messageId, current)) return;
		this.#doc.transact(() => this.#reads.set(this.user.id, messageId));
	}

	/** Stops syncing and frees everything; safe to call twice. The device keeps its copy. */
	destroy(): void {
		if (this.#destroyed) return;
		this.#destroyed = true;
		window.removeEventListener('online', this.#onBrowserOnline);
		if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
		if (this.#typingTimer) clearTimeout(this.#typingTimer);
		this.#dropProvider();
		this.#awareness.destroy();
		void this.#persistence.destroy();
		this.#doc.destroy();
	}

	/** Fetches a fresh descriptor (new token, membership re-checked), then connects. */
	async #connect(): Promise<void> {
		if (this.#destroyed || this.ended) return;
		let descriptor: SyncDescriptor;
		try {
			descriptor = await getSyncDescriptor(this.roomId);
		} catch (error) {
			if (this.#destroyed) return;
			if (error instanceof ApiError && error.status === 404) return this.#end('removed');
			if (error instanceof ApiError && error.status === 401) return this.#end('signed_out');
			this.status = 'offline';
			this.#scheduleReconnect();
			return;
		}
		if (this.#destroyed || this.ended) return;
		const provider = this.#providerFor(descriptor);
		provider.params = descriptor.params;
		provider.connect();
	}

	#providerFor(descriptor: SyncDescriptor): WebsocketProvider {
		const existing = this.#provider;
		if (existing && existing.serverUrl === descriptor.serverUrl.replace(/\/+$/, '') && existing.roomname === descriptor.room) {
			return existing;
		}
		this.#dropProvider();
		const provider = new WebsocketProvider(descriptor.serverUrl, descriptor.room, this.#doc, {
			connect: false,
			awareness: this.#awareness,
			params: descriptor.params,
			maxBackoffTime: RECONNECT_MAX_MS
		});
		provider.on('status', ({ status }) => {
			if (provider !== this.#provider) return;
			if (status === 'connected') this.status = 'online';
			else if (status === 'disconnected') this.status = 'offline';
		});
		provider.on('sync', (isSynced: boolean) => {
			if (provider !== this.#provider) return;
			this.synced = isSynced;
			if (!isSynced) return;
			this.loaded = true;
			this.#failedAttempts = 0;
			// The sync exchange carried everything written while away.
			if (this.#pendingIds.size > 0) this.#pendingIds = new Set();
		});
		provider.on('connection-close', () => {
			if (provider !== this.#provider) return;
			// Take reconnecting over from y-websocket: the token may have expired or the member
			// may have been removed, so every retry starts with a fresh descriptor.
			provider.shouldConnect = false;
			this.status = 'offline';
			this.synced = false;
			this.#scheduleReconnect();
		});
		this.#provider = provider;
		return provider;
	}

	#scheduleReconnect(): void {
		if (this.#destroyed || this.ended || this.#reconnectTimer) return;
		this.#failedAttempts += 1;
		const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.#failedAttempts);
		// "Equal jitter": half fixed, half random, so clients of a restarted relay spread out.
		const delay = ceiling / 2 + Math.random() * (ceiling / 2);
		this.#reconnectTimer = setTimeout(() => {
			this.#reconnectTimer = null;
			void this.#connect();
		}, delay);
	}

	#end(reason: RoomEndReason): void {
		this.ended = reason;
		this.status = 'offline';
		this.synced = false;
		this.#dropProvider();
	}

	/** Detaches before destroying, so the provider's own close events start no reconnect. */
	#dropProvider(): void {
		const provider = this.#provider;
		this.#provider = null;
		provider?.destroy();
	}

	#onBrowserOnline = (): void => {
		if (this.#destroyed || this.ended || this.status === 'online' || !this.#reconnectTimer) return;
		clearTimeout(this.#reconnectTimer);
		this.#reconnectTimer = null;
		this.#failedAttempts = 0;
		void this.#connect();
	};

	#onLogChange = (event: Y.YArrayEvent<unknown>): void => {
		const inSync = this.#provider !== null && this.#provider.synced && this.#provider.wsconnected;
		if (!inSync) {
			const pending = new Set(this.#pendingIds);
			for (const change of event.changes.delta) {
				for (const item of change.insert ?? []) {
					if (isChatMessage(item, Number.MAX_SAFE_INTEGER) && item.author === this.user.id) pending.add(item.id);
				}
			}
			if (pending.size !== this.#pendingIds.size) this.#pendingIds = pending;
		}
		this.messages = this.#log.toArray().filter((m): m is ChatMessage => isChatMessage(m, Number.MAX_SAFE_INTEGER));
	};

	#onReadsChange = (): void => {
		const mine = this.#reads.get(this.user.id);
		this.myReadId = typeof mine === 'string' ? mine : null;
	};

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
