/**
 * Offline benchmarks (issue 3), in Chromium against a real server on 127.0.0.1:
 *
 * 1. Time to show a cached room offline: with the network cut, reload a room of 50 messages and
 *    measure from navigation start to the newest message painted (the service worker serves the
 *    shell, the app boots from localStorage and IndexedDB). Median of 12 reloads; the same room
 *    reloaded online is measured for comparison.
 * 2. Outbox drain: 100 messages written offline, then the network comes back; from
 *    `setOffline(false)` to the 100th message `sent` (acknowledged durable by the relay). 5 runs.
 *
 * Usage: npx tsx bench/offline.ts — prints a table and writes bench/results/offline-<date>.json.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { ApiClient, uniqueName } from '../tests/helpers/api';
import { connectionState, launchChromium, logInThroughForm, sendMessage, shownMessages, waitForServiceWorker } from '../tests/helpers/browser';
import { ROOT, startServer } from '../tests/helpers/server';
import { waitFor } from '../tests/helpers/wait';
import { median, percentile, round } from './lib/stats';
import { newestPaintScript, waitForNewestPaint } from './lib/paint';
import { writeBenchResult } from './lib/results';

const ROOM_MESSAGES = 50;
const RELOADS = 12;
const OUTBOX_MESSAGES = 100;
const DRAIN_RUNS = 5;
const WAIT_MS = 60_000;

function progress(message: string): void {
	process.stderr.write(`[bench] ${message}\n`);
}

async function timeReloads(page: Page, count: number): Promise<number[]> {
	const times: number[] = [];
	for (let i = 0; i < count; i += 1) {
		await page.reload();
		times.push(await waitForNewestPaint(page, WAIT_MS));
	}
	return times;
}

async function drainOnce(page: Page, setOffline: (offline: boolean) => Promise<void>, run: number): Promise<{ drainMs: number; reconnectMs: number }> {
	await setOffline(true);
	await waitFor(async () => (await connectionState(page)) === 'offline', WAIT_MS, 'offline');
	const tag = `r${run}-${uniqueName('q')}`;
	for (let i = 1; i <= OUTBOX_MESSAGES; i += 1) await sendMessage(page, `queued ${i} ${tag}`);
	const queued = async () => (await shownMessages(page)).filter((m) => m.text.endsWith(tag));
	const before = await queued();
	if (before.length !== OUTBOX_MESSAGES || before.some((m) => m.status !== 'pending')) throw new Error('the outbox is not 100 pending messages');

	const start = performance.now();
	let reconnectMs = Number.NaN;
	await setOffline(false);
	await waitFor(
		async () => {
			if (Number.isNaN(reconnectMs) && (await connectionState(page)) === 'online') reconnectMs = performance.now() - start;
			return (await queued()).every((m) => m.status !== 'pending');
		},
		WAIT_MS,
		'the outbox drained'
	);
	return { drainMs: performance.now() - start, reconnectMs };
}

async function main(): Promise<void> {
	progress('ensuring the web app is built');
	execFileSync(process.execPath, ['scripts/ensure-build.js'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
	const server = await startServer();
	const browser = await launchChromium();
	try {
		const ana = new ApiClient(server.baseUrl);
		const bruno = new ApiClient(server.baseUrl);
		const anaName = uniqueName('ana');
		await ana.signup(anaName, 'correct horse battery', 'Ana');
		await bruno.signup(uniqueName('bruno'), 'correct horse battery', 'Bruno');
		const room = await ana.openDirect(bruno.user!.username);

		const context = await browser.newContext({ baseURL: server.baseUrl });
		const page = await context.newPage();
		await logInThroughForm(page, anaName);
		await page.goto(`/rooms/${room.id}`);
		progress(`seeding a room with ${ROOM_MESSAGES} messages`);
		for (let i = 1; i <= ROOM_MESSAGES; i += 1) await sendMessage(page, `message ${i}`);
		await waitFor(async () => (await shownMessages(page)).every((m) => m.status !== 'pending'), WAIT_MS, 'seeded');
		await waitForServiceWorker(page);
		const newestId = (await shownMessages(page)).at(-1)!.id;
		await page.addInitScript({ content: newestPaintScript(newestId) });

		progress(`${RELOADS} reloads online, then ${RELOADS} offline`);
		const online = await timeReloads(page, RELOADS);
		await context.setOffline(true);
		const offline = await timeReloads(page, RELOADS);
		await context.setOffline(false);

		progress(`outbox: ${DRAIN_RUNS} × ${OUTBOX_MESSAGES} messages written offline`);
		const drains = [];
		for (let run = 1; run <= DRAIN_RUNS; run += 1) drains.push(await drainOnce(page, (off) => context.setOffline(off), run));

		const reconnects = drains.map((d) => d.reconnectMs).filter(Number.isFinite);
		const summary = {
			date: new Date().toISOString(),
			machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadAvg: round(os.loadavg()[0], 2) },
			cachedRoomOffline: {
				messages: ROOM_MESSAGES,
				reloads: RELOADS,
				medianMs: round(median(offline)),
				p90Ms: round(percentile(offline, 90)),
				samplesMs: offline.map((t) => round(t))
			},
			sameRoomOnline: { medianMs: round(median(online)), p90Ms: round(percentile(online, 90)), samplesMs: online.map((t) => round(t)) },
			outboxDrain: {
				messages: OUTBOX_MESSAGES,
				runs: DRAIN_RUNS,
				medianMs: round(median(drains.map((d) => d.drainMs))),
				// Runs whose polls never caught the 'online' state before the outbox drained have none.
				medianReconnectMs: reconnects.length > 0 ? round(median(reconnects)) : null,
				reconnectsSeen: reconnects.length,
				samplesMs: drains.map((d) => round(d.drainMs))
			}
		};
		console.log('\nOffline (Chromium, 127.0.0.1)');
		console.log('------------------------------');
		console.log(`  cached room shown offline   median ${summary.cachedRoomOffline.medianMs} ms, p90 ${summary.cachedRoomOffline.p90Ms} ms (${RELOADS} reloads, navigation start → newest of ${ROOM_MESSAGES} messages painted)`);
		console.log(`  same room reloaded online   median ${summary.sameRoomOnline.medianMs} ms, p90 ${summary.sameRoomOnline.p90Ms} ms`);
		console.log(`  outbox drain (${OUTBOX_MESSAGES} messages)   median ${summary.outboxDrain.medianMs} ms (setOffline(false) → 100th sent; reconnect ${summary.outboxDrain.medianReconnectMs ?? '–'} ms, seen in ${reconnects.length} of ${DRAIN_RUNS} runs), runs: ${summary.outboxDrain.samplesMs.join(', ')} ms`);
		const file = await writeBenchResult('offline', summary.date, summary);
		progress(`wrote ${path.relative(ROOT, file)}`);
	} finally {
		await browser.close();
		await server.stop();
		await server.cleanup();
	}
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
