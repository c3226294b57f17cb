/**
 * Long history in Chromium (issue 4): a 5,000-message room, seeded through the real write path
 * against a relay that keeps only 200 messages live, reads from its newest message back to its
 * first by scrolling up — each message once, in the history API's order, the reader's place kept
 * while older messages are added above — and "Jump to newest" brings the newest back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { seedRoom, type SeedResult } from '../../scripts/seed';
import { ApiClient } from '../helpers/api';
import { expectStretchOf, launchChromium, logInThroughForm, renderedIds } from '../helpers/browser';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const SEEDED_MESSAGES = 5_000;
const LIVE_MESSAGES_MAX = 200;
const TEST_TIMEOUT_MS = 180_000;
const UI_TIMEOUT_MS = 20_000;
/** "About the same screen position": a prepend may not move the reader's message more than this. */
const ANCHOR_TOLERANCE_PX = 4;

let server: TestServer;
let browser: Browser;
let seeded: SeedResult;
/** Every message id of the room in the history API's order, oldest first. */
let apiOrder: string[];
const contexts: BrowserContext[] = [];
/** Per page: the query of every history request it made (`GET /api/rooms/:id/messages`). */
const historyRequests = new Map<Page, URLSearchParams[]>();

beforeAll(async () => {
	server = await startServer({ env: { LIVE_MESSAGES_MAX: String(LIVE_MESSAGES_MAX) } });
	browser = await launchChromium();
	seeded = await seedRoom({ baseUrl: server.baseUrl, messages: SEEDED_MESSAGES, writers: 4 });
	expect(seeded.sent).toBe(SEEDED_MESSAGES);
	const api = new ApiClient(server.baseUrl);
	await api.login(seeded.usernames[1], seeded.passwords[1]);
	apiOrder = await api.allMessageIds(seeded.roomId);
}, TEST_TIMEOUT_MS);

afterAll(async () => {
	for (const context of contexts) await context.close().catch(() => undefined);
	await browser?.close();
	await server?.stop();
	await server?.cleanup();
});

/** A fresh profile signed in as a seeded member, showing the room with its newest message. */
async function openRoom(): Promise<Page> {
	const context = await browser.newContext({ baseURL: server.baseUrl, viewport: { width: 1100, height: 800 } });
	context.setDefaultTimeout(UI_TIMEOUT_MS);
	contexts.push(context);
	const page = await context.newPage();
	const requests: URLSearchParams[] = [];
	historyRequests.set(page, requests);
	page.on('pageerror', (error) => console.log(`page error: ${error.stack ?? error.message}`));
	page.on('console', (message) => {
		if (message.type() === 'error' || message.type() === 'warning') console.log(`page ${message.type()}: ${message.text()}`);
	});
	page.on('request', (request) => {
		const url = new URL(request.url());
		if (url.pathname === `/api/rooms/${seeded.roomId}/messages`) requests.push(url.searchParams);
	});
	await logInThroughForm(page, seeded.usernames[1], seeded.passwords[1]);
	await page.goto(`/rooms/${seeded.roomId}`);
	await page.getByRole('log').locator(`[data-message-id="${apiOrder.at(-1)}"]`).waitFor();
	return page;
}

/** Whether the message is inside the scrolled viewport of the log. */
function inView(page: Page, id: string): Promise<boolean> {
	return page.evaluate((messageId) => {
		const element = document.querySelector(`[data-message-id="${messageId}"]`);
		const scroller = element?.closest('[role="log"]')?.parentElement;
		if (!element || !scroller) return false;
		const box = scroller.getBoundingClientRect();
		const rect = element.getBoundingClientRect();
		return rect.bottom > box.top && rect.top < box.bottom;
	}, id);
}

/**
 * Scrolls the log to its top and, in the same task (before any scroll handler runs), reports the
 * first message on screen and its distance from the top of the viewport.
 */
function scrollToTop(page: Page): Promise<{ id: string; top: number }> {
	return page.getByRole('log').evaluate((log) => {
		const scroller = log.parentElement!;
		scroller.scrollTop = 0;
		const box = scroller.getBoundingClientRect();
		for (const element of log.querySelectorAll<HTMLElement>('[data-message-id]')) {
			const rect = element.getBoundingClientRect();
			if (rect.bottom > box.top) return { id: element.dataset.messageId ?? '', top: rect.top - box.top };
		}
		throw new Error('no message on screen');
	});
}

function topOf(page: Page, id: string): Promise<number | null> {
	return page.getByRole('log').evaluate((log, messageId) => {
		const element = log.querySelector(`[data-message-id="${messageId}"]`);
		if (!element) return null;
		return element.getBoundingClientRect().top - log.parentElement!.getBoundingClientRect().top;
	}, id);
}

/** Asserts the shown ids are one contiguous stretch of the API's order, each once. */
function expectSliceOfHistory(ids: string[], where: string): void {
	expectStretchOf(apiOrder, ids, where);
}

describe('long history in the browser', () => {
	it('the history API pages the whole seeded room, each message once', () => {
		expect(apiOrder).toHaveLength(SEEDED_MESSAGES);
		expect(new Set(apiOrder).size).toBe(SEEDED_MESSAGES);
	});

	it('scrolls up from the newest message to the first, in the API\'s order, keeping the reader\'s place', { timeout: TEST_TIMEOUT_MS }, async () => {
		const page = await openRoom();
		const firstId = apiOrder[0];
		const seen = new Set<string>();
		let prependsChecked = 0;
		for (let step = 0; step < 400; step += 1) {
			const ids = await renderedIds(page);
			expectSliceOfHistory(ids, `step ${step}`);
			for (const id of ids) seen.add(id);
			if (ids[0] === firstId) break;
			const anchor = await scrollToTop(page);
			// Wait for older messages to be added above the reader.
			await waitFor(async () => (await renderedIds(page))[0] !== ids[0], UI_TIMEOUT_MS, `older messages above ${ids[0]}`);
			const top = await topOf(page, anchor.id);
			expect(top, `message ${anchor.id} stayed on screen after the prepend`).not.toBeNull();
			const after = await renderedIds(page);
			const where = `step ${step}: anchor ${apiOrder.indexOf(anchor.id)} at ${anchor.top}px, now ${top}px; window ${apiOrder.indexOf(ids[0])}+${ids.length} -> ${apiOrder.indexOf(after[0])}+${after.length}`;
			expect(Math.abs(top! - anchor.top), where).toBeLessThanOrEqual(ANCHOR_TOLERANCE_PX);
			prependsChecked += 1;
		}
		expect(prependsChecked).toBeGreaterThan(0);
		await page.getByRole('log').evaluate((log) => (log.parentElement!.scrollTop = 0));
		await expect.poll(() => inView(page, firstId), { timeout: UI_TIMEOUT_MS }).toBe(true);
		await page.getByText('This is the beginning of the conversation.').waitFor();
		// Every message was shown on the way, and what is shown now is still in order.
		expect(seen.size).toBe(SEEDED_MESSAGES);
		expectSliceOfHistory(await renderedIds(page), 'at the first message');
		// The history just before the live document was asked for by its first message (beforeId),
		// once, and never found by walking back from the newest page; older pages used cursors.
		const requests = historyRequests.get(page)!;
		expect(requests.filter((q) => q.has('beforeId'))).toHaveLength(1);
		expect(requests.filter((q) => !q.has('beforeId') && !q.has('before'))).toEqual([]);
	});

	it('offers "Jump to newest" once scrolled up, and it brings the newest message back into view', { timeout: TEST_TIMEOUT_MS }, async () => {
		const page = await openRoom();
		const newestId = apiOrder.at(-1)!;
		const jump = page.getByRole('button', { name: /jump to newest/i });
		await expect.poll(() => inView(page, newestId)).toBe(true);
		expect(await jump.count()).toBe(0);

		// Far up: several steps, so the newest message is no longer even rendered.
		for (let i = 0; i < 8; i += 1) {
			const ids = await renderedIds(page);
			await scrollToTop(page);
			await waitFor(async () => (await renderedIds(page))[0] !== ids[0], UI_TIMEOUT_MS, 'older messages');
		}
		await jump.waitFor();
		expect(await inView(page, newestId)).toBe(false);

		await jump.click();
		await expect.poll(() => inView(page, newestId), { timeout: UI_TIMEOUT_MS }).toBe(true);
		await expect.poll(() => jump.count()).toBe(0);
		expectSliceOfHistory(await renderedIds(page), 'after the jump');
	});
});
