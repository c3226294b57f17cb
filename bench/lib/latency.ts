/**
 * Message latency browser → browser: A presses Enter, B's DOM shows the message. Both instants are
 * taken inside the pages (performance.timeOrigin + performance.now(), one machine clock), so no
 * Playwright round-trip is counted. Closed loop: each message arrives before the next is sent.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ApiClient, uniqueName } from '../../tests/helpers/api';
import { launchChromium } from '../../tests/helpers/browser';
import { startServer, type TestServer } from '../../tests/helpers/server';
import { round, sleep, waitHealthy } from './stats';

const ARRIVAL_TIMEOUT_MS = 10_000;
/**
 * Each message costs each page about two awareness frames (A: typing on, typing off; B: stock
 * y-websocket re-sends every awareness update it applies). The relay allows 10 a second per socket
 * (burst 30) and closes a socket after 20 refusals (4429), so an unpaced loop measures reconnects.
 * One message per 250 ms keeps both pages at about 8 awareness frames a second.
 */
const MIN_CYCLE_MS = 250;

/** Counts the page's WebSocket closes (code and reason) without changing their behaviour. */
const SOCKET_WATCH = `(() => {
	window.__closes = [];
	const Native = window.WebSocket;
	window.WebSocket = class extends Native {
		constructor(...args) {
			super(...args);
			this.addEventListener('close', (e) => window.__closes.push(e.code + ' ' + e.reason));
		}
	};
})()`;

// Plain strings, not functions: tsx's transform can inject helpers that do not exist in the page.
const SENDER_SCRIPT = `(() => {
	window.__enterAt = null;
	document.addEventListener('keydown', (e) => {
		const t = e.target;
		if (e.key === 'Enter' && !e.shiftKey && t instanceof HTMLTextAreaElement && t.getAttribute('aria-label') === 'Message')
			window.__enterAt = performance.timeOrigin + performance.now();
	}, true);
})()`;

const RECEIVER_SCRIPT = `(() => {
	const b = (window.__bench = { target: null, arrivedAt: null, resolve: null });
	const check = () => {
		if (b.target === null || b.arrivedAt !== null) return;
		for (const el of document.querySelectorAll('[role="log"] [data-message-id]')) {
			if (el.textContent.includes(b.target)) {
				b.arrivedAt = performance.timeOrigin + performance.now();
				if (b.resolve) b.resolve(b.arrivedAt);
				return;
			}
		}
	};
	new MutationObserver(check).observe(document.body, { childList: true, subtree: true, characterData: true });
	window.__arm = (text) => { b.target = text; b.arrivedAt = null; b.resolve = null; };
	window.__arrival = (ms) => new Promise((resolve, reject) => {
		if (b.arrivedAt !== null) return resolve(b.arrivedAt);
		b.resolve = resolve;
		setTimeout(() => reject(new Error('message ' + b.target + ' did not appear within ' + ms + ' ms')), ms);
	});
})()`;

export interface LatencyResult {
	chromium: string;
	warmup: number;
	samplesMs: number[];
	visibility: string[];
	minCycleMs: number;
	/** WebSocket closes seen by either page during the measured loop: any means a reconnect was timed. */
	socketCloses: string[];
}

async function openRoom(browser: Browser, server: TestServer, api: ApiClient, roomId: string): Promise<{ context: BrowserContext; page: Page }> {
	const context = await browser.newContext({ baseURL: server.baseUrl });
	const [name, ...rest] = api.cookie!.split('=');
	await context.addCookies([{ name, value: rest.join('='), url: server.baseUrl }]);
	await context.addInitScript(SOCKET_WATCH);
	const page = await context.newPage();
	page.setDefaultTimeout(15_000);
	await page.goto(`/rooms/${roomId}`);
	await page.getByRole('log').waitFor();
	await page.getByRole('textbox', { name: 'Message' }).waitFor();
	return { context, page };
}

export async function measureLatency(samples = 100, warmup = 5): Promise<LatencyResult> {
	let server: TestServer | undefined;
	let browser: Browser | undefined;
	try {
		server = await startServer();
		await waitHealthy(server.baseUrl);
		const alice = new ApiClient(server.baseUrl);
		const bob = new ApiClient(server.baseUrl);
		await alice.signup(uniqueName('alice'));
		const bobUser = await bob.signup(uniqueName('bob'));
		const room = await alice.openDirect(bobUser.username);

		browser = await launchChromium();
		const a = await openRoom(browser, server, alice, room.id);
		const b = await openRoom(browser, server, bob, room.id);
		await a.page.evaluate(SENDER_SCRIPT);
		await b.page.evaluate(RECEIVER_SCRIPT);
		const visibility = [
			`A: ${await a.page.evaluate('document.visibilityState')}`,
			`B: ${await b.page.evaluate('document.visibilityState')}`
		];
		const composer = a.page.getByRole('textbox', { name: 'Message' });
		const tag = Math.random().toString(36).slice(2, 8);
		const samplesMs: number[] = [];
		for (let i = 0; i < warmup + samples; i++) {
			const cycleStart = Date.now();
			const text = `bench-${tag}-${String(i).padStart(4, '0')}`;
			await b.page.evaluate(`window.__arm(${JSON.stringify(text)})`);
			await a.page.evaluate('window.__enterAt = null');
			await composer.fill(text);
			await composer.press('Enter');
			const arrivedAt = (await b.page.evaluate(`window.__arrival(${ARRIVAL_TIMEOUT_MS})`)) as number;
			const enterAt = (await a.page.evaluate('window.__enterAt')) as number | null;
			if (enterAt === null) throw new Error(`the Enter keydown for ${text} was not seen in page A`);
			if (i >= warmup) samplesMs.push(round(arrivedAt - enterAt, 2));
			if (i === warmup - 1) for (const p of [a.page, b.page]) await p.evaluate('window.__closes.length = 0');
			await sleep(MIN_CYCLE_MS - (Date.now() - cycleStart));
		}
		const socketCloses = [
			...((await a.page.evaluate('window.__closes')) as string[]).map((c) => `A: ${c}`),
			...((await b.page.evaluate('window.__closes')) as string[]).map((c) => `B: ${c}`)
		];
		return { chromium: browser.version(), warmup, samplesMs, visibility, minCycleMs: MIN_CYCLE_MS, socketCloses };
	} finally {
		await browser?.close();
		await server?.stop();
		await server?.cleanup();
	}
}
