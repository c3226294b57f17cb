/**
 * Message ids: ULIDs (https://github.com/ulid/spec), 48 bits of milliseconds then 80 random bits,
 * both in Crockford's base 32. Within one process (or tab) they increase, as the spec's monotonic
 * mode has it: an id in the same millisecond as the last one (or earlier, should the clock step
 * back) is the last one plus one, so one sender's ids sort in the order it sent them.
 *
 * Written here rather than taken from the `ulid` package, whose generator asks the system for
 * each of the 16 random characters in a call of its own (~80 µs an id in Node, where each call
 * crosses into C++): this one draws random bytes a pool at a time.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;
/** Random bytes drawn at once: one draw per 256 ids. */
const POOL_BYTES = RANDOM_CHARS * 256;

/** Random bytes shared by every sequence of ids. */
const pool = new Uint8Array(POOL_BYTES);
let poolAt = POOL_BYTES;

function encodeTime(ms: number): string {
	let out = '';
	for (let i = 0; i < TIME_CHARS; i++) {
		out = ALPHABET[ms % 32] + out;
		ms = Math.floor(ms / 32);
	}
	return out;
}

/** Fills `digits` with fresh random base-32 digits. */
function drawRandom(digits: Uint8Array): void {
	if (poolAt + RANDOM_CHARS > POOL_BYTES) {
		globalThis.crypto.getRandomValues(pool);
		poolAt = 0;
	}
	// 256 is a multiple of 32: the low five bits of a uniform byte are a uniform digit.
	for (let i = 0; i < RANDOM_CHARS; i++) digits[i] = pool[poolAt++] & 31;
}

/** Adds one to the digits; false if they were all ones (then the time must move instead). */
function increment(digits: Uint8Array): boolean {
	for (let i = RANDOM_CHARS - 1; i >= 0; i--) {
		if (digits[i] < 31) {
			digits[i]++;
			return true;
		}
		digits[i] = 0;
	}
	return false;
}

/**
 * A sequence of increasing ids: call it with the id's instant (ms since the epoch; the clock by
 * default). A seeder of past messages takes a sequence of its own, so that its ids keep their
 * messages' instants rather than follow the ids made for now.
 */
export function messageIdSequence(): (now?: number) => string {
	let lastTime = -1;
	const lastRandom = new Uint8Array(RANDOM_CHARS);
	return (now = Date.now()) => {
		if (!Number.isSafeInteger(now) || now < 0 || now >= 2 ** 48) throw new RangeError(`not a ULID time: ${now}`);
		if (now > lastTime) {
			lastTime = now;
			drawRandom(lastRandom);
		} else if (!increment(lastRandom)) {
			lastTime += 1; // 2^80 ids in one millisecond: borrow the next one
			drawRandom(lastRandom);
		}
		let random = '';
		for (let i = 0; i < RANDOM_CHARS; i++) random += ALPHABET[lastRandom[i]];
		return encodeTime(lastTime) + random;
	};
}

/** A new message id, increasing within this process (or tab). */
export const newMessageId = messageIdSequence();
