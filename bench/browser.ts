/**
 * The browser with a long room (issue 6, scenario 6), in Chromium against a real server on 127.0.0.1:
 *
 * A room is seeded with 10,000 messages through the real write path (scripts/seed.ts), and the
 * relay's compaction is given time to catch up. A member signs in, opens /rooms/<id> once (the
 * room lands in IndexedDB, the service worker caches the shell), then:
 *
 * 1. navigation → newest message painted, on later navigations to the same room (median of 10);
 * 2. long tasks (PerformanceObserver 'longtask', ≥ 50 ms on the main thread) while scrolling up
 *    with the mouse wheel through several pages of history: the list widens its window, then
 *    loads older pages from GET /api/rooms/:id/messages.
 *
 * Usage: npx tsx bench/browser.ts — prints a table and writes bench/results/browser-<date>.json.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { seedRoom } from '../scripts/seed';
import { ApiClient } from '../tests/helpers/api';
import { launchChromium, logInThroughForm } from '../tests/helpers/browser';
import { ROOT, startServer } from '../tests/helpers/server';
import { waitCompacted } from './peers/history';
import { socketUrl } from './peers/ours-api';
import { median, percentile, round, sleep } from './lib/stats';
import { newestPaintScript, waitForNewestPaint } from './lib/paint';
import { writeBenchResult } from './lib/results';

const MESSAGES = 10_000;
const NAVIGATIONS = 10;
/** Wheel steps while scrolling up, and the pixels of each. */
const WHEEL_STEPS = 100;
const WHEEL_PX = 1_500;
const WHEEL_GAP_MS = 100;
const LIVE_MESSAGES_MAX = 1_000;
const WAIT_MS = 60_000;

function progress(message: string): void {
	process.stderr.write(`[browser] ${message}\n`);
}

interface PageState {
	longTasks: { start: number; duration: number }[];
	seen: number;
	rendered: number;
}

function pageState(page: Page): Promise<PageState> {
	return page.evaluate(() => {
		const w = window as unknown as { benchLongTasks: { start: number; duration: number }[]; benchSeen: Set<string> };
		return { longTasks: w.benchLongTasks, seen: w.benchSeen.size, rendered: document.querySelectorAll('[data-message-id]').length };
	});
}

async function main(): Promise<void> {
	progress('ensuring the web app is built');
	execFileSync(process.execPath, ['scripts/ensure-build.js'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
	const server = await startServer();
	const browser = await launchChromium();
	try {
		progress(`seeding a room with ${MESSAGES} messages (scripts/seed.ts)`);
		const seeded = await seedRoom({ baseUrl: server.baseUrl, messages: MESSAGES, writers: 8 });
		if (seeded.sent !== MESSAGES) throw new Error(`seeding stored ${seeded.sent} of ${MESSAGES}`);
		const member = new ApiClient(server.baseUrl);
		const login = await member.request('POST', '/api/auth/login', { username: seeded.usernames[1], password: seeded.passwords[1] }, { origin: new URL(server.baseUrl).origin });
		if (login.status !== 200) throw new Error(`login: ${login.status}`);
		const caughtUp = await waitCompacted(() => socketUrl(member, seeded.roomId), seeded.roomId, LIVE_MESSAGES_MAX, 300_000);
		progress(`seeded in ${round(seeded.ms / 1000, 1)} s; compaction caught up ${round(caughtUp.ms / 1000, 1)} s later (${caughtUp.state.messages} messages live)`);

		const context = await browser.newContext({ baseURL: server.baseUrl, viewport: { width: 1280, height: 900 } });
		const page = await context.newPage();
		await logInThroughForm(page, seeded.usernames[1], seeded.passwords[1]);
		const roomPath = `/rooms/${seeded.roomId}`;

		// First visit: the room lands on the device. The newest message is the list's last one.
		const t0 = performance.now();
		await page.goto(roomPath);
		await page.locator('[data-message-id]').last().waitFor({ timeout: WAIT_MS });
		await page.waitForFunction(
			(id) => {
				const all = document.querySelectorAll('[data-message-id]');
				return all.length > 0 && all[all.length - 1].getAttribute('data-message-id') === id;
			},
			caughtUp.state.newestId,
			{ timeout: WAIT_MS }
		);
		const firstVisitMs = round(performance.now() - t0);
		const newestId = caughtUp.state.newestId!;
		await sleep(2_000); // IndexedDB writes settle
		await page.addInitScript({ content: newestPaintScript(newestId, { track: true }) });

		progress(`${NAVIGATIONS} navigations to the cached room`);
		const times: number[] = [];
		for (let i = 0; i < NAVIGATIONS; i++) {
			await page.goto('/');
			await page.goto(roomPath);
			times.push(await waitForNewestPaint(page, WAIT_MS));
		}
		const loadLongTasks = (await pageState(page)).longTasks;

		progress(`scrolling up: ${WHEEL_STEPS} wheel steps of ${WHEEL_PX} px`);
		await sleep(1_000);
		const box = await page.locator('.scroller').first().boundingBox();
		if (!box) throw new Error('no message scroller on the page');
		await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
		let historyPages = 0;
		page.on('request', (request) => {
			if (new URL(request.url()).pathname === `/api/rooms/${seeded.roomId}/messages`) historyPages++;
		});
		const before = await pageState(page);
		const scrollStart = await page.evaluate(() => performance.now());
		for (let i = 0; i < WHEEL_STEPS; i++) {
			await page.mouse.wheel(0, -WHEEL_PX);
			await sleep(WHEEL_GAP_MS);
		}
		await sleep(1_000); // the last page of history arrives and renders
		const scrollEnd = await page.evaluate(() => performance.now());
		const after = await pageState(page);
		const scrollTasks = after.longTasks.filter((t) => t.start >= scrollStart);
		const durations = scrollTasks.map((t) => t.duration);

		const summary = {
			date: new Date().toISOString(),
			machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadAvg: round(os.loadavg()[0], 2) },
			room: {
				messages: MESSAGES,
				seedMs: seeded.ms,
				compactionWaitMs: round(caughtUp.ms),
				liveMessages: caughtUp.state.messages,
				liveDocBytes: caughtUp.state.bytes
			},
			firstVisitMs,
			newestPainted: { navigations: NAVIGATIONS, medianMs: round(median(times)), p90Ms: round(percentile(times, 90)), maxMs: round(Math.max(...times)), samplesMs: times.map((t) => round(t)) },
			longTasksDuringLoad: { count: loadLongTasks.length, totalMs: round(loadLongTasks.reduce((s, t) => s + t.duration, 0)), maxMs: round(Math.max(0, ...loadLongTasks.map((t) => t.duration))) },
			scrolling: {
				wheelSteps: WHEEL_STEPS,
				wheelPx: WHEEL_PX,
				ms: round(scrollEnd - scrollStart),
				messagesSeenBefore: before.seen,
				messagesSeenAfter: after.seen,
				renderedAfter: after.rendered,
				/** GET /api/rooms/:id/messages requests while scrolling (pages of older history). */
				historyPages,
				longTasks: scrollTasks.length,
				longTaskTotalMs: round(durations.reduce((s, d) => s + d, 0)),
				longTaskMaxMs: round(Math.max(0, ...durations)),
				longTaskDurationsMs: durations.map((d) => round(d))
			}
		};
		const s = summary.scrolling;
		console.log('\nBrowser: a 10,000-message room in Chromium (127.0.0.1)');
		console.log('-------------------------------------------------------');
		console.log(`  room                          ${MESSAGES} messages seeded in ${round(seeded.ms / 1000, 1)} s; live document ${summary.room.liveMessages} messages, ${round(summary.room.liveDocBytes / 1024, 1)} KiB (older ones in history)`);
		console.log(`  first visit → newest shown    ${firstVisitMs} ms (from page.goto, network)`);
		console.log(`  cached room, newest painted   median ${summary.newestPainted.medianMs} ms, p90 ${summary.newestPainted.p90Ms} ms, max ${summary.newestPainted.maxMs} ms (${NAVIGATIONS} navigations, navigation start → newest message painted)`);
		console.log(`  long tasks while loading      ${summary.longTasksDuringLoad.count} (total ${summary.longTasksDuringLoad.totalMs} ms, longest ${summary.longTasksDuringLoad.maxMs} ms) on the last navigation`);
		console.log(`  scrolling up                  ${s.wheelSteps} × ${s.wheelPx} px in ${s.ms} ms: ${s.messagesSeenAfter - s.messagesSeenBefore} older messages shown, ${s.historyPages} history pages fetched (${s.renderedAfter} rendered at the end)`);
		console.log(`  long tasks while scrolling    ${s.longTasks} (total ${s.longTaskTotalMs} ms, longest ${s.longTaskMaxMs} ms)`);
		const file = await writeBenchResult('browser', summary.date, summary);
		progress(`wrote ${path.relative(ROOT, file)}`);
	} finally {
		await browser.close();
		await server.stop();
		await server.cleanup();
	}
}

main().then(
	() => process.exit(0),
	(error: unknown) => {
		console.error(error);
		process.exit(1);
	}
);
