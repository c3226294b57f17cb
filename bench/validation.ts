/**
 * What update validation costs the relay.
 *
 *   npx tsx bench/validation.ts
 *
 * 1. Per update, in isolation: validateUpdate() (shape pre-read + schema checks) on a typical
 *    one-message update, against rooms of 100 and 1,000 messages, beside Y.applyUpdate() of the
 *    same update — the work any Yjs relay does anyway.
 * 2. End to end: two relays (PGlite in memory, durable writes on), one with validation on, one
 *    with it off (RelayOptions.unsafeSkipValidation), each started once; every run gives 20 fresh
 *    rooms × 2 raw clients sending messages. Process CPU time per accepted update (relay, clients
 *    and PGlite share the process), median of 3 alternating runs each, after an uncounted
 *    warm-up run on each relay.
 * Loopback only; everything ends by itself. Results go to bench/results/validation-<date>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import * as Y from 'yjs';
import { newMessageId } from '../src/lib/shared/message-id';
import { emptyAdmitted, validateUpdate, type RoomIndex } from '../sync-server/validate';
import { RawClient } from '../tests/helpers/attacker';
import { RelayHarness } from '../tests/helpers/relay';

const ROOMS = 20;
const MESSAGES_PER_CLIENT = 150;

function message(author: string, text: string) {
	return { id: newMessageId(), author, ts: Date.now(), kind: 'text', text };
}

function isolated(roomSize: number): { validateUs: number; applyUs: number } {
	const room = new Y.Doc();
	const authors = ['u1', 'u2', 'u3'];
	const writers = authors.map(() => new Y.Doc());
	for (let i = 0; i < roomSize; i++) {
		const w = i % writers.length;
		Y.applyUpdate(writers[w], Y.encodeStateAsUpdate(room));
		const before = Y.encodeStateVector(writers[w]);
		writers[w].getArray('messages').push([message(authors[w], `message number ${i} with some ordinary text`)]);
		Y.applyUpdate(room, Y.encodeStateAsUpdate(writers[w], before));
	}
	const index: RoomIndex = { messageAuthors: new Map(), sealedIds: new Set(), clientOwners: new Map(), isAdmin: () => false };
	for (const m of room.getArray<{ id: string; author: string }>('messages')) index.messageAuthors.set(m.id, m.author);
	const sender = new Y.Doc();
	Y.applyUpdate(sender, Y.encodeStateAsUpdate(room));
	const updates: Uint8Array[] = [];
	for (let i = 0; i < 2000; i++) {
		const before = Y.encodeStateVector(sender);
		sender.getArray('messages').push([message('u9', `a new message ${i} of a typical length, say sixty characters`)]);
		updates.push(Y.encodeStateAsUpdate(sender, before));
	}
	let rejected = 0;
	let validateMs = 0;
	let applyMs = 0;
	const probe = new Y.Doc();
	Y.applyUpdate(probe, Y.encodeStateAsUpdate(room));
	for (const update of updates) {
		const t0 = performance.now();
		if (validateUpdate(probe, index, 'u9', update, Date.now(), emptyAdmitted())) rejected++;
		const t1 = performance.now();
		Y.applyUpdate(probe, update);
		validateMs += t1 - t0;
		applyMs += performance.now() - t1;
	}
	if (rejected > 0) throw new Error(`${rejected} legitimate updates were refused`);
	return { validateUs: (validateMs * 1000) / updates.length, applyUs: (applyMs * 1000) / updates.length };
}

/** A relay with validation on or off, started once and given fresh rooms for every run. */
function startRelay(skipValidation: boolean): Promise<RelayHarness> {
	return RelayHarness.start({ unsafeSkipValidation: skipValidation, limits: { updatesBurst: 1e9, updatesPerSecond: 1e9 } });
}

async function endToEnd(h: RelayHarness): Promise<{ cpuUsPerUpdate: number; wallMs: number }> {
	const pairs: Array<{ a: RawClient; b: RawClient; author: string }> = [];
	try {
		for (let r = 0; r < ROOMS; r++) {
			const alice = await h.account();
			const bob = await h.account();
			const roomId = await h.room([alice, bob]);
			const a = new RawClient(`${h.url}/${roomId}?token=${h.token(alice, roomId)}`);
			const b = new RawClient(`${h.url}/${roomId}?token=${h.token(bob, roomId)}`);
			await Promise.all([a.opened, b.opened]);
			pairs.push({ a, b, author: alice.id });
		}
		const cpu = process.cpuUsage();
		const start = performance.now();
		for (let i = 0; i < MESSAGES_PER_CLIENT; i++) {
			for (const { a, author } of pairs) {
				const before = Y.encodeStateVector(a.doc);
				a.doc.getArray('messages').push([message(author, `message ${i} of a typical length, say sixty characters`)]);
				a.sendUpdate(Y.encodeStateAsUpdate(a.doc, before));
			}
			await new Promise((resolve) => setImmediate(resolve));
		}
		const deadline = Date.now() + 60_000;
		while (pairs.some(({ b }) => b.doc.getArray('messages').length < MESSAGES_PER_CLIENT)) {
			if (Date.now() > deadline) throw new Error('messages did not arrive');
			await new Promise((resolve) => setTimeout(resolve, 5));
		}
		const wallMs = performance.now() - start;
		const used = process.cpuUsage(cpu);
		// The clients run in this process too; their share is the same in both runs.
		return { cpuUsPerUpdate: (used.user + used.system) / (ROOMS * MESSAGES_PER_CLIENT), wallMs };
	} finally {
		for (const { a, b } of pairs) {
			a.close();
			b.close();
		}
	}
}

const t0 = performance.now();
const progress = (message: string): boolean => process.stderr.write(`[validation ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${message}\n`);
const results = {
	date: (progress('isolated: rooms of 100 and 1,000 messages, twice'), new Date().toISOString()),
	machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
	// The first pass warms the JIT up; the figures come from the second.
	isolated: (isolated(100), isolated(1000), { room100: isolated(100), room1000: isolated(1000) }),
	endToEnd: await alternate(3)
};

/** Runs off/on pairs `n` times and keeps each side's median: PGlite's cost dominates and varies. */
async function alternate(n: number) {
	const off: Array<{ cpuUsPerUpdate: number; wallMs: number }> = [];
	const on: Array<{ cpuUsPerUpdate: number; wallMs: number }> = [];
	// The first end-to-end runs pay for JIT warm-up (the process's first took ~1.5× the CPU of the
	// later ones): not counted, so the first "off" run does not carry it. One relay of each kind for every run: starting one (embedded PostgreSQL and DynamoDB) took
	// longer than the run it served.
	const relays = { off: await startRelay(true), on: await startRelay(false) };
	try {
		progress('end to end: one warm-up run on each relay (not counted)');
		await endToEnd(relays.off);
		await endToEnd(relays.on);
		progress(`end to end: ${n} × (validation off, on)`);
		for (let i = 0; i < n; i++) {
			off.push(await endToEnd(relays.off));
			on.push(await endToEnd(relays.on));
			progress(`pair ${i + 1}: off ${off[i].cpuUsPerUpdate.toFixed(0)} µs (${(off[i].wallMs / 1000).toFixed(1)} s), on ${on[i].cpuUsPerUpdate.toFixed(0)} µs (${(on[i].wallMs / 1000).toFixed(1)} s)`);
		}
	} finally {
		await Promise.all([relays.off.close(), relays.on.close()]);
	}
	const median = (list: typeof off) => [...list].sort((a, b) => a.cpuUsPerUpdate - b.cpuUsPerUpdate)[Math.floor(list.length / 2)];
	return { validationOff: median(off), validationOn: median(on), runs: { off, on } };
}
const on = results.endToEnd.validationOn.cpuUsPerUpdate;
const off = results.endToEnd.validationOff.cpuUsPerUpdate;
console.log('update validation cost');
console.log(`  isolated, 100-message room:   validate ${results.isolated.room100.validateUs.toFixed(1)} µs/update, Y.applyUpdate ${results.isolated.room100.applyUs.toFixed(1)} µs`);
console.log(`  isolated, 1,000-message room: validate ${results.isolated.room1000.validateUs.toFixed(1)} µs/update, Y.applyUpdate ${results.isolated.room1000.applyUs.toFixed(1)} µs`);
console.log(`  relay end to end (CPU per accepted update, clients included): on ${on.toFixed(0)} µs, off ${off.toFixed(0)} µs → ratio ${(on / off).toFixed(2)}×`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/validation-${results.date.replace(/[:.]/g, '-')}.json`, import.meta.url);
await writeFile(file, JSON.stringify(results, null, 2));
console.log(`  written to ${file.pathname}`);
process.exit(0);
