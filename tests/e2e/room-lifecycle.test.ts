/**
 * A room's document moving and ending, in Chromium (issue 4): when the relay compacts a busy room
 * and rolls its live document over to a new epoch (close 4410), an open room keeps every message
 * on screen and keeps sending, each message once; when an admin deletes a group, it leaves every
 * member's screen, room list and device at once, and a member who was offline then loses it as
 * soon as the device is back online.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { seedRoom, type SeedResult } from '../../scripts/seed';
import { ApiClient, uniqueName } from '../helpers/api';
import {
	connectionState,
	expectStretchOf,
	launchChromium,
	logInThroughForm,
	renderedIds,
	sendMessage,
	stretchBreaks,
	shownMessages,
	waitForServiceWorker
} from '../helpers/browser';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const TEST_TIMEOUT_MS = 120_000;
const UI_TIMEOUT_MS = 30_000;

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
	server = await startServer({ env: { LIVE_MESSAGES_MAX: '100', EPOCH_ROLLOVER_AFTER: '200' } });
	browser = await launchChromium();
});

afterAll(async () => {
	for (const context of contexts) await context.close().catch(() => undefined);
	await browser?.close();
	await server?.stop();
	await server?.cleanup();
});

async function openRoomAs(username: string, password: string, roomId: string, target: TestServer = server): Promise<Page> {
	const context = await browser.newContext({ baseURL: target.baseUrl });
	context.setDefaultTimeout(UI_TIMEOUT_MS);
	contexts.push(context);
	const page = await context.newPage();
	await logInThroughForm(page, username, password);
	await page.goto(`/rooms/${roomId}`);
	await page.getByRole('log').waitFor();
	return page;
}

/** The room's document databases this page's profile holds for the user. */
function roomDatabases(page: Page, userId: string, roomId: string): Promise<string[]> {
	return page.evaluate(
		async ({ userId, roomId }) => (await indexedDB.databases()).map((d) => d.name ?? '').filter((n) => n.startsWith(`chat:${userId}:${roomId}`)),
		{ userId, roomId }
	);
}

/** Scrolls the log up, step by step, until a message with `text` is rendered. */
async function scrollUpUntilShown(page: Page, text: string): Promise<void> {
	for (let step = 0; step < 100; step += 1) {
		const shown = await shownMessages(page);
		if (shown.some((m) => m.text === text)) return;
		await page.getByRole('log').evaluate((log) => (log.parentElement!.scrollTop = 0));
		await waitFor(async () => (await shownMessages(page))[0]?.id !== shown[0]?.id, UI_TIMEOUT_MS, 'older messages');
	}
	throw new Error(`"${text}" was not found scrolling up`);
}

/** How many history messages the page's device keeps for the room (0 before any). */
function storedHistory(page: Page, userId: string, roomId: string): Promise<number> {
	return page.evaluate(
		async ({ name, roomId }) => {
			// Opened only once the app made it: opening creates a database without its stores.
			if (!(await indexedDB.databases()).some((d) => d.name === name)) return 0;
			const db = await new Promise<IDBDatabase>((resolve, reject) => {
				const open = indexedDB.open(name);
				open.onsuccess = () => resolve(open.result);
				open.onerror = () => reject(open.error);
			});
			try {
				if (!db.objectStoreNames.contains('runs')) return 0;
				const run = await new Promise<{ minOrder: number; maxOrder: number } | undefined>((resolve, reject) => {
					const get = db.transaction('runs').objectStore('runs').get(roomId);
					get.onsuccess = () => resolve(get.result);
					get.onerror = () => reject(get.error);
				});
				return run ? run.maxOrder - run.minOrder + 1 : 0;
			} finally {
				db.close();
			}
		},
		{ name: `chat:${userId}:~history`, roomId }
	);
}

/**
 * Scrolls from where the log is up to the room's first message, asserting at every step that the
 * log shows one contiguous stretch of `order` — once the app has fetched what it found missing
 * (messages compacted unseen are fetched in the background: a hole may show until they arrive,
 * never for longer) — and returns every id shown on the way.
 */
async function scrollBackToFirst(page: Page, order: readonly string[]): Promise<Set<string>> {
	const seen = new Set<string>();
	const contiguous = (ids: string[]) => stretchBreaks(order, ids).breaks.length === 0;
	for (let step = 0; step < 200; step += 1) {
		await waitFor(async () => contiguous(await renderedIds(page)), UI_TIMEOUT_MS, `step ${step}: the log shows one stretch of the room`).catch(() => undefined);
		const ids = await renderedIds(page);
		expectStretchOf(order, ids, `step ${step}`);
		for (const id of ids) seen.add(id);
		if (ids[0] === order[0]) return seen;
		await page.getByRole('log').evaluate((log) => (log.parentElement!.scrollTop = 0));
		await waitFor(async () => (await renderedIds(page))[0] !== ids[0], UI_TIMEOUT_MS, `older messages above ${ids[0]}`);
	}
	throw new Error('the first message was not reached scrolling up');
}

/** A seeded room (as its second member, signed in to the API) open in a fresh profile at its newest message. */
async function openSeededRoom(messages: number, target: TestServer = server): Promise<{ seeded: SeedResult; api: ApiClient; page: Page }> {
	const seeded = await seedRoom({ baseUrl: target.baseUrl, messages, writers: 2 });
	const api = new ApiClient(target.baseUrl);
	await api.login(seeded.usernames[1], seeded.passwords[1]);
	const page = await openRoomAs(seeded.usernames[1], seeded.passwords[1], seeded.roomId, target);
	await page.getByRole('log').locator(`[data-message-id="${(await api.allMessageIds(seeded.roomId)).at(-1)}"]`).waitFor();
	return { seeded, api, page };
}

/** More messages from the room's first member, far more than its live document keeps. */
function seedMore(seeded: SeedResult, messages: number, target: TestServer = server): Promise<unknown> {
	return seedRoom({
		baseUrl: target.baseUrl,
		messages,
		writers: 2,
		roomId: seeded.roomId,
		credentials: { username: seeded.usernames[0], password: seeded.passwords[0] }
	});
}

describe('a room that moves and ends', () => {
	it('keeps the room\'s order when many messages were compacted before its history could be fetched', { timeout: TEST_TIMEOUT_MS }, async () => {
		const { seeded, api, page } = await openSeededRoom(150);
		// The history API is unreachable while the relay compacts far more than a page out of the
		// open log: everything that left it waits on screen, unjoined to any fetched page.
		const historyRoute = `**/api/rooms/${seeded.roomId}/messages**`;
		await page.route(historyRoute, (route) => route.abort());
		let reconnects = 0;
		page.on('websocket', (socket) => {
			if (socket.url().includes(seeded.roomId)) reconnects += 1;
		});
		await seedMore(seeded, 300);
		const order = await api.allMessageIds(seeded.roomId);
		await page.getByRole('log').locator(`[data-message-id="${order.at(-1)}"]`).waitFor();
		// The room rolled over (4410) while the API was blocked: at least EPOCH_ROLLOVER_AFTER
		// (200) messages left the open log, two pages' worth, before any history was joined.
		await expect.poll(() => reconnects, { timeout: UI_TIMEOUT_MS }).toBeGreaterThan(0);
		await page.unroute(historyRoute);

		const seen = await scrollBackToFirst(page, order);
		expect(seen.size).toBe(order.length);
	});

	it('fetches what was compacted while the device was offline, in the room\'s order', { timeout: TEST_TIMEOUT_MS }, async () => {
		const { seeded, api, page } = await openSeededRoom(300);
		// Read back once, so the device holds history joined to the live log, then return.
		await scrollBackToFirst(page, await api.allMessageIds(seeded.roomId));
		await page.getByRole('button', { name: /jump to newest/i }).click();

		// Offline while the room gets far more than its live document keeps: the messages that
		// arrive and are compacted meanwhile never reach this device's live log.
		await page.context().setOffline(true);
		await expect.poll(() => connectionState(page)).toBe('offline');
		await seedMore(seeded, 300);
		await page.context().setOffline(false);
		const order = await api.allMessageIds(seeded.roomId);
		await page.getByRole('log').locator(`[data-message-id="${order.at(-1)}"]`).waitFor();

		const seen = await scrollBackToFirst(page, order);
		expect(seen.size).toBe(order.length);
	});


	it('fetches what was compacted unseen while offline when the room kept its document', { timeout: TEST_TIMEOUT_MS }, async () => {
		// A relay that never rolls rooms over: the device comes back to the same document, and the
		// relay's sync removes what it held and adds what it missed in one update.
		const steady = await startServer({ env: { LIVE_MESSAGES_MAX: '100', EPOCH_ROLLOVER_AFTER: '1000000' } });
		try {
			const { seeded, api, page } = await openSeededRoom(150, steady);
			await page.context().setOffline(true);
			await expect.poll(() => connectionState(page)).toBe('offline');
			await seedMore(seeded, 200, steady);
			await page.context().setOffline(false);
			const order = await api.allMessageIds(seeded.roomId);
			await page.getByRole('log').locator(`[data-message-id="${order.at(-1)}"]`).waitFor();

			const seen = await scrollBackToFirst(page, order);
			expect(seen.size).toBe(order.length);
		} finally {
			await steady.stop();
			await steady.cleanup();
		}
	});

	it('goes on loading older pages above what the device kept from an earlier visit', { timeout: TEST_TIMEOUT_MS }, async () => {
		const { seeded, api, page } = await openSeededRoom(300);
		// Messages compacted while the room is open: they and the page before them go on the device.
		await seedMore(seeded, 60);
		const order = await api.allMessageIds(seeded.roomId);
		await page.getByRole('log').locator(`[data-message-id="${order.at(-1)}"]`).waitFor();
		await expect.poll(() => storedHistory(page, api.user!.id, seeded.roomId), { timeout: UI_TIMEOUT_MS }).toBeGreaterThan(0);

		// Another visit: the device's history ends where the live log starts, so joining them adds
		// nothing new; the reader at the top still gets the pages older than that, to the first.
		await page.reload();
		await page.getByRole('log').locator(`[data-message-id="${order.at(-1)}"]`).waitFor();
		const seen = await scrollBackToFirst(page, order);
		expect(seen.size).toBe(order.length);
	});

	it('keeps an open room showing and sending while the relay compacts it and rolls it over', { timeout: TEST_TIMEOUT_MS }, async () => {
		const seeded = await seedRoom({ baseUrl: server.baseUrl, messages: 300, writers: 2 });
		const page = await openRoomAs(seeded.usernames[1], seeded.passwords[1], seeded.roomId);
		// Every socket the page opens for this room after the first: the relay moved it (or dropped it).
		let reconnects = 0;
		page.on('websocket', (socket) => {
			if (socket.url().includes(seeded.roomId)) reconnects += 1;
		});
		const before = `before the busy hour ${uniqueName('m')}`;
		await sendMessage(page, before);
		await waitFor(async () => (await shownMessages(page)).find((m) => m.text === before)?.status !== 'pending', UI_TIMEOUT_MS, 'stored');

		// Far more than the live document keeps: the relay compacts and rolls the room over.
		await seedRoom({
			baseUrl: server.baseUrl,
			messages: 1_500,
			writers: 2,
			roomId: seeded.roomId,
			credentials: { username: seeded.usernames[0], password: seeded.passwords[0] }
		});
		const api = new ApiClient(server.baseUrl);
		await api.login(seeded.usernames[1], seeded.passwords[1]);
		const afterSeeding = await api.allMessageIds(seeded.roomId);
		await page.getByRole('log').locator(`[data-message-id="${afterSeeding.at(-1)}"]`).waitFor();
		// Compacted messages stay in the room: scrolling up finds the one sent before, once.
		await scrollUpUntilShown(page, before);
		expect((await shownMessages(page)).filter((m) => m.text === before)).toHaveLength(1);
		await page.getByRole('button', { name: /jump to newest/i }).click();

		const after = `after the busy hour ${uniqueName('m')}`;
		await sendMessage(page, after);
		await waitFor(async () => (await shownMessages(page)).find((m) => m.text === after)?.status === 'sent', UI_TIMEOUT_MS, 'stored after the move');
		const ids = await api.allMessageIds(seeded.roomId);
		// The relay rolled the document over at least once (4410) while the room was open.
		expect(reconnects).toBeGreaterThan(0);
		expect(new Set(ids).size).toBe(ids.length);
		expect(ids).toHaveLength(300 + 1 + 1_500 + 1);
		const shown = (await shownMessages(page)).map((m) => m.id);
		expect(new Set(shown).size).toBe(shown.length);
		expect(shown.at(-1)).toBe(ids.at(-1));
	});

	it('removes a deleted group from every member\'s screen, list and device', { timeout: TEST_TIMEOUT_MS }, async () => {
		const password = 'correct horse battery';
		const ana = new ApiClient(server.baseUrl);
		const bruno = new ApiClient(server.baseUrl);
		const anaName = uniqueName('ana');
		const brunoName = uniqueName('bruno');
		await ana.signup(anaName, password, 'Ana Lima');
		const brunoUser = await bruno.signup(brunoName, password, 'Bruno Costa');
		const groupName = `Doomed ${uniqueName('g')}`;
		const group = await ana.createGroup(groupName, [brunoName]);

		const brunoPage = await openRoomAs(brunoName, password, group.id);
		await sendMessage(brunoPage, 'soon gone');
		await waitFor(async () => (await shownMessages(brunoPage)).some((m) => m.status === 'sent'), UI_TIMEOUT_MS, 'stored');
		const brunoDatabases = () => roomDatabases(brunoPage, brunoUser.id, group.id);
		expect(await brunoDatabases()).not.toEqual([]);

		const anaPage = await openRoomAs(anaName, password, group.id);
		await anaPage.getByRole('button', { name: /Members/ }).click();
		await anaPage.getByRole('button', { name: 'Delete group' }).click();
		await anaPage.getByRole('button', { name: 'Delete for everyone' }).click();
		await anaPage.waitForURL((url) => url.pathname === '/');
		const chats = (page: Page) => page.getByRole('navigation', { name: 'Chats' });
		await expect.poll(() => chats(anaPage).getByText(groupName).count()).toBe(0);

		// Bruno had it open: the relay's 4404 takes him away, and the device forgets it.
		await brunoPage.waitForURL((url) => url.pathname === '/');
		await expect.poll(() => chats(brunoPage).getByText(groupName).count()).toBe(0);
		await expect.poll(brunoDatabases, { timeout: UI_TIMEOUT_MS }).toEqual([]);
		expect((await bruno.request('GET', `/api/rooms/${group.id}`)).status).toBe(404);
	});

	it('drops a group deleted while a member was offline once the device is back online', { timeout: TEST_TIMEOUT_MS }, async () => {
		const password = 'correct horse battery';
		const ana = new ApiClient(server.baseUrl);
		const anaName = uniqueName('ana');
		await ana.signup(anaName, password, 'Ana Lima');
		const bruno = { api: new ApiClient(server.baseUrl), name: uniqueName('bruno') };
		const carla = { api: new ApiClient(server.baseUrl), name: uniqueName('carla') };
		const brunoUser = await bruno.api.signup(bruno.name, password, 'Bruno Costa');
		const carlaUser = await carla.api.signup(carla.name, password, 'Carla Dias');
		const groupName = `Gone ${uniqueName('g')}`;
		const group = await ana.createGroup(groupName, [bruno.name, carla.name]);
		const chats = (page: Page) => page.getByRole('navigation', { name: 'Chats' });

		// Bruno has the group open (and the app installed, so it reopens offline); Carla saw it and
		// is back on her room list.
		const brunoPage = await openRoomAs(bruno.name, password, group.id);
		const text = `before the end ${uniqueName('m')}`;
		await sendMessage(brunoPage, text);
		await waitFor(async () => (await shownMessages(brunoPage)).find((m) => m.text === text)?.status === 'sent', UI_TIMEOUT_MS, 'stored');
		await waitForServiceWorker(brunoPage);
		const carlaPage = await openRoomAs(carla.name, password, group.id);
		await carlaPage.getByRole('log').getByText(text).waitFor();
		await carlaPage.goto('/');
		await chats(carlaPage).getByText(groupName).waitFor();
		expect(await roomDatabases(brunoPage, brunoUser.id, group.id)).not.toEqual([]);
		expect(await roomDatabases(carlaPage, carlaUser.id, group.id)).not.toEqual([]);

		// Both go offline (Bruno's socket closes), and Ana deletes the group meanwhile: neither
		// hears the relay's 4404.
		await brunoPage.context().setOffline(true);
		await carlaPage.context().setOffline(true);
		await waitFor(async () => (await connectionState(brunoPage)) === 'offline', UI_TIMEOUT_MS, 'Bruno offline');
		expect((await ana.request('DELETE', `/api/rooms/${group.id}`)).status).toBe(204);
		// Bruno reopens the app with no network: the group is still on the device.
		await brunoPage.reload();
		await brunoPage.getByRole('log').getByText(text).waitFor();

		// Back online, the API says `room_deleted`: the group leaves the screen, the list and the device.
		await brunoPage.context().setOffline(false);
		await carlaPage.context().setOffline(false);
		await brunoPage.waitForURL((url) => url.pathname === '/');
		await expect.poll(() => chats(brunoPage).getByText(groupName).count(), { timeout: UI_TIMEOUT_MS }).toBe(0);
		await expect.poll(() => roomDatabases(brunoPage, brunoUser.id, group.id), { timeout: UI_TIMEOUT_MS }).toEqual([]);
		await expect.poll(() => chats(carlaPage).getByText(groupName).count(), { timeout: UI_TIMEOUT_MS }).toBe(0);
		await expect.poll(() => roomDatabases(carlaPage, carlaUser.id, group.id), { timeout: UI_TIMEOUT_MS }).toEqual([]);
		const answer = await carla.api.request('GET', `/api/rooms/${group.id}`);
		expect(answer.status).toBe(404);
		expect(answer.body.error.code).toBe('room_deleted');
	});
});
