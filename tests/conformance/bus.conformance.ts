/**
 * One behavioural contract for every Bus: run against the in-process bus and against Redis.
 * `makeBuses` returns two fresh instances on one backend (two relays on one Redis), both reporting
 * handler and connection errors to `onError`.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/lib/server/bus/bus';
import { waitFor } from '../helpers/wait';

const DELIVERY_TIMEOUT_MS = 2_000;

/** Collects what a handler received, so tests can poll for it. */
function recorder(): { received: Uint8Array[]; handler: (payload: Uint8Array) => void } {
	const received: Uint8Array[] = [];
	return { received, handler: (payload) => received.push(payload) };
}

function bytes(text: string): Uint8Array {
	return new TextEncoder().encode(text);
}

function text(payload: Uint8Array): string {
	return new TextDecoder().decode(payload);
}

export type BusErrorSink = (error: unknown, context: string) => void;

export function describeBusConformance(
	name: string,
	makeBuses: (onError: BusErrorSink) => Promise<Bus[]>
): void {
	describe(`Bus conformance: ${name}`, () => {
		let a: Bus;
		let b: Bus;
		/** Channel names unique per test, so runs sharing one Redis never see each other. */
		let channel: (suffix: string) => string;
		let reported: { error: unknown; context: string }[];

		beforeEach(async () => {
			reported = [];
			[a, b] = await makeBuses((error, context) => reported.push({ error, context }));
			const run = randomUUID();
			channel = (suffix) => `conformance:${run}:${suffix}`;
		});

		afterEach(async () => {
			await Promise.all([a.close(), b.close()]);
			// Also catches assertions made inside handlers, which the bus reports instead of throwing.
			expect(reported.filter((r) => !String(r.error).includes('expected by this test'))).toEqual([]);
		});

		it('gives each instance its own id', () => {
			expect(a.instanceId).not.toBe('');
			expect(a.instanceId).not.toBe(b.instanceId);
		});

		it('delivers a message to subscribers of the channel on every instance', async () => {
			const onA = recorder();
			const onB = recorder();
			await a.subscribe(channel('room'), onA.handler);
			await b.subscribe(channel('room'), onB.handler);

			await a.publish(channel('room'), bytes('from a'));
			await b.publish(channel('room'), bytes('from b'));

			await waitFor(() => onA.received.length === 2 && onB.received.length === 2, DELIVERY_TIMEOUT_MS);
			expect(onA.received.map(text)).toEqual(['from a', 'from b']);
			expect(onB.received.map(text)).toEqual(['from a', 'from b']);
		});

		it('delivers every byte value intact', async () => {
			const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
			const onB = recorder();
			await b.subscribe(channel('binary'), onB.handler);

			await a.publish(channel('binary'), everyByte);

			await waitFor(() => onB.received.length === 1, DELIVERY_TIMEOUT_MS);
			expect(onB.received[0]).toBeInstanceOf(Uint8Array);
			expect(Array.from(onB.received[0])).toEqual(Array.from(everyByte));
		});

		it('hands each handler its own copy of the bytes', async () => {
			const seen: string[] = [];
			const original = bytes('abc');
			await b.subscribe(channel('copy'), (payload) => {
				seen.push(text(payload));
				payload.fill(0x7a);
			});
			await b.subscribe(channel('copy'), (payload) => {
				seen.push(text(payload));
				expect(payload.byteOffset).toBe(0);
				expect(payload.byteLength).toBe(payload.buffer.byteLength);
			});

			const published = a.publish(channel('copy'), original);
			original.fill(0x78);
			await published;

			await waitFor(() => seen.length === 2, DELIVERY_TIMEOUT_MS);
			expect(seen).toEqual(['abc', 'abc']);
		});

		it('stops delivering once unsubscribed', async () => {
			const removed = recorder();
			const sentinel = recorder();
			const unsubscribe = await b.subscribe(channel('gone'), removed.handler);
			await b.subscribe(channel('sentinel'), sentinel.handler);
			await a.publish(channel('gone'), bytes('before'));
			await waitFor(() => removed.received.length === 1, DELIVERY_TIMEOUT_MS);

			await unsubscribe();
			await unsubscribe();
			await a.publish(channel('gone'), bytes('after'));
			// Published later from the same instance: once it arrives, "after" would have too.
			await a.publish(channel('sentinel'), bytes('marker'));

			await waitFor(() => sentinel.received.length === 1, DELIVERY_TIMEOUT_MS);
			expect(removed.received.map(text)).toEqual(['before']);
		});

		it('drops a message still in flight when its handler unsubscribes', async () => {
			const removed = recorder();
			const sentinel = recorder();
			const unsubscribe = await b.subscribe(channel('in-flight'), removed.handler);
			await b.subscribe(channel('sentinel'), sentinel.handler);

			// Not awaited in between: the unsubscribe starts before the message can arrive.
			const published = b.publish(channel('in-flight'), bytes('racing'));
			const unsubscribed = unsubscribe();
			await Promise.all([published, unsubscribed]);
			await b.publish(channel('sentinel'), bytes('marker'));

			await waitFor(() => sentinel.received.length === 1, DELIVERY_TIMEOUT_MS);
			expect(removed.received).toEqual([]);
		});

		it('keeps other subscriptions of a channel when one unsubscribes', async () => {
			const leaving = recorder();
			const staying = recorder();
			const unsubscribe = await b.subscribe(channel('shared'), leaving.handler);
			await b.subscribe(channel('shared'), staying.handler);

			await unsubscribe();
			await a.publish(channel('shared'), bytes('still here'));

			await waitFor(() => staying.received.length === 1, DELIVERY_TIMEOUT_MS);
			expect(staying.received.map(text)).toEqual(['still here']);
			expect(leaving.received).toEqual([]);
		});

		it('keeps channels apart', async () => {
			const first = recorder();
			const second = recorder();
			await b.subscribe(channel('room:1'), first.handler);
			await b.subscribe(channel('room:10'), second.handler);

			await a.publish(channel('room:1'), bytes('one'));
			await a.publish(channel('room:10'), bytes('ten'));
			await a.publish(channel('room:100'), bytes('hundred'));
			await a.publish(channel('room:10'), bytes('ten again'));

			await waitFor(() => second.received.length === 2, DELIVERY_TIMEOUT_MS);
			expect(first.received.map(text)).toEqual(['one']);
			expect(second.received.map(text)).toEqual(['ten', 'ten again']);
		});

		it('keeps delivering when a handler throws', async () => {
			const after = recorder();
			let calls = 0;
			await b.subscribe(channel('throws'), () => {
				calls += 1;
				throw new Error('handler failure (expected by this test)');
			});
			await b.subscribe(channel('throws'), after.handler);

			await a.publish(channel('throws'), bytes('first'));
			await a.publish(channel('throws'), bytes('second'));

			await waitFor(() => after.received.length === 2, DELIVERY_TIMEOUT_MS);
			expect(calls).toBe(2);
			expect(reported).toHaveLength(2);
			expect(reported[0].context).toContain(channel('throws'));
		});

		it('closes idempotently and refuses work afterwards', async () => {
			const onB = recorder();
			await b.subscribe(channel('closing'), onB.handler);

			await Promise.all([b.close(), b.close()]);
			await b.close();

			await expect(b.publish(channel('closing'), bytes('x'))).rejects.toThrow(/closed/);
			await expect(b.subscribe(channel('closing'), onB.handler)).rejects.toThrow(/closed/);
			// The other instance is unaffected and the closed one hears nothing more.
			const onA = recorder();
			await a.subscribe(channel('closing'), onA.handler);
			await a.publish(channel('closing'), bytes('after close'));
			await waitFor(() => onA.received.length === 1, DELIVERY_TIMEOUT_MS);
			expect(onB.received).toEqual([]);
		});
	});
}
