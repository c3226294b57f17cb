/** One authorized socket: the account behind it and what it owns in its room. */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { RELAY_MAX_BUFFERED_BYTES, type RelayLimits } from './protocol';
import { TokenBucket } from './rate-limit';

export interface ConnectionIdentity {
	userId: string;
	userName: string;
	sessionId: string;
	roomId: string;
	role: 'admin' | 'member';
	/** The client opted into the relay's extension messages (durable acks, rejections). */
	extensions: boolean;
}

/**
 * Frames for one socket within one turn of the event loop leave in one write. Each write is a
 * system call, the largest part of the relay's time under load; a socket is corked at its first
 * frame of the turn and uncorked once the turn's I/O callbacks have run (setImmediate). Under
 * load a turn handles many senders' updates, so a member of a busy room gets several frames per
 * write; in a quiet moment a frame waits only for the rest of the current turn.
 */
const corked = new Set<Duplex>();
let uncorkScheduled = false;

function uncorkAll(): void {
	uncorkScheduled = false;
	for (const socket of corked) socket.uncork();
	corked.clear();
}

function corkForThisTurn(socket: Duplex): void {
	if (corked.has(socket)) return;
	socket.cork();
	corked.add(socket);
	if (!uncorkScheduled) {
		uncorkScheduled = true;
		setImmediate(uncorkAll);
	}
}

/** RFC 6455's opcode of a binary message. */
const OPCODE_BINARY = 0x2;

/** Bytes of a frame's header before its payload: the length's encoding, and a masking key if `masked`. */
export function frameHeaderBytes(length: number, masked: boolean): number {
	return (length < 126 ? 2 : length < 65_536 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes a whole (FIN) frame's header at the start of `frame`: the opcode, the mask bit and the
 * payload length in its shortest form. A masking key, if any, follows it (the caller's).
 */
export function writeFrameHeader(frame: Buffer, opcode: number, length: number, masked: boolean): void {
	const mask = masked ? 0x80 : 0;
	frame[0] = 0x80 | opcode;
	if (length < 126) frame[1] = mask | length;
	else if (length < 65_536) {
		frame[1] = mask | 126;
		frame.writeUInt16BE(length, 2);
	} else {
		frame[1] = mask | 127;
		frame.writeUInt16BE(0, 2);
		frame.writeUIntBE(length, 4, 6);
	}
}

/**
 * A message framed once for however many sockets it goes to. The relay's frames are neither
 * masked nor compressed (its WebSocket server has perMessageDeflate off), so every recipient gets
 * the same bytes: a room's update is framed once and that one buffer written to each socket,
 * where `ws` would frame it again per socket (a header allocated, two writes queued).
 */
export class WireMessage {
	/** The whole frame: header, then the message. */
	readonly wire: Buffer;
	/** The message alone (a view of `wire`). */
	readonly message: Buffer;

	/** A frame with room for a message of `length` bytes, which `fill` writes. */
	constructor(length: number, fill: (message: Buffer) => void) {
		const header = frameHeaderBytes(length, false);
		this.wire = Buffer.allocUnsafe(header + length);
		writeFrameHeader(this.wire, OPCODE_BINARY, length, false);
		this.message = this.wire.subarray(header);
		fill(this.message);
	}

	static of(message: Uint8Array): WireMessage {
		return new WireMessage(message.length, (into) => into.set(message));
	}
}

export class Connection {
	readonly ws: WebSocket;
	/** The upgraded TCP socket under `ws`, corked per turn of the event loop. */
	readonly #socket: Duplex;
	readonly identity: ConnectionIdentity;
	/** Awareness client ids this socket has published; only it may update or remove them. */
	readonly awarenessClients = new Set<number>();
	/** Refused updates and rate-limited frames so far; past the limit the socket is closed. */
	rejections = 0;
	/** Awareness changes dropped for exceeding the rate. */
	awarenessDropped = 0;
	readonly limits: RelayLimits;
	readonly updateRate: TokenBucket;
	readonly awarenessRate: TokenBucket;
	alive = true;
	/** The relay has answered this socket's sync step 1 (or it wrote without one). */
	synced = false;
	/** Set when the socket's document belongs to a closed epoch: what it sends is carried over. */
	legacy: { epoch: number; chain: Promise<void>; asked: boolean } | null = null;
	#closed = false;

	constructor(ws: WebSocket, identity: ConnectionIdentity, limits: RelayLimits, socket: Duplex) {
		this.ws = ws;
		this.#socket = socket;
		this.identity = identity;
		this.limits = limits;
		this.updateRate = new TokenBucket(limits.updatesBurst, limits.updatesPerSecond);
		this.awarenessRate = new TokenBucket(limits.awarenessBurst, limits.awarenessPerSecond);
	}

	get userId(): string {
		return this.identity.userId;
	}

	get closed(): boolean {
		return this.#closed || this.ws.readyState !== this.ws.OPEN;
	}

	/** Sends one binary message: bytes, or a message framed once for many sockets. */
	send(frame: Uint8Array | WireMessage): void {
		if (this.closed) return;
		if (this.ws.bufferedAmount > RELAY_MAX_BUFFERED_BYTES) {
			// It resyncs from the store when it reconnects; the room must not wait for it. A close
			// frame would queue behind the backlog, so the socket is dropped outright.
			this.#closed = true;
			this.ws.terminate();
			return;
		}
		// Written beside ws's own frames (pings, the close) in call order: with no compression
		// and no Blob data, ws writes each frame to the socket when it is sent, never later. Its
		// bufferedAmount counts these bytes too (it reads the socket's queue).
		corkForThisTurn(this.#socket);
		this.#socket.write((frame instanceof WireMessage ? frame : WireMessage.of(frame)).wire);
	}

	close(code: number, reason: string): void {
		if (this.#closed) return;
		this.#closed = true;
		// Close reasons are limited to 123 bytes (RFC 6455 §5.5).
		this.ws.close(code, reason.slice(0, 120));
	}
}
