/**
 * A protocol-level chat client that behaves as the web app does towards the relay: it opts into
 * the extensions, keeps its own messages until a `durable` frame covers them, can go offline and
 * write meanwhile, and on close code 4410 (the room rolled over) starts a fresh document and
 * appends again whatever of its own the relay never acknowledged — unless it is already there, in
 * which case the `durable` clocks covering the item that holds it acknowledge it.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import { CloseCode, MessageType } from '../../sync-server/protocol';
import type { ChatMessage } from '../../src/lib/shared/schema';

const LOCAL = 'local';

export class ChatClient {
	doc = new Y.Doc();
	readonly userId: string;
	/** Every message this client wrote, by id. */
	readonly written = new Map<string, ChatMessage>();
	/** Ids of its messages the relay acknowledged as durable. */
	readonly acked = new Set<string>();
	readonly closeCodes: number[] = [];
	readonly rejections: string[] = [];
	/**
	 * Own messages that were not acknowledged when a 4410 came, yet turned up in the next
	 * epoch's document in an item not of this client (the relay had taken them in the old one).
	 * The relay acknowledges what it took before it tells a socket to move, so this stays empty.
	 */
	readonly takenUnacknowledged = new Set<string>();
	/** Own messages unacknowledged at the last 4410. */
	#unackedAtMove = new Set<string>();
	/** Where each own message sits in the current document: id → [client, clock]. */
	#positions = new Map<string, [number, number]>();
	/** What the relay said is committed: client id → clock, merged over every frame. */
	#durable = new Map<number, number>();
	#ws: WebSocket | null = null;
	#synced = false;
	#online = false;
	readonly #url: () => string;
	#reconnect: NodeJS.Timeout | null = null;

	constructor(userId: string, url: () => string) {
		this.userId = userId;
		this.#url = url;
		this.#watch();
	}

	/** Whether it is meant to be online (it may still be connecting). */
	get wantsOnline(): boolean {
		return this.#online;
	}

	get connected(): boolean {
		return this.#ws?.readyState === WebSocket.OPEN && this.#synced;
	}

	/** The live document's messages, in its order. */
	messages(): ChatMessage[] {
		return this.doc.getArray<ChatMessage>('messages').toArray();
	}

	send(text: string): ChatMessage {
		const message: ChatMessage = { id: ulid(), author: this.userId, ts: Date.now(), kind: 'text', text };
		this.written.set(message.id, message);
		this.#append([message]);
		return message;
	}

	online(): void {
		this.#online = true;
		this.#open();
	}

	/** Drops the socket and stops reconnecting; writes stay in the document until online(). */
	offline(): void {
		this.#online = false;
		if (this.#reconnect) clearTimeout(this.#reconnect);
		this.#reconnect = null;
		this.#ws?.terminate();
		this.#ws = null;
		this.#synced = false;
	}

	destroy(): void {
		this.offline();
		this.doc.destroy();
	}

	#append(messages: ChatMessage[]): void {
		const array = this.doc.getArray<ChatMessage>('messages');
		// The observer in #watch records where they sit.
		this.doc.transact(() => array.push(messages), LOCAL);
	}

	#watch(): void {
		this.doc.on('update', (update: Uint8Array, origin: unknown) => {
			if (origin === LOCAL && this.connected) this.#sendUpdate(update);
		});
		// Own messages may also arrive in items another client wrote: after a rollover the relay
		// seeds the new document with what it committed, own messages included. The `durable`
		// clocks then cover them under the relay's client id, as the web app reads them.
		this.doc.getArray<ChatMessage>('messages').observe((event) => {
			for (const item of event.changes.added) {
				if (!(item.content instanceof Y.ContentAny)) continue;
				item.content.arr.forEach((value: ChatMessage, offset: number) => {
					if (!this.written.has(value.id)) return;
					this.#positions.set(value.id, [item.id.client, item.id.clock + offset]);
					if (item.id.client !== this.doc.clientID && this.#unackedAtMove.has(value.id)) this.takenUnacknowledged.add(value.id);
				});
			}
			// The acknowledgement may have come before the messages it covers.
			this.#credit();
		});
	}

	#sendUpdate(update: Uint8Array): void {
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.sync);
		syncProtocol.writeUpdate(encoder, update);
		this.#ws?.send(encoding.toUint8Array(encoder));
	}

	#open(): void {
		if (!this.#online || this.#ws) return;
		const ws = new WebSocket(`${this.#url()}&ext=1`);
		this.#ws = ws;
		this.#synced = false;
		ws.binaryType = 'nodebuffer';
		ws.on('open', () => {
			const encoder = encoding.createEncoder();
			encoding.writeVarUint(encoder, MessageType.sync);
			syncProtocol.writeSyncStep1(encoder, this.doc);
			ws.send(encoding.toUint8Array(encoder));
		});
		ws.on('message', (data: Buffer) => {
			if (this.#ws === ws) this.#onFrame(ws, new Uint8Array(data));
		});
		ws.on('error', () => undefined);
		ws.on('close', (code) => {
			if (this.#ws !== ws) return;
			this.#ws = null;
			this.#synced = false;
			this.closeCodes.push(code);
			if (code === CloseCode.roomMoved) this.#startOver();
			if (!this.#online || code === CloseCode.forbidden || code === CloseCode.roomDeleted || code === CloseCode.unauthorized) return;
			this.#reconnect = setTimeout(() => {
				this.#reconnect = null;
				this.#open();
			}, 20 + Math.random() * 80);
		});
	}

	/** The room rolled over: a new, empty document; unacknowledged own messages are kept aside. */
	#startOver(): void {
		this.#unackedAtMove = new Set([...this.written.keys()].filter((id) => !this.acked.has(id)));
		this.doc.destroy();
		this.doc = new Y.Doc();
		this.#positions = new Map();
		this.#watch();
	}

	/** After a sync: own messages never acknowledged and missing from the document go in again. */
	#appendMissing(): void {
		const present = new Set(this.messages().map((m) => m.id));
		const missing = [...this.written.values()].filter((m) => !this.acked.has(m.id) && !present.has(m.id) && !this.#positions.has(m.id));
		if (missing.length > 0) this.#append(missing);
	}

	/** Own messages whose item the relay's `durable` clocks cover are acknowledged. */
	#credit(): void {
		for (const [id, [client, clock]] of this.#positions) {
			if (clock < (this.#durable.get(client) ?? 0)) this.acked.add(id);
		}
	}

	#onFrame(ws: WebSocket, frame: Uint8Array): void {
		const decoder = decoding.createDecoder(frame);
		const type = decoding.readVarUint(decoder);
		if (type === MessageType.sync) {
			const encoder = encoding.createEncoder();
			encoding.writeVarUint(encoder, MessageType.sync);
			const syncType = syncProtocol.readSyncMessage(decoder, encoder, this.doc, 'relay');
			if (encoding.length(encoder) > 1) ws.send(encoding.toUint8Array(encoder));
			if (syncType === syncProtocol.messageYjsSyncStep2 && !this.#synced) {
				this.#synced = true;
				this.#appendMissing();
			}
		} else if (type === MessageType.durable) {
			for (let n = decoding.readVarUint(decoder); n > 0; n--) {
				const client = decoding.readVarUint(decoder);
				const clock = decoding.readVarUint(decoder);
				if (clock > (this.#durable.get(client) ?? 0)) this.#durable.set(client, clock);
			}
			this.#credit();
		} else if (type === MessageType.rejected) {
			this.rejections.push(decoding.readVarString(decoder));
		}
	}
}
