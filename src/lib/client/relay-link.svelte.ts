/**
 * A room document's link to the relay: y-websocket with the relay's extensions (`ext=1`), a fresh
 * sync descriptor before every attempt, exponential backoff with jitter, immediate retries when
 * the network or the tab comes back, and terminal close codes that stop it for good
 * (docs/architecture.md, "Hard problem 4"). Its fields are Svelte state.
 */
import type * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import { WebsocketProvider } from 'y-websocket';
import type { Awareness } from 'y-protocols/awareness';
import { getSyncDescriptor, isRoomDeleted, ApiError } from './api';
import { reconnectDelayMs } from './reconnect-policy';
import {
	RELAY_EXTENSIONS_PARAMS,
	RELAY_RESYNC_REJECTIONS,
	RelayCloseCode,
	RelayMessageType,
	readDurableFrame,
	readRejectedFrame,
	stopReasonForClose,
	type Rejection,
	type StopReason
} from './relay-protocol';
import type { SyncDescriptor } from '$lib/shared/api-types';

/**
 * `connecting`: first attempt; `online`: socket open; `reconnecting`: retrying after a failure
 * while the browser has a network; `offline`: the browser has none; `stopped`: a terminal close
 * (see `stopped`), no more retries.
 */
export type ConnectionStatus = 'connecting' | 'online' | 'reconnecting' | 'offline' | 'stopped';

export interface RelayLinkEvents {
	/** A `durable` frame: client id → next clock PostgreSQL holds for the room. */
	onDurable(clocks: Map<number, number>): void;
	/** The document is in sync with the relay (after each (re)connect). */
	onSynced(): void;
	/**
	 * The relay closed the socket with 4410 (the room's live document rolled over to a new epoch
	 * and this document belongs to an older one) or 4409 (this document holds others' writes the
	 * relay lost). The link has stopped; the room connection replaces the document (and the link).
	 */
	onRoomMoved(): void;
}

export interface RelayLinkOptions {
	/** Wait this long before the first attempt (a room that keeps moving is retried with backoff). */
	firstAttemptDelayMs?: number;
}

/** y-websocket's message type for sync (step 1, step 2, update). */
const MESSAGE_SYNC = 0;

export class RelayLink {
	status = $state<ConnectionStatus>('connecting');
	/** When the next attempt is due (ms since the epoch) while reconnecting or offline. */
	nextRetryAt = $state<number | null>(null);
	/** True while the document is in sync with the relay. */
	synced = $state(false);
	/** Why the link stopped for good, or null. */
	stopped = $state<StopReason | null>(null);
	/** The relay's last refusal of an update from this device (it stays connected). */
	rejection = $state<Rejection | null>(null);

	readonly #roomId: string;
	readonly #doc: Y.Doc;
	readonly #awareness: Awareness;
	readonly #events: RelayLinkEvents;
	#provider: WebsocketProvider | null = null;
	#fetchingDescriptor = false;
	#failedAttempts = 0;
	#reconnectTimer: ReturnType<typeof setTimeout> | null = null;
	#destroyed = false;

	constructor(roomId: string, doc: Y.Doc, awareness: Awareness, events: RelayLinkEvents, options: RelayLinkOptions = {}) {
		this.#roomId = roomId;
		this.#doc = doc;
		this.#awareness = awareness;
		this.#events = events;
		if (!navigator.onLine) this.status = 'offline';
		window.addEventListener('online', this.#onBrowserOnline);
		window.addEventListener('offline', this.#onBrowserOffline);
		document.addEventListener('visibilitychange', this.#onVisibilityChange);
		const delay = options.firstAttemptDelayMs ?? 0;
		if (delay <= 0) {
			void this.#connect();
			return;
		}
		this.status = navigator.onLine ? 'reconnecting' : 'offline';
		this.#connectAfter(delay);
	}

	/** Connects once `delay` ms have passed, showing when the attempt is due. */
	#connectAfter(delay: number): void {
		this.nextRetryAt = Date.now() + delay;
		this.#reconnectTimer = setTimeout(() => {
			this.#reconnectTimer = null;
			this.nextRetryAt = null;
			void this.#connect();
		}, delay);
	}

	/** Tries the relay now instead of waiting for the next scheduled attempt. */
	retryNow(): void {
		if (this.#destroyed || this.stopped || this.#fetchingDescriptor || !this.#reconnectTimer) return;
		clearTimeout(this.#reconnectTimer);
		this.#reconnectTimer = null;
		this.nextRetryAt = null;
		this.#failedAttempts = 0;
		void this.#connect();
	}

	/** Closes the socket and stops retrying; safe to call twice. */
	destroy(): void {
		if (this.#destroyed) return;
		this.#destroyed = true;
		window.removeEventListener('online', this.#onBrowserOnline);
		window.removeEventListener('offline', this.#onBrowserOffline);
		document.removeEventListener('visibilitychange', this.#onVisibilityChange);
		if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
		this.#dropProvider();
	}

	/** Fetches a fresh descriptor (new token, membership re-checked), then connects. */
	async #connect(): Promise<void> {
		if (this.#destroyed || this.stopped) return;
		let descriptor: SyncDescriptor;
		this.#fetchingDescriptor = true;
		try {
			descriptor = await getSyncDescriptor(this.#roomId);
		} catch (error) {
			if (this.#destroyed) return;
			// A refused upgrade is invisible to a browser; the descriptor endpoint says why.
			// A group deleted while this device was away (it never heard the 4404 close).
			if (isRoomDeleted(error)) return this.#stop('deleted');
			if (error instanceof ApiError && error.status === 404) return this.#stop('removed');
			if (error instanceof ApiError && error.status === 401) return this.#stop('signed_out');
			if (!(error instanceof ApiError && error.isNetwork)) console.error('Could not get the sync descriptor', error);
			this.#scheduleReconnect();
			return;
		} finally {
			this.#fetchingDescriptor = false;
		}
		if (this.#destroyed || this.stopped) return;
		const provider = this.#providerFor(descriptor);
		provider.params = { ...descriptor.params, ...RELAY_EXTENSIONS_PARAMS };
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
			params: { ...descriptor.params, ...RELAY_EXTENSIONS_PARAMS },
			// Tabs talk over TabChannel, scoped to the account (y-websocket's is not).
			disableBc: true
		});
		provider.messageHandlers[RelayMessageType.durable] = (_encoder, decoder) => {
			if (provider === this.#provider) this.#events.onDurable(readDurableFrame(decoder));
		};
		provider.messageHandlers[RelayMessageType.rejected] = (_encoder, decoder) => {
			if (provider !== this.#provider) return;
			const rejection = readRejectedFrame(decoder);
			console.warn(`The relay refused an update: ${rejection.code} (${rejection.detail})`);
			// Refused for now, not for what it holds (rate-limited, or ahead of what it builds on):
			// reconnecting makes the relay ask for everything it lacks, in one update.
			if (RELAY_RESYNC_REJECTIONS.has(rejection.code)) provider.disconnect();
			else this.rejection = rejection;
		};
		provider.on('status', ({ status }) => {
			if (provider !== this.#provider || status !== 'connected') return;
			this.status = 'online';
			this.nextRetryAt = null;
		});
		provider.on('sync', (isSynced: boolean) => {
			if (provider !== this.#provider) return;
			this.synced = isSynced;
			if (!isSynced) return;
			this.#failedAttempts = 0;
			this.#events.onSynced();
		});
		provider.on('connection-close', (event) => {
			if (provider !== this.#provider) return;
			// Take reconnecting over from y-websocket: the token may have expired or the member
			// may have been removed, so every retry starts with a fresh descriptor.
			provider.shouldConnect = false;
			this.synced = false;
			// 4410 (a new epoch) and 4409 (the copy holds writes the relay lost) both mean: start
			// over on a fresh document, carrying the viewer's unconfirmed messages.
			if (event?.code === RelayCloseCode.roomMoved || event?.code === RelayCloseCode.resync) {
				this.status = 'connecting';
				queueMicrotask(() => {
					if (this.#destroyed || this.stopped) return;
					this.#dropProvider();
					this.#events.onRoomMoved();
				});
				return;
			}
			const stop = event ? stopReasonForClose(event.code) : null;
			// Not synchronously: y-websocket is still inside its close handling.
			if (stop) queueMicrotask(() => this.#stop(stop));
			else this.#scheduleReconnect();
		});
		this.#provider = provider;
		return provider;
	}

	#scheduleReconnect(): void {
		this.status = navigator.onLine ? 'reconnecting' : 'offline';
		if (this.#destroyed || this.stopped || this.#reconnectTimer) return;
		this.#failedAttempts += 1;
		this.#connectAfter(reconnectDelayMs(this.#failedAttempts));
	}

	#stop(reason: StopReason): void {
		if (this.#destroyed) return;
		this.stopped = reason;
		this.status = 'stopped';
		this.nextRetryAt = null;
		this.synced = false;
		if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
		this.#reconnectTimer = null;
		this.#dropProvider();
	}

	/** Detaches before destroying, so the provider's own close events start no reconnect. */
	#dropProvider(): void {
		const provider = this.#provider;
		this.#provider = null;
		provider?.destroy();
	}

	#onBrowserOnline = (): void => this.retryNow();

	/** The socket is dead with the network; say so now rather than after the keepalive gives up. */
	#onBrowserOffline = (): void => {
		if (this.#destroyed || this.stopped) return;
		if (this.#provider?.ws) this.#provider.disconnect();
		else this.status = 'offline';
	};

	/** Back in view: retry at once, or, if connected, ask for whatever this tab missed while hidden. */
	#onVisibilityChange = (): void => {
		if (document.visibilityState !== 'visible' || this.#destroyed || this.stopped) return;
		const provider = this.#provider;
		if (provider?.ws && provider.wsconnected) this.#resync(provider);
		else this.retryNow();
	};

	/** Sends sync step 1 again: the relay answers with the updates this document lacks. */
	#resync(provider: WebsocketProvider): void {
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MESSAGE_SYNC);
		syncProtocol.writeSyncStep1(encoder, this.#doc);
		provider.ws?.send(encoding.toUint8Array(encoder));
	}
}
