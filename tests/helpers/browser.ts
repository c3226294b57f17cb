/** Debian's Chromium through Playwright (Playwright cannot download its own browsers here). */
import { expect } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
	'--no-sandbox',
	'--disable-gpu',
	'--disable-quic',
	'--no-first-run',
	'--disable-background-networking',
	'--disable-component-update',
	'--disable-sync'
];

export function launchChromium(): Promise<Browser> {
	return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/**
 * A browser with a regular profile in `userDataDir`. `browser.newContext()` contexts are
 * off-the-record, and Chromium never offers to install a web app from one (its installability
 * check answers `in-incognito`); a persistent context is what a user's profile is.
 */
export function launchPersistentChromium(userDataDir: string, baseURL: string): Promise<BrowserContext> {
	return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, baseURL });
}

/** Signs in through the login form and waits for the room list. */
export async function logInThroughForm(page: Page, username: string, password = 'correct horse battery'): Promise<void> {
	await page.goto('/login');
	await page.getByLabel('Username').fill(username);
	await page.getByLabel('Password').fill(password);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.waitForURL((url) => url.pathname === '/');
}

/**
 * Waits until the app's service worker controls the page (installed, precached, activated): a
 * deadline, generous because precaching competes with the rest of a parallel test run.
 */
export async function waitForServiceWorker(page: Page, timeoutMs = 60_000): Promise<void> {
	try {
		await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: timeoutMs });
	} catch (error) {
		const registration = await page
			.evaluate(async () => {
				const r = await navigator.serviceWorker.getRegistration();
				return r ? { installing: r.installing?.state ?? null, waiting: r.waiting?.state ?? null, active: r.active?.state ?? null } : null;
			})
			.catch((reason: unknown) => `unreadable: ${String(reason)}`);
		throw new Error(`${error instanceof Error ? error.message : String(error)} (registration: ${JSON.stringify(registration)})`);
	}
}

/** Types a message into the room's composer and sends it with Enter. */
export async function sendMessage(page: Page, text: string): Promise<void> {
	const composer = page.getByRole('textbox', { name: 'Message' });
	await composer.fill(text);
	await composer.press('Enter');
}

/** The ids of the messages the room's log renders, in order. */
export function renderedIds(page: Page): Promise<string[]> {
	return page
		.getByRole('log')
		.locator('[data-message-id]')
		.evaluateAll((elements) => elements.map((e) => e.getAttribute('data-message-id') ?? ''));
}

/**
 * Asserts `ids` is one contiguous stretch of `order` (the history API's, oldest first), each
 * once. On failure it lists where the stretch breaks, as "row: position -> position" in `order`.
 */
export function expectStretchOf(order: readonly string[], ids: readonly string[], where: string): void {
	expect(new Set(ids).size, `${where}: each message once`).toBe(ids.length);
	const { first, breaks } = stretchBreaks(order, ids);
	expect(breaks, `${where}: ${ids.length} shown from position ${first} of ${order.length}`).toEqual([]);
	if (ids.length > 0) expect(first, `${where}: the first shown message is in the room`).toBeGreaterThanOrEqual(0);
}

/** Where `ids` leaves `order`: "row: position -> position" per break, and the first one's position (-1: not in it). */
export function stretchBreaks(order: readonly string[], ids: readonly string[]): { first: number; breaks: string[] } {
	const positions = new Map(order.map((id, i) => [id, i]));
	const at = ids.map((id) => positions.get(id) ?? -1);
	const breaks = at.flatMap((p, row) => (row > 0 && p !== at[row - 1] + 1 ? [`${row}: ${at[row - 1]} -> ${p}`] : []));
	return { first: at[0] ?? -1, breaks };
}

/** The room's messages as the page shows them, in order: id, text and (own messages) status. */
export function shownMessages(page: Page): Promise<{ id: string; text: string; status: string | null }[]> {
	return page
		.getByRole('log')
		.locator('[data-message-id]')
		.evaluateAll((elements) =>
			elements.map((e) => ({
				id: e.getAttribute('data-message-id') ?? '',
				text: e.querySelector('.text')?.textContent ?? '',
				status: e.getAttribute('data-status')
			}))
		);
}

/** The connection indicator's state: online, connecting, reconnecting, offline or stopped. */
export function connectionState(page: Page): Promise<string | null> {
	return page.locator('[data-connection]').first().getAttribute('data-connection', { timeout: 5_000 });
}

/**
 * How many updates a room's y-indexeddb database holds. A readonly transaction waits for the
 * writes before it, so a higher count means the new update is committed on the device.
 */
export function storedUpdateCount(page: Page, databaseName: string): Promise<number> {
	return page.evaluate(
		(name) =>
			new Promise<number>((resolve, reject) => {
				const open = indexedDB.open(name);
				open.onerror = () => reject(open.error);
				open.onsuccess = () => {
					const db = open.result;
					const count = db.transaction('updates', 'readonly').objectStore('updates').count();
					count.onsuccess = () => {
						db.close();
						resolve(count.result);
					};
					count.onerror = () => reject(count.error);
				};
			}),
		databaseName
	);
}
