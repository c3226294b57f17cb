/**
 * The load generator's WebSocket client: the handshake and framing of RFC 6455 over a bare TCP
 * socket, and nothing else. A thousand `ws` clients cost the generator more CPU per delivery than
 * the bare fan-out server spends forwarding it (its receiver is a stream, each frame an event
 * through several layers); this one reads each TCP chunk in place, hands every message frame to
 * its callback as a view of the chunk, and sends each frame in one write. It speaks what the
 * benchmarked servers send — whole (unfragmented) binary or text messages, ping, pong, close —
 * and ends the socket, with the reason, on anything else.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { frameHeaderBytes, writeFrameHeader } from '../../sync-server/connection';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const enum Op {
	continuation = 0x0,
	text = 0x1,
	binary = 0x2,
	close = 0x8,
	ping = 0x9,
	pong = 0xa
}
/** The largest frame this client accepts (the servers' largest message is a sync step 2). */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const HANDSHAKE_MAX_BYTES = 16 * 1024;
/** Masking keys, drawn a pool at a time (the server ignores their values; RFC 6455 wants them unpredictable). */
const MASK_POOL_BYTES = 4 * 4096;
let maskPool = randomBytes(MASK_POOL_BYTES);
let maskAt = 0;

export interface LeanSocketEvents {
	open(): void;
	/** One message; `data` is a view of the received chunk, valid during the call only. */
	message(data: Buffer): void;
	/** The connection could not be set up (refused, not upgraded, a broken handshake). */
	fail(why: string): void;
	/** The connection ended after it opened: the close code and reason, or why it broke. */
	close(why: string): void;
}

export class LeanSocket {
	readonly #socket: net.Socket;
	readonly #key = randomBytes(16).toString('base64');
	readonly #on: LeanSocketEvents;
	/** Received bytes not yet a whole frame (or, before the upgrade, a whole response head). */
	#pending: Buffer | null = null;
	#upgraded = false;
	#open = false;
	#ended = false;
	/** The server's close code and reason, once its close frame came. */
	#closeReason: string | null = null;
	#resolveEnded!: () => void;
	/** Settles once the connection is over, however it ended. */
	readonly ended = new Promise<void>((resolve) => (this.#resolveEnded = resolve));

	constructor(url: string, on: LeanSocketEvents) {
		this.#on = on;
		const target = new URL(url);
		if (target.protocol !== 'ws:') throw new Error(`only ws: URLs: ${url}`);
		this.#socket = net.connect({ host: target.hostname, port: Number(target.port || 80), noDelay: true });
		this.#socket.on('connect', () => {
			this.#socket.write(
				`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
					`Sec-WebSocket-Key: ${this.#key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
			);
		});
		this.#socket.on('data', (chunk: Buffer) => this.#receive(chunk));
		this.#socket.on('error', (error) => this.#end(error.message));
		this.#socket.on('close', () => this.#end(this.#closeReason ?? '1006 connection lost'));
	}

	get open(): boolean {
		return this.#open;
	}

	/** Sends one binary message (masked, as from a client), in one write. */
	send(payload: Uint8Array): void {
		if (!this.#open) return;
		this.#socket.write(encodeFrame(Op.binary, payload));
	}

	/** Starts the closing handshake; the close callback fires once the server has closed too. */
	close(code = 1000): void {
		if (!this.#open) return this.terminate();
		this.#open = false;
		const body = Buffer.alloc(2);
		body.writeUInt16BE(code);
		this.#socket.end(encodeFrame(Op.close, body));
	}

	terminate(): void {
		this.#socket.destroy();
	}

	#end(why: string): void {
		if (this.#ended) return;
		this.#ended = true;
		const wasOpen = this.#upgraded;
		this.#open = false;
		this.#socket.destroy();
		this.#resolveEnded();
		if (wasOpen) this.#on.close(why);
		else this.#on.fail(why);
	}

	#receive(chunk: Buffer): void {
		let data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
		this.#pending = null;
		if (!this.#upgraded) {
			const head = data.indexOf('\r\n\r\n');
			if (head < 0) {
				if (data.length > HANDSHAKE_MAX_BYTES) return this.#end('the upgrade response has no end');
				this.#pending = Buffer.from(data);
				return;
			}
			const problem = this.#checkUpgrade(data.toString('latin1', 0, head));
			if (problem) return this.#end(problem);
			this.#upgraded = true;
			this.#open = true;
			data = data.subarray(head + 4);
			this.#on.open();
		}
		let at = 0;
		while (!this.#ended) {
			const frame = readFrame(data, at);
			if (frame === null) break;
			if (typeof frame === 'string') return this.#end(frame);
			at = frame.end;
			this.#frame(frame.op, data.subarray(frame.start, frame.end));
		}
		// A partial frame waits for the rest; copied, since the chunk's memory is reused after this call.
		if (at < data.length && !this.#ended) this.#pending = Buffer.from(data.subarray(at));
	}

	#checkUpgrade(head: string): string | null {
		const [status, ...lines] = head.split('\r\n');
		const code = /^HTTP\/1\.1 (\d{3})/.exec(status)?.[1];
		if (code !== '101') return `HTTP ${code ?? status}`;
		const accept = lines.find((l) => l.toLowerCase().startsWith('sec-websocket-accept:'))?.slice(21).trim();
		const expected = createHash('sha1').update(this.#key + WS_GUID).digest('base64');
		return accept === expected ? null : 'the server answered the upgrade with a wrong Sec-WebSocket-Accept';
	}

	#frame(op: Op, payload: Buffer): void {
		switch (op) {
			case Op.binary:
			case Op.text:
				this.#on.message(payload);
				return;
			case Op.ping:
				if (this.#open) this.#socket.write(encodeFrame(Op.pong, payload));
				return;
			case Op.pong:
				return;
			case Op.close: {
				const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
				// The close callback carries the server's code, whether it or this side began.
				this.#closeReason = `${code} ${payload.toString('utf8', 2)}`;
				if (this.#open) {
					// The server began the closing handshake: answer it with its code.
					this.#open = false;
					this.#socket.end(encodeFrame(Op.close, payload.subarray(0, Math.min(2, payload.length))));
				}
				return;
			}
			default:
				this.#end(`unexpected frame opcode ${op}`);
		}
	}
}

/** The frame starting at `at`: its opcode and payload span, null if incomplete, or why it is refused. */
function readFrame(data: Buffer, at: number): { op: Op; start: number; end: number } | string | null {
	if (data.length - at < 2) return null;
	const b0 = data[at];
	const b1 = data[at + 1];
	if ((b0 & 0x70) !== 0) return 'a frame with reserved bits set (no extension was negotiated)';
	if ((b1 & 0x80) !== 0) return 'a masked frame from the server';
	const op = (b0 & 0x0f) as Op;
	if ((b0 & 0x80) === 0 || op === Op.continuation) return 'a fragmented message (not sent by the benchmarked servers)';
	let length = b1 & 0x7f;
	let start = at + 2;
	if (length === 126) {
		if (data.length - at < 4) return null;
		length = data.readUInt16BE(at + 2);
		start = at + 4;
	} else if (length === 127) {
		if (data.length - at < 10) return null;
		if (data.readUInt16BE(at + 2) !== 0) return 'a frame too large';
		length = data.readUIntBE(at + 4, 6);
		start = at + 10;
	}
	if (length > MAX_FRAME_BYTES) return 'a frame too large';
	const end = start + length;
	return end <= data.length ? { op, start, end } : null;
}

/** A client frame: FIN, the opcode, the masked length and the payload XORed with the key. */
function encodeFrame(op: Op, payload: Uint8Array): Buffer {
	const length = payload.length;
	const headerBytes = frameHeaderBytes(length, true);
	const frame = Buffer.allocUnsafe(headerBytes + length);
	writeFrameHeader(frame, op, length, true);
	if (maskAt === MASK_POOL_BYTES) {
		maskPool = randomBytes(MASK_POOL_BYTES);
		maskAt = 0;
	}
	const maskStart = headerBytes - 4;
	maskPool.copy(frame, maskStart, maskAt, maskAt + 4);
	maskAt += 4;
	for (let i = 0; i < length; i++) frame[headerBytes + i] = payload[i] ^ frame[maskStart + (i & 3)];
	return frame;
}
