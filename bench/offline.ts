/**
 * Offline benchmarks (issue 3), in Chromium against a real server on 127.0.0.1:
 *
 * 1. Time to show a cached room offline: with the network cut, reload a room of 50 messages and
 *    measure from navigation start to the newest message painted (the service worker serves the
 *    shell, the app boots from localStorage and IndexedDB). Median of 20 reloads; the same room
 *    reloaded online is measured for comparison.
 * 2. Outbox drain: 100 messages written offline, then the network comes back; from
 *    `setOffline(false)` to the 100th message `sent` (acknowledged durable by the relay). 5 runs.
 *
 * Usage: npx tsx bench/offline.ts — prints a table and writes bench/results/offline-<date>.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { ApiClient, uniqueName } from '../tests/helpers/api';
import { connectionState, launchChromium, logInThroughForm, sendMessage, shownMessages, waitForServiceWorker } from '../tests/helpers/browser';
import { ROOT, startServer } from '../tests/helpers/server';
import { waitFor } from '../tests/helpers/wait';
import { median, percentile, round } from './lib/stats';

const ROOM_MESSAGES = 50;
const RELOADS = 20;
const OUTBOX_MESSAGES = 100;
const DRAIN_RUNS = 5;
const WAIT_MS = 60_000;

function progress(message: string): void {
	process.stderr.write(`[bench] ${message}\n`);
}

/**
 * Injected before any page script: notes `performance.now()` (ms since navigation start) just
 * after the frame that first shows the message `newestId`. A string, not a function: tsx's
 * esbuild adds `__name()` helpers to functions, which do not exist in the page.
 */
function newestPaintScript(newestId: string): string {
	return `(() => {
		const target = '[data-message-id="' + ${JSON.stringify(newestId)} + '"]';
		const observer = new MutationObserver(() => {
			if (!document.querySelector(target)) return;
			observer.disconnect();
			// rAF runs before the frame is painted; a task queued from it runs after that paint.
			requestAnimationFrame(() => {
				const channel = new MessageChannel();
				channel.port1.onmessage = () => { window.benchPaintedAt = performance.now(); };
				channel.port2.postMessage(null);
			});
		});
		observer.observe(document, { subtree: true, childList: true });
	})();`;
}

async function timeReloads(page: Page, count: number): Promise<number[]> {
	const times: number[] = [];
	for (let i = 0; i < count; i += 1) {
		await page.reload();
		await page.waitForFunction(() => typeof (window as unknown as { benchPaintedAt?: number }).benchPaintedAt === 'number', null, { timeout: WAIT_MS });
		times.push(await page.evaluate(() => (window as unknown as { benchPaintedAt: number }).benchPaintedAt));
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
				medianReconnectMs: round(median(drains.map((d) => d.reconnectMs))),
				samplesMs: drains.map((d) => round(d.drainMs))
			}
		};
		console.log('\nOffline (Chromium, 127.0.0.1)');
		console.log('------------------------------');
		console.log(`  cached room shown offline   median ${summary.cachedRoomOffline.medianMs} ms, p90 ${summary.cachedRoomOffline.p90Ms} ms (${RELOADS} reloads, navigation start → newest of ${ROOM_MESSAGES} messages painted)`);
		console.log(`  same room reloaded online   median ${summary.sameRoomOnline.medianMs} ms, p90 ${summary.sameRoomOnline.p90Ms} ms`);
		console.log(`  outbox drain (${OUTBOX_MESSAGES} messages)   median ${summary.outboxDrain.medianMs} ms (setOffline(false) → 100th sent; reconnect ${summary.outboxDrain.medianReconnectMs} ms), runs: ${summary.outboxDrain.samplesMs.join(', ')} ms`);
		const dir = path.join(ROOT, 'bench', 'results');
		await mkdir(dir, { recursive: true });
		const file = path.join(dir, `offline-${summary.date.replace(/[:.]/g, '-')}.json`);
		await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
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
