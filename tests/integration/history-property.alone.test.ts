/**
 * Property: whatever the interleaving of sends from several clients, offline periods, relay
 * restarts, and the compactions and epoch rollovers the traffic causes (the live document keeps
 * only a few messages here, so both happen often), every message a client saw acknowledged is in
 * the history API exactly once, and every client shows the same order as the API.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pageMessages, type Cursor, type PagedMessage } from '../../src/lib/server/messages';
import { ChatClient } from '../helpers/chat-client';
import { RelayHarness } from '../helpers/relay';
import { waitFor } from '../helpers/wait';

const LIVE_MAX = 6;
const CLIENTS = 3;

let h: RelayHarness;

beforeAll(async () => {
	h = await RelayHarness.start({
		liveMessagesMax: LIVE_MAX,
		rollover: { connected: 2 * LIVE_MAX, idle: LIVE_MAX / 2 },
		limits: { updatesBurst: 10_000, updatesPerSecond: 10_000 },
		idleUnloadMs: 50
	});
});

afterAll(async () => {
	await h?.close();
});

type Action =
	| { kind: 'send'; client: number; count: number }
	| { kind: 'offline'; client: number }
	| { kind: 'online'; client: number }
	| { kind: 'restart' }
	| { kind: 'settle' };

const action: fc.Arbitrary<Action> = fc.oneof(
	{ weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), client: fc.nat(CLIENTS - 1), count: fc.integer({ min: 1, max: 4 }) }) },
	{ weight: 2, arbitrary: fc.record({ kind: fc.constant('offline' as const), client: fc.nat(CLIENTS - 1) }) },
	{ weight: 2, arbitrary: fc.record({ kind: fc.constant('online' as const), client: fc.nat(CLIENTS - 1) }) },
	{ weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
	{ weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) }
);

async function history(roomId: string): Promise<PagedMessage[]> {
	const pages: PagedMessage[][] = [];
	let cursor: Cursor | null = null;
	for (;;) {
		const page = await pageMessages(h.db, h.history, roomId, cursor, 5);
		pages.unshift(page.messages);
		if (page.nextBefore === null) return pages.flat();
		const raw = JSON.parse(Buffer.from(page.nextBefore, 'base64url').toString()) as { b: string; p: number };
		cursor = { before: raw.b, position: raw.p };
	}
}

function sameIds(a: string[], b: string[]): boolean {
	return a.length === b.length && a.every((id, i) => id === b[i]);
}

function allAcked(clients: ChatClient[]): boolean {
	return clients.every((c) => c.connected && [...c.written.keys()].every((id) => c.acked.has(id)));
}

it('every acknowledged message is in the history API exactly once, in the order every client shows', async () => {
	let runs = 0;
	await fc.assert(
		fc.asyncProperty(fc.array(action, { minLength: 10, maxLength: 40 }), async (actions) => {
			runs++;
			const accounts = await Promise.all(Array.from({ length: CLIENTS }, () => h.account()));
			const roomId = await h.room(accounts);
			const clients = accounts.map((account) => new ChatClient(account.id, () => `${h.url}/${roomId}?token=${h.token(account, roomId)}`));
			let n = 0;
			try {
				for (const c of clients) c.online();
				for (const step of actions) {
					if (step.kind === 'send') for (let i = 0; i < step.count; i++) clients[step.client].send(`m${n++}`);
					else if (step.kind === 'offline') {
						// A device drops off after it has synced (its document then belongs to an epoch).
						const c = clients[step.client];
						if (c.wantsOnline) await waitFor(() => c.connected, 10_000, 'connected before going offline');
						c.offline();
					}
					else if (step.kind === 'online') clients[step.client].online();
					else if (step.kind === 'restart') await h.restart();
					else await waitFor(() => clients.every((c) => !c.connected || [...c.written.keys()].every((id) => c.acked.has(id))), 20_000, 'settled');
				}
				for (const c of clients) c.online();
				await waitFor(() => allAcked(clients), 30_000, 'every message acknowledged').catch((error: Error) => {
					const state = clients.map((c) => ({
						connected: c.connected,
						unacked: [...c.written.values()].filter((m) => !c.acked.has(m.id)).map((m) => `${m.text}${c.messages().some((d) => d.id === m.id) ? ' (in document)' : ''}`),
						inDoc: c.messages().length,
						closes: c.closeCodes,
						rejections: c.rejections
					}));
					throw new Error(`${error.message}: ${JSON.stringify(state)}`);
				});
				// Compactions and rollovers may still be under way: wait for a quiet moment in which
				// every client shows the same live document and it is the tail of the API's sequence.
				let api: string[] = [];
				const liveOf = (c: ChatClient): string[] => c.messages().map((m) => m.id);
				const written = clients.flatMap((c) => [...c.written.keys()]);
				await waitFor(
					async () => {
						const live = liveOf(clients[0]);
						// An empty log is a client still syncing after a move, unless nothing was sent.
						if (!allAcked(clients) || (live.length === 0 && written.length > 0)) return false;
						if (!clients.every((c) => sameIds(liveOf(c), live))) return false;
						api = (await history(roomId)).map((m) => m.id);
						return sameIds(api.slice(api.length - live.length), live);
					},
					20_000,
					'clients agree with the history API'
				);
				// Exactly once: no id twice, and every acknowledged message present.
				const seen = new Set<string>();
				expect(api.filter((id) => seen.size === seen.add(id).size), 'ids twice in the history API').toEqual([]);
				expect(api.slice().sort()).toEqual(written.slice().sort());
				// What the relay took was acknowledged before any 4410 told a client to start over.
				for (const c of clients) expect([...c.takenUnacknowledged]).toEqual([]);
			} finally {
				for (const c of clients) c.destroy();
			}
		}),
		{ numRuns: 80, endOnFailure: true, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) }
	);
	expect(runs).toBeGreaterThanOrEqual(80);
	// The runs did exercise what the property is about: compactions, rollovers, late carries.
	const [stats] = await h.db.query<{ compacted: string; rolled: string; carried: string }>(
		`select (select count(*) from rooms where history_count > 0) as compacted,
		        (select count(*) from room_epochs) as rolled,
		        (select count(*) from room_updates u join room_epochs e on e.room_id = u.room_id and e.epoch = u.epoch) as carried`
	);
	console.info('property runs:', stats);
	expect(Number(stats.compacted)).toBeGreaterThan(0);
	expect(Number(stats.rolled)).toBeGreaterThan(0);
	// Each closed epoch keeps one row of its own; more are updates carried in after it closed.
	expect(Number(stats.carried)).toBeGreaterThan(Number(stats.rolled));
}, 600_000);
