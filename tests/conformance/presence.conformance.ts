/**
 * One behavioural contract for every PresenceStore: run against the in-process store and Redis.
 * `makeStores` opens a fresh, isolated backend (a new hub, or a new key prefix on a shared Redis)
 * with one store per entry of `timings`, all sharing that backend like relays sharing one Redis.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { PresenceStore } from '../../src/lib/server/presence/presence';
import { holdsFor, waitFor } from '../helpers/wait';

export interface PresenceTimings {
	ttlMs?: number;
	renewMs?: number;
}

export type MakePresenceStores = (timings: PresenceTimings[]) => Promise<PresenceStore[]>;

/** Short enough to watch a claim lapse in a test, long enough that the checks made before it
 * lapses still see it on a loaded two-core CI machine. */
const LAPSING_TTL_MS = 750;
/** A renewing instance gets 900 ms of slack for a late timer before its claim would lapse. */
const RENEWING_TTL_MS = 1_000;
const RENEW_MS = 100;
/** An instance that never renews within a test: it behaves like one that crashed. */
const NEVER_RENEW_MS = 600_000;
const LAPSE_TIMEOUT_MS = 5_000;

export function describePresenceConformance(name: string, makeStores: MakePresenceStores): void {
	describe(`PresenceStore conformance: ${name}`, () => {
		const opened: PresenceStore[] = [];

		async function open(timings: PresenceTimings[]): Promise<PresenceStore[]> {
			const stores = await makeStores(timings);
			opened.push(...stores);
			return stores;
		}

		/** User ids unique per test, so runs sharing one backend never see each other. */
		function user(label: string): string {
			return `${label}-${randomUUID()}`;
		}

		afterEach(async () => {
			await Promise.all(opened.splice(0).map((store) => store.close()));
		});

		it('reports nobody online before any connection', async () => {
			const [a] = await open([{}]);
			expect(await a.onlineUsers([user('nobody'), user('no-one')])).toEqual(new Set());
			expect(await a.onlineUsers([])).toEqual(new Set());
		});

		it('shows a user online on every instance while one instance holds a connection', async () => {
			const [a, b] = await open([{}, {}]);
			const alice = user('alice');

			await a.setConnections(alice, 1);

			expect(await a.onlineUsers([alice])).toEqual(new Set([alice]));
			expect(await b.onlineUsers([alice])).toEqual(new Set([alice]));
		});

		it('keeps a user online until every instance has set 0', async () => {
			const [a, b] = await open([{}, {}]);
			const alice = user('alice');
			await a.setConnections(alice, 1);
			await b.setConnections(alice, 3);

			await a.setConnections(alice, 0);
			expect(await a.onlineUsers([alice])).toEqual(new Set([alice]));

			await b.setConnections(alice, 2);
			await b.setConnections(alice, 0);
			expect(await a.onlineUsers([alice])).toEqual(new Set());
			expect(await b.onlineUsers([alice])).toEqual(new Set());
		});

		it('answers with exactly the online subset of the users asked about', async () => {
			const [a, b] = await open([{}, {}]);
			const [alice, bob, carol, dave] = [user('alice'), user('bob'), user('carol'), user('dave')];
			await a.setConnections(alice, 1);
			await b.setConnections(carol, 1);
			await b.setConnections(dave, 1);

			const online = await a.onlineUsers([alice, bob, carol, alice]);

			expect(online).toEqual(new Set([alice, carol]));
		});

		it('lets the claims of an instance that stopped renewing lapse after the TTL', async () => {
			const [dead, live] = await open([{ ttlMs: LAPSING_TTL_MS, renewMs: NEVER_RENEW_MS }, {}]);
			const alice = user('alice');
			await dead.setConnections(alice, 1);
			expect(await live.onlineUsers([alice])).toEqual(new Set([alice]));

			await waitFor(
				async () => (await live.onlineUsers([alice])).size === 0,
				LAPSE_TIMEOUT_MS,
				'the unrenewed claim to lapse'
			);
		});

		it('lets a lapsed claim go even while another instance keeps the user record alive', async () => {
			const [dead, live] = await open([{ ttlMs: LAPSING_TTL_MS, renewMs: NEVER_RENEW_MS }, {}]);
			const alice = user('alice');
			await dead.setConnections(alice, 1);
			// The live instance touches alice after the dead one, then lets go of its own claim.
			await live.setConnections(alice, 1);
			await live.setConnections(alice, 0);
			expect(await live.onlineUsers([alice])).toEqual(new Set([alice]));

			await waitFor(
				async () => (await live.onlineUsers([alice])).size === 0,
				LAPSE_TIMEOUT_MS,
				'the unrenewed claim to lapse'
			);
		});

		it('keeps a renewing instance online well past the TTL', async () => {
			const [a, b] = await open([{ ttlMs: RENEWING_TTL_MS, renewMs: RENEW_MS }, {}]);
			const alice = user('alice');
			await a.setConnections(alice, 1);

			await holdsFor(
				async () => (await b.onlineUsers([alice])).has(alice),
				RENEWING_TTL_MS * 2.5,
				'alice online'
			);
		});

		it('releases its claims on close, and closes idempotently', async () => {
			const [a, b] = await open([{}, {}]);
			const alice = user('alice');
			await a.setConnections(alice, 2);

			await Promise.all([a.close(), a.close()]);
			await a.close();

			expect(await b.onlineUsers([alice])).toEqual(new Set());
			await expect(a.setConnections(alice, 1)).rejects.toThrow(/closed/);
		});

		it('keeps separate backends apart', async () => {
			const [first] = await open([{}]);
			const [second] = await open([{}]);
			const alice = user('alice');

			await first.setConnections(alice, 1);

			expect(await first.onlineUsers([alice])).toEqual(new Set([alice]));
			expect(await second.onlineUsers([alice])).toEqual(new Set());
		});

		it('refuses a negative or fractional connection count', async () => {
			const [a] = await open([{}]);
			await expect(a.setConnections(user('alice'), -1)).rejects.toThrow(RangeError);
			await expect(a.setConnections(user('alice'), 1.5)).rejects.toThrow(RangeError);
		});
	});
}
