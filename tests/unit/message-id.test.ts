import { decodeTime } from 'ulid';
import { describe, expect, it } from 'vitest';
import { messageIdSequence, newMessageId } from '../../src/lib/shared/message-id';
import { isUlid } from '../../src/lib/shared/schema';

describe('message ids', () => {
	it('are ULIDs whose time the ulid package reads back', () => {
		const next = messageIdSequence();
		for (const ms of [0, 1, 1_765_000_000_000, Date.now(), 2 ** 48 - 1]) {
			const id = next(ms);
			expect(isUlid(id)).toBe(true);
			expect(decodeTime(id)).toBe(ms);
		}
		expect(decodeTime(newMessageId())).toBeGreaterThan(Date.now() - 60_000);
	});

	it('increase within a millisecond, and when the clock steps back', () => {
		const next = messageIdSequence();
		const ids = [next(5_000), next(5_000), next(5_000), next(4_000), next(5_001)];
		expect([...ids].sort()).toEqual(ids);
		expect(new Set(ids).size).toBe(ids.length);
		// Stepped back: still the last id's millisecond.
		expect(decodeTime(ids[3])).toBe(5_000);
		expect(decodeTime(ids[4])).toBe(5_001);
	});

	it('differ between sequences and over many draws of the random pool', () => {
		const a = messageIdSequence();
		const b = messageIdSequence();
		const seen = new Set<string>();
		for (let i = 0; i < 20_000; i++) {
			seen.add(a(i));
			seen.add(b(i));
		}
		expect(seen.size).toBe(40_000);
		// Every base-32 digit turns up in the random part (a stuck bit would leave some out).
		const digits = new Set([...seen].flatMap((id) => [...id.slice(10)]));
		expect(digits.size).toBe(32);
	});

	it('refuses an instant a ULID cannot hold', () => {
		const next = messageIdSequence();
		for (const bad of [-1, 1.5, 2 ** 48, Number.NaN]) expect(() => next(bad)).toThrow(RangeError);
	});
});
