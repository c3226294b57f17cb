/** Slots: at most `size` holders at once, the rest served in the order they asked. */
import { describe, expect, it } from 'vitest';
import { Slots } from '../../sync-server/slots';

describe('Slots', () => {
	it('lets `size` holders in at once and the next waiter in as each one leaves, in order', async () => {
		const slots = new Slots(2);
		const order: string[] = [];
		const first = await slots.acquire();
		const second = await slots.acquire();
		const waiters = ['c', 'd'].map((name) => slots.acquire().then((release) => (order.push(name), release)));
		// Let pending promise callbacks run: neither waiter may get in while both slots are held.
		await Promise.resolve();
		await Promise.resolve();
		expect(order).toEqual([]);
		first();
		first(); // a second release of the same slot does nothing
		const c = await waiters[0];
		expect(order).toEqual(['c']);
		second();
		const d = await waiters[1];
		expect(order).toEqual(['c', 'd']);
		c();
		d();
		// Both free again: two more get in without waiting.
		const [e, f] = await Promise.all([slots.acquire(), slots.acquire()]);
		e();
		f();
	});

	it('refuses a size that is not a positive integer', () => {
		expect(() => new Slots(0)).toThrow(/positive integer/);
		expect(() => new Slots(1.5)).toThrow(/positive integer/);
	});
});
