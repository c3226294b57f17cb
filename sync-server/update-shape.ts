/**
 * A strict, bounded reading of an untrusted v1 update before Yjs decodes it. yjs 13.6.x can loop
 * forever or exhaust memory on crafted updates of a few dozen bytes (yjs issue 687: counts and
 * lengths that the bytes cannot back); this pass reads the same wire format with every count
 * checked against the bytes that remain, every length and depth capped, and only the content
 * kinds the room schema uses, so its cost is linear in the frame and Yjs only ever sees
 * well-formed input. v2-encoded updates do not survive it: the relay speaks v1 only.
 */

export type ShapeProblem =
	| 'truncated'
	| 'trailing_bytes'
	| 'count_too_large'
	| 'integer_too_large'
	| 'gc_or_skip'
	| 'content_kind'
	| 'too_deep'
	| 'bad_key'
	| 'length_too_large';

export class ShapeError extends Error {
	readonly problem: ShapeProblem;
	constructor(problem: ShapeProblem, detail: string) {
		super(detail);
		this.problem = problem;
	}
}

/** Nesting depth of plain JSON values inside a message (messages are flat objects). */
const ANY_MAX_DEPTH = 4;
/**
 * Longest deleted-content run a client may send. Own map values overwritten before a sync arrive
 * as deleted items, and Yjs merges consecutive ones into one run; a run's length is not backed
 * by bytes, so it is capped.
 */
const DELETED_RUN_MAX = 65_536;
/** Yjs content kinds (the low five bits of an item's info byte). */
const CONTENT_DELETED = 1;
const CONTENT_ANY = 8;
const STRUCT_GC = 0;
const STRUCT_SKIP = 10;
const BIT6 = 0b0010_0000;
const BIT7 = 0b0100_0000;
const BIT8 = 0b1000_0000;
const PROTO_BYTES = new TextEncoder().encode('__proto__');

class Reader {
	pos = 0;
	constructor(readonly bytes: Uint8Array) {}

	get remaining(): number {
		return this.bytes.length - this.pos;
	}

	uint8(): number {
		if (this.pos >= this.bytes.length) throw new ShapeError('truncated', 'update ends early');
		return this.bytes[this.pos++];
	}

	/** A varUint of at most 7 bytes (49 bits; every clock, client id and count fits). */
	varUint(): number {
		let value = 0;
		let mult = 1;
		for (let i = 0; i < 7; i++) {
			const byte = this.uint8();
			value += (byte & 0x7f) * mult;
			if (byte < 0x80) return value;
			mult *= 128;
		}
		throw new ShapeError('integer_too_large', 'integer longer than 7 bytes');
	}

	/** A count of elements that each take at least one byte: never more than the bytes left. */
	count(): number {
		const n = this.varUint();
		if (n > this.remaining) throw new ShapeError('count_too_large', `count ${n} exceeds the ${this.remaining} bytes left`);
		return n;
	}

	skip(n: number): void {
		if (n > this.remaining) throw new ShapeError('truncated', 'update ends early');
		this.pos += n;
	}

	/** Skips a string; true when it is exactly `__proto__` (the only key that needs refusing). */
	varStringIsProto(): boolean {
		const length = this.count();
		const start = this.pos;
		this.skip(length);
		if (length !== PROTO_BYTES.length) return false;
		for (let i = 0; i < length; i++) if (this.bytes[start + i] !== PROTO_BYTES[i]) return false;
		return true;
	}

	varInt(): void {
		for (let i = 0; i < 8; i++) if (this.uint8() < 0x80) return;
		throw new ShapeError('integer_too_large', 'integer longer than 8 bytes');
	}
}

function readAny(reader: Reader, depth: number): void {
	if (depth > ANY_MAX_DEPTH) throw new ShapeError('too_deep', 'values nest too deeply');
	const type = reader.uint8();
	switch (type) {
		case 127: // undefined
		case 126: // null
		case 121: // false
		case 120: // true
			return;
		case 125: // integer
			reader.varInt();
			return;
		case 124: // float32
			reader.skip(4);
			return;
		case 123: // float64
		case 122: // bigint64
			reader.skip(8);
			return;
		case 119: // string
			reader.varStringIsProto();
			return;
		case 118: {
			// object
			const n = reader.count();
			for (let i = 0; i < n; i++) {
				if (reader.varStringIsProto()) throw new ShapeError('bad_key', 'object key __proto__');
				readAny(reader, depth + 1);
			}
			return;
		}
		case 117: {
			// array
			const n = reader.count();
			for (let i = 0; i < n; i++) readAny(reader, depth + 1);
			return;
		}
		case 116: // Uint8Array
			reader.skip(reader.count());
			return;
		default:
			throw new ShapeError('content_kind', `unknown value type ${type}`);
	}
}

function readItem(reader: Reader, info: number): number {
	if (info & BIT8) {
		reader.varUint();
		reader.varUint();
	}
	if (info & BIT7) {
		reader.varUint();
		reader.varUint();
	}
	if ((info & (BIT7 | BIT8)) === 0) {
		if (reader.varUint() === 1) reader.varStringIsProto();
		else {
			reader.varUint();
			reader.varUint();
		}
		if (info & BIT6) reader.varStringIsProto();
	}
	const kind = info & 0b1_1111;
	if (kind === CONTENT_DELETED) {
		const length = reader.varUint();
		if (length < 1 || length > DELETED_RUN_MAX) throw new ShapeError('length_too_large', `deleted run of ${length}`);
		return length;
	}
	if (kind === CONTENT_ANY) {
		const n = reader.count();
		if (n === 0) throw new ShapeError('length_too_large', 'empty content');
		for (let i = 0; i < n; i++) readAny(reader, 0);
		return n;
	}
	throw new ShapeError('content_kind', `content kind ${kind} is not part of the room schema`);
}

/** Throws a ShapeError unless `update` is a well-formed v1 update the schema could admit. */
export function checkUpdateShape(update: Uint8Array): void {
	const reader = new Reader(update);
	const clients = reader.count();
	for (let c = 0; c < clients; c++) {
		const structs = reader.count();
		reader.varUint(); // client id
		reader.varUint(); // first clock
		for (let s = 0; s < structs; s++) {
			const info = reader.uint8();
			const kind = info & 0b1_1111;
			if (kind === STRUCT_GC || kind === STRUCT_SKIP) {
				throw new ShapeError('gc_or_skip', 'clients may not send garbage-collected or skipped ranges');
			}
			readItem(reader, info);
		}
	}
	const deleteClients = reader.count();
	for (let c = 0; c < deleteClients; c++) {
		reader.varUint(); // client id
		const ranges = reader.count();
		for (let r = 0; r < ranges; r++) {
			reader.varUint(); // clock
			reader.varUint(); // length: checked against the room's store by validate.ts
		}
	}
	if (reader.remaining !== 0) throw new ShapeError('trailing_bytes', `${reader.remaining} bytes after the update`);
}
