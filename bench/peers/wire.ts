/**
 * The client side of the wire, shared by the load workers and the orchestrator: y-websocket
 * frames (sync + awareness), Hocuspocus's framing of the same messages (document name first, an
 * auth message before anything else), and the latency marker carried inside each message's text.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';

/** `y`: y-websocket protocol (our relay, @y/websocket-server, bare ws); `hocus`: Hocuspocus's. */
export type Dialect = 'y' | 'hocus';

const MSG_SYNC = 0;
const HOCUS_AUTH = 2;

/** A frame: [document name if hocus] + body. */
export function frame(dialect: Dialect, docName: string, write: (e: encoding.Encoder) => void): Uint8Array {
	const encoder = encoding.createEncoder();
	if (dialect === 'hocus') encoding.writeVarString(encoder, docName);
	write(encoder);
	return encoding.toUint8Array(encoder);
}

export function syncStep1Frame(dialect: Dialect, docName: string, doc: Y.Doc): Uint8Array {
	return frame(dialect, docName, (e) => {
		encoding.writeVarUint(e, MSG_SYNC);
		syncProtocol.writeSyncStep1(e, doc);
	});
}

export function syncStep2Frame(dialect: Dialect, docName: string, update: Uint8Array): Uint8Array {
	return frame(dialect, docName, (e) => {
		encoding.writeVarUint(e, MSG_SYNC);
		encoding.writeVarUint(e, syncProtocol.messageYjsSyncStep2);
		encoding.writeVarUint8Array(e, update);
	});
}

export function updateFrame(dialect: Dialect, docName: string, update: Uint8Array): Uint8Array {
	return frame(dialect, docName, (e) => {
		encoding.writeVarUint(e, MSG_SYNC);
		syncProtocol.writeUpdate(e, update);
	});
}

/** Hocuspocus waits for [name][Auth][Token][token] before it handles anything for a document. */
export function hocusAuthFrame(docName: string): Uint8Array {
	return frame('hocus', docName, (e) => {
		encoding.writeVarUint(e, HOCUS_AUTH);
		encoding.writeVarUint(e, 0);
		encoding.writeVarString(e, 'bench');
	});
}

export type Inbound =
	| { kind: 'step1'; stateVector: Uint8Array }
	| { kind: 'step2'; update: Uint8Array }
	| { kind: 'update' }
	| { kind: 'other' };

/** Classifies an inbound frame; reads the payload only for sync steps 1 and 2. */
export function classify(dialect: Dialect, data: Uint8Array): Inbound {
	const decoder = decoding.createDecoder(data);
	if (dialect === 'hocus') decoding.readVarString(decoder);
	if (decoding.readVarUint(decoder) !== MSG_SYNC) return { kind: 'other' };
	const sub = decoding.readVarUint(decoder);
	if (sub === syncProtocol.messageYjsSyncStep1) return { kind: 'step1', stateVector: decoding.readVarUint8Array(decoder) };
	if (sub === syncProtocol.messageYjsSyncStep2) return { kind: 'step2', update: decoding.readVarUint8Array(decoder) };
	if (sub === syncProtocol.messageYjsUpdate) return { kind: 'update' };
	return { kind: 'other' };
}

/**
 * The marker inside a message's text: the scheduled send instant, µs of CLOCK_MONOTONIC (the same
 * clock in every process), then the sender's Yjs client id (servers that echo a message back to its
 * sender are not credited with that delivery).
 */
const MARK_OPEN = Buffer.from('~T');
const TIME_DIGITS = 16;
const CLIENT_DIGITS = 10;
const MARK_DIGITS = TIME_DIGITS + CLIENT_DIGITS;

export function nowUs(): number {
	return Number(process.hrtime.bigint() / 1000n);
}

export function markerText(scheduledUs: number, from: number, seq: number): string {
	const time = String(Math.round(scheduledUs)).padStart(TIME_DIGITS, '0');
	return `bench message ~T${time}${String(from).padStart(CLIENT_DIGITS, '0')}~ #${seq}`;
}

/** Calls `found` with each scheduled instant (µs) marked in the frame's bytes, except the client's own. */
export function scanMarkers(data: Buffer, self: number, found: (scheduledUs: number) => void): void {
	let at = data.indexOf(MARK_OPEN);
	while (at >= 0) {
		const start = at + MARK_OPEN.length;
		const end = start + MARK_DIGITS;
		if (end < data.length && data[end] === 0x7e /* ~ */) {
			let time = 0;
			let from = 0;
			let ok = true;
			for (let i = start; i < end; i++) {
				const d = data[i] - 0x30;
				if (d < 0 || d > 9) {
					ok = false;
					break;
				}
				if (i < start + TIME_DIGITS) time = time * 10 + d;
				else from = from * 10 + d;
			}
			if (ok && from !== self) found(time);
		}
		at = data.indexOf(MARK_OPEN, end);
	}
}

/** One chat message as the contract defines it. */
export interface ChatMessage {
	id: string;
	author: string;
	ts: number;
	kind: 'text';
	text: string;
}

/**
 * A writer's own small document: it holds only this writer's messages (received updates are never
 * applied to it, which keeps the load generator cheap), so each push is an item after the
 * writer's previous one, and the update Yjs emits for it is what goes on the wire.
 */
export class Writer {
	readonly doc: Y.Doc;
	readonly #messages: Y.Array<ChatMessage>;
	#last: Uint8Array | null = null;

	constructor(clientId: number) {
		this.doc = new Y.Doc({ gc: false });
		this.doc.clientID = clientId;
		this.#messages = this.doc.getArray<ChatMessage>('messages');
		this.doc.on('update', (update: Uint8Array) => (this.#last = update));
	}

	push(message: ChatMessage): Uint8Array {
		this.#messages.push([message]);
		const update = this.#last!;
		this.#last = null;
		return update;
	}
}
