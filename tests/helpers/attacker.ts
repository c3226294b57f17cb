/**
 * A raw y-websocket client for attack tests: it speaks the protocol frame by frame, opts into the
 * relay's extensions, and records rejections and the close code.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { MessageType } from '../../sync-server/protocol';

export class RawClient {
	readonly ws: WebSocket;
	readonly rejections: Array<{ code: string; detail: string }> = [];
	/** The room as the relay sent it (sync step 2 and later updates). */
	readonly doc = new Y.Doc();
	closeCode: number | null = null;
	/** Frames received so far, of any type. */
	received = 0;
	/** Awareness client id this client uses for settle markers, and the last marker seen back. */
	readonly #markerClient = 1 + Math.floor(Math.random() * 2 ** 30);
	#markersSent = 0;
	#markerSeen = 0;
	/** settled() calls waiting for a marker: resolved when it comes back or the socket closes. */
	#markerWaiters: Array<{ marker: number; resolve(): void }> = [];
	closeReason = '';
	readonly opened: Promise<void>;
	readonly closed: Promise<number>;

	constructor(url: string) {
		this.ws = new WebSocket(url);
		this.opened = new Promise((resolve, reject) => {
			this.ws.once('open', () => {
				// Ask for the room's state, as a provider does.
				const encoder = encoding.createEncoder();
				encoding.writeVarUint(encoder, MessageType.sync);
				syncProtocol.writeSyncStep1(encoder, this.doc);
				this.ws.send(encoding.toUint8Array(encoder));
				resolve();
			});
			this.ws.once('error', reject);
		});
		this.closed = new Promise((resolve) =>
			this.ws.once('close', (code, reason) => {
				this.closeCode = code;
				this.closeReason = reason.toString();
				for (const waiter of this.#markerWaiters.splice(0)) waiter.resolve();
				resolve(code);
			})
		);
		this.ws.on('message', (data: Buffer) => this.#onFrame(new Uint8Array(data)));
	}

	#onFrame(frame: Uint8Array): void {
		this.received++;
		const decoder = decoding.createDecoder(frame);
		const type = decoding.readVarUint(decoder);
		if (type === MessageType.awareness) {
			const update = decoding.createDecoder(decoding.readVarUint8Array(decoder));
			for (let n = decoding.readVarUint(update); n > 0; n--) {
				const client = decoding.readVarUint(update);
				const clock = decoding.readVarUint(update);
				decoding.readVarString(update);
				if (client === this.#markerClient) this.#markerSeen = Math.max(this.#markerSeen, clock);
			}
			const answered = this.#markerWaiters.filter((w) => w.marker <= this.#markerSeen);
			this.#markerWaiters = this.#markerWaiters.filter((w) => w.marker > this.#markerSeen);
			for (const waiter of answered) waiter.resolve();
		} else if (type === MessageType.rejected) {
			this.rejections.push({ code: decoding.readVarString(decoder), detail: decoding.readVarString(decoder) });
		} else if (type === MessageType.sync) {
			const encoder = encoding.createEncoder();
			syncProtocol.readSyncMessage(decoder, encoder, this.doc, 'relay');
		}
	}

	sendFrame(frame: Uint8Array): void {
		this.ws.send(frame);
	}

	sendUpdate(update: Uint8Array): void {
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.sync);
		syncProtocol.writeUpdate(encoder, update);
		this.sendFrame(encoding.toUint8Array(encoder));
	}

	sendAwareness(update: Uint8Array): void {
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.awareness);
		encoding.writeVarUint8Array(encoder, update);
		this.sendFrame(encoding.toUint8Array(encoder));
	}

	/** A copy of the room as this client has it, with `clientID`, to derive a crafted update from. */
	fork(clientID?: number): Y.Doc {
		const copy = new Y.Doc();
		Y.applyUpdate(copy, Y.encodeStateAsUpdate(this.doc));
		// Set after loading: Yjs picks a new id when it sees its own id in remote state.
		if (clientID !== undefined) copy.clientID = clientID;
		return copy;
	}

	/**
	 * Resolves once the relay has handled everything sent before (or closed the socket): it sends
	 * an awareness marker of its own and waits for the relay to broadcast it back, which it does
	 * only after every earlier frame of this socket.
	 */
	async settled(timeoutMs = 30_000): Promise<void> {
		if (this.closeCode !== null || this.ws.readyState !== this.ws.OPEN) return;
		const marker = ++this.#markersSent;
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, 1);
		encoding.writeVarUint(encoder, this.#markerClient);
		encoding.writeVarUint(encoder, marker);
		encoding.writeVarString(encoder, JSON.stringify({ settle: marker }));
		this.sendAwareness(encoding.toUint8Array(encoder));
		let timer: NodeJS.Timeout | undefined;
		try {
			await new Promise<void>((resolve, reject) => {
				this.#markerWaiters.push({ marker, resolve });
				timer = setTimeout(() => reject(new Error('the relay did not answer')), timeoutMs);
			});
		} finally {
			clearTimeout(timer);
		}
	}

	close(): void {
		this.ws.close();
	}
}

/** The update a change to `doc` produces. */
export function updateOf(doc: Y.Doc, change: (doc: Y.Doc) => void): Uint8Array {
	const before = Y.encodeStateVector(doc);
	change(doc);
	return Y.encodeStateAsUpdate(doc, before);
}
