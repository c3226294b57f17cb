/**
 * Live sync of one room's document between tabs of the same account, with or without a network.
 *
 * y-websocket's own BroadcastChannel is named after the relay URL and room only, so two accounts
 * signed in on one browser (one after the other, or a stale tab) would exchange documents through
 * it; it is disabled and this channel, named with the account id and the room id, takes over.
 *
 * Tabs of an account share one IndexedDB database per room (y-indexeddb appends every update, so
 * concurrent writers do not overwrite each other), but a tab reads that database only when it
 * opens the room. The channel carries what a tab writes itself (`transaction.local`); updates from
 * the relay reach every tab over its own socket. On opening, a tab sends its state vector and the
 * others answer with what it lacks, which covers the moment between reading IndexedDB and
 * subscribing. Updates received here are applied with the database as their origin: the tab that
 * wrote them already stored them, so y-indexeddb does not store them twice.
 */
import * as Y from 'yjs';

type TabMessage = { type: 'hello'; stateVector: Uint8Array } | { type: 'update'; update: Uint8Array };

function isTabMessage(value: unknown): value is TabMessage {
	if (typeof value !== 'object' || value === null) return false;
	const m = value as Record<string, unknown>;
	return (m.type === 'hello' && m.stateVector instanceof Uint8Array) || (m.type === 'update' && m.update instanceof Uint8Array);
}

/** Scoped to the document's generation too: tabs on different epochs of a room must not mix. */
export function tabChannelName(userId: string, roomId: string, generation = ''): string {
	return generation ? `tunnel:${userId}:room:${roomId}~${generation}` : `tunnel:${userId}:room:${roomId}`;
}

export class TabChannel {
	readonly #doc: Y.Doc;
	readonly #channel: BroadcastChannel | null;
	/** Origin of applied updates: y-indexeddb skips updates whose origin is its own instance. */
	readonly #applyOrigin: unknown;
	#closed = false;

	constructor(userId: string, roomId: string, doc: Y.Doc, applyOrigin: unknown, generation = '') {
		this.#doc = doc;
		this.#applyOrigin = applyOrigin;
		this.#channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(tabChannelName(userId, roomId, generation));
		if (!this.#channel) return;
		this.#channel.onmessage = (event: MessageEvent<unknown>) => this.#receive(event.data);
		doc.on('update', this.#onDocUpdate);
		this.#post({ type: 'hello', stateVector: Y.encodeStateVector(doc) });
	}

	/** Stops listening and posting; safe to call twice. */
	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#doc.off('update', this.#onDocUpdate);
		this.#channel?.close();
	}

	#post(message: TabMessage): void {
		if (!this.#closed) this.#channel?.postMessage(message);
	}

	#receive(data: unknown): void {
		if (this.#closed || !isTabMessage(data)) return;
		if (data.type === 'hello') {
			const missing = Y.encodeStateAsUpdate(this.#doc, data.stateVector);
			// An update with no structs and no deletions is two zero bytes.
			if (missing.length > 2) this.#post({ type: 'update', update: missing });
			return;
		}
		try {
			Y.applyUpdate(this.#doc, data.update, this.#applyOrigin);
		} catch (error) {
			// Only this account's own tabs post here; a broken update is a bug, not an attack.
			console.error('Ignoring an update from another tab that could not be applied', error);
		}
	}

	readonly #onDocUpdate = (update: Uint8Array, _origin: unknown, _doc: Y.Doc, transaction: Y.Transaction): void => {
		if (transaction.local) this.#post({ type: 'update', update });
	};
}
