/**
 * Compaction's cost in DynamoDB, measured: sealing messages the way the relay does (steps of 100
 * consecutive messages, 100 rooms in turn) and reading history pages of 50, with the item layout
 * as shipped (runs of up to HISTORY_ITEM_MESSAGES messages per item) against one message per item
 * (the same store forced to single items), on the embedded dynalite. CPU is the whole process's
 * (the SDK on the event loop, dynalite on its thread); "event loop busy" is what the relay's own
 * thread pays.
 *
 *   npx tsx bench/history.ts
 *
 * Writes bench/results/history-<date>.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { monotonicFactory } from 'ulid';
import { DynamoHistoryStore } from '../src/lib/server/history/dynamo-history';
import { startEmbeddedDynamo } from '../src/lib/server/history/embedded-dynamo';
import { HISTORY_ITEM_MESSAGES, historyKey, type HistoryEntry } from '../src/lib/server/history/history-store';
import { prng } from '../tests/helpers/prng';
import { chatText } from './lib/chat-text';

const ROOMS = 100;
const STEPS = 200;
const STEP_MESSAGES = 100;
const PAGES = 200;
const PAGE_SIZE = 50;
const ROUNDS = 2;

const nextId = monotonicFactory();
const random = prng(7);
const text = (): string => chatText(random);

interface Measured {
	sealMs: number;
	sealCpuMs: number;
	sealLoopBusyMs: number;
	readMs: number;
	readCpuMs: number;
}

async function measure(endpoint: string, table: string, itemBytesMax: number | undefined): Promise<Measured> {
	const store = new DynamoHistoryStore({ endpoint, region: 'us-east-1', table, itemBytesMax });
	try {
		await store.ensureTable();
		const counts = new Array<number>(ROOMS).fill(0);
		const steps: { room: string; entries: HistoryEntry[] }[] = [];
		for (let s = 0; s < STEPS; s++) {
			const room = s % ROOMS;
			const from = counts[room];
			counts[room] += STEP_MESSAGES;
			const entries = Array.from({ length: STEP_MESSAGES }, (_, i) => ({
				key: historyKey(from + i),
				message: { id: nextId(), author: `user-${i % 10}`, ts: Date.UTC(2026, 0, 1) + from + i, kind: 'text' as const, text: text() }
			}));
			steps.push({ room: `room-${room}`, entries });
		}
		const elu = performance.eventLoopUtilization();
		let cpu = process.cpuUsage();
		let t0 = performance.now();
		for (const { room, entries } of steps) await store.putEntries(room, entries);
		const sealMs = performance.now() - t0;
		const sealCpu = process.cpuUsage(cpu);
		const sealLoopBusyMs = performance.eventLoopUtilization(elu).active;
		cpu = process.cpuUsage();
		t0 = performance.now();
		for (let p = 0; p < PAGES; p++) {
			const page = await store.pageBefore(`room-${p % ROOMS}`, historyKey(counts[p % ROOMS] - (p % 3) * 17), PAGE_SIZE);
			if (page.entries.length !== PAGE_SIZE) throw new Error(`page ${p}: ${page.entries.length} entries`);
		}
		const readMs = performance.now() - t0;
		const readCpu = process.cpuUsage(cpu);
		return {
			sealMs,
			sealCpuMs: (sealCpu.user + sealCpu.system) / 1000,
			sealLoopBusyMs,
			readMs,
			readCpuMs: (readCpu.user + readCpu.system) / 1000
		};
	} finally {
		await store.close();
	}
}

function best(runs: Measured[]): Measured {
	const min = (key: keyof Measured): number => Math.min(...runs.map((r) => r[key]));
	return { sealMs: min('sealMs'), sealCpuMs: min('sealCpuMs'), sealLoopBusyMs: min('sealLoopBusyMs'), readMs: min('readMs'), readCpuMs: min('readCpuMs') };
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-history-'));
const dynamo = await startEmbeddedDynamo(dir);
const shipped: Measured[] = [];
const single: Measured[] = [];
try {
	// Alternating rounds, fresh tables, so neither layout gets a warmer JIT or an emptier table.
	for (let round = 0; round < ROUNDS; round++) {
		single.push(await measure(dynamo.endpoint, `single_${round}`, 1));
		shipped.push(await measure(dynamo.endpoint, `runs_${round}`, undefined));
	}
} finally {
	await dynamo.close();
	await rm(dir, { recursive: true, force: true });
}

const sealed = STEPS * STEP_MESSAGES;
const a = best(shipped);
const b = best(single);
const results = {
	date: new Date().toISOString(),
	machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
	workload: { rooms: ROOMS, steps: STEPS, stepMessages: STEP_MESSAGES, pages: PAGES, pageSize: PAGE_SIZE, rounds: ROUNDS },
	itemMessages: HISTORY_ITEM_MESSAGES,
	runs: { shipped: a, single: b, all: { shipped, single } },
	perSealedMessageUs: { shipped: (a.sealCpuMs * 1000) / sealed, single: (b.sealCpuMs * 1000) / sealed }
};
const row = (name: string, x: number, y: number, unit: string, digits = 0): string =>
	`  ${name.padEnd(34)} runs of ${HISTORY_ITEM_MESSAGES} ${x.toFixed(digits).padStart(8)} ${unit}   one per item ${y.toFixed(digits).padStart(8)} ${unit}   ${(y / x).toFixed(2)}×`;
console.log(`sealing ${sealed.toLocaleString('en')} messages in steps of ${STEP_MESSAGES} over ${ROOMS} rooms, then ${PAGES} pages of ${PAGE_SIZE} (best of ${ROUNDS})`);
console.log(row('seal: wall', a.sealMs, b.sealMs, 'ms'));
console.log(row('seal: process CPU', a.sealCpuMs, b.sealCpuMs, 'ms'));
console.log(row('seal: event loop busy', a.sealLoopBusyMs, b.sealLoopBusyMs, 'ms'));
console.log(row('seal: CPU per sealed message', results.perSealedMessageUs.shipped, results.perSealedMessageUs.single, 'µs', 1));
console.log(row('read: wall', a.readMs, b.readMs, 'ms'));
console.log(row('read: process CPU', a.readCpuMs, b.readCpuMs, 'ms'));
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/history-${results.date.replace(/[:.]/g, '-')}.json`, import.meta.url);
await writeFile(file, JSON.stringify(results, null, 2));
console.log(`  written to ${file.pathname}`);
