/**
 * Local-first in Chromium (issue 3), with the network cut by Playwright (`context.setOffline`):
 * the app reopens offline from the device, messages written offline go out once each and in
 * order (also after the tab was closed), own messages move pending → sent → delivered → read,
 * tabs of one profile share messages with no network, sign-out wipes the device, and the app
 * passes Chromium's installability check.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ApiClient, uniqueName } from '../helpers/api';
import {
	connectionState,
	launchChromium,
	launchPersistentChromium,
	logInThroughForm,
	sendMessage,
	shownMessages,
	storedUpdateCount,
	waitForServiceWorker
} from '../helpers/browser';
import { startServer, type TestServer } from '../helpers/server';
import { holdsFor, waitFor } from '../helpers/wait';
import type { Room } from '../../src/lib/shared/api-types';

const TEST_TIMEOUT_MS = 90_000;
const UI_TIMEOUT_MS = 15_000;

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];
const ana = { api: null as unknown as ApiClient, username: uniqueName('ana') };
const bruno = { api: null as unknown as ApiClient, username: uniqueName('bruno') };
const carla = { api: null as unknown as ApiClient, username: uniqueName('carla') };
let direct: Room;

beforeAll(async () => {
	server = await startServer();
	browser = await launchChromium();
	for (const [person, displayName] of [
		[ana, 'Ana Lima'],
		[bruno, 'Bruno Costa'],
		[carla, 'Carla Dias']
	] as const) {
		person.api = new ApiClient(server.baseUrl);
		await person.api.signup(person.username, 'correct horse battery', displayName);
	}
	direct = await ana.api.openDirect(bruno.username);
});

afterAll(async () => {
	for (const context of contexts) await context.close().catch(() => undefined);
	await browser?.close();
	await server?.stop();
	await server?.cleanup();
});

async function newContext(): Promise<BrowserContext> {
	const context = await browser.newContext({ baseURL: server.baseUrl });
	context.setDefaultTimeout(UI_TIMEOUT_MS);
	contexts.push(context);
	return context;
}

/** A signed-in page in a fresh profile, showing `roomId`. */
async function openRoomAs(username: string, roomId: string, context?: BrowserContext): Promise<Page> {
	const page = await (context ?? (await newContext())).newPage();
	await logInThroughForm(page, username);
	await page.goto(`/rooms/${roomId}`);
	await page.getByRole('log').waitFor();
	return page;
}

async function statusOf(page: Page, text: string): Promise<string | null> {
	return (await shownMessages(page)).find((m) => m.text === text)?.status ?? null;
}

async function textsOf(page: Page): Promise<string[]> {
	return (await shownMessages(page)).map((m) => m.text);
}

async function waitForState(page: Page, state: string): Promise<void> {
	await waitFor(async () => (await connectionState(page)) === state, UI_TIMEOUT_MS, `connection ${state}`);
}

function databaseName(userId: string, roomId: string): string {
	return `chat:${userId}:${roomId}`;
}

describe('offline in the browser', () => {
	let brunoPage: Page;

	it('reopens with no network: the room list and a room\'s messages come from the device', { timeout: TEST_TIMEOUT_MS }, async () => {
		const context = await newContext();
		const page = await openRoomAs(ana.username, direct.id, context);
		const text = `kept on the device ${uniqueName('m')}`;
		await sendMessage(page, text);
		await waitFor(async () => (await statusOf(page, text)) === 'sent', UI_TIMEOUT_MS, 'message stored by the relay');
		await waitForServiceWorker(page);

		await context.setOffline(true);
		const reloaded = await page.reload();
		expect(reloaded?.fromServiceWorker()).toBe(true);
		await page.getByRole('log').getByText(text).waitFor();
		await waitForState(page, 'offline');
		// The relay's acknowledgement was kept on the device: still `sent`, not back to `pending`.
		expect(await statusOf(page, text)).toBe('sent');

		// A navigation the server never sees: the service worker's shell, then the cached room list.
		await page.goto('/');
		await page.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: /Bruno Costa/ }).click();
		await page.waitForURL((url) => url.pathname === `/rooms/${direct.id}`);
		await page.getByRole('log').getByText(text).waitFor();
		await page.getByText('Offline — showing what this device knows.').waitFor();
	});

	it('installs the offline app even when the first try fails', { timeout: TEST_TIMEOUT_MS }, async () => {
		const context = await newContext();
		// Fetching the worker's script fails (a dropped connection) until the room is open: the
		// browser alone would not try again before the next navigation.
		let refused = 0;
		let failing = true;
		await context.route('**/service-worker.js', (route) => (failing ? (refused++, route.abort('connectionreset')) : route.fallback()));
		const page = await openRoomAs(ana.username, direct.id, context);
		await waitFor(() => refused > 0, UI_TIMEOUT_MS, 'the install tried');
		failing = false;
		await waitForServiceWorker(page);
		await context.setOffline(true);
		expect((await page.reload())?.fromServiceWorker()).toBe(true);
		await page.getByRole('log').waitFor();
	});

	it('takes control of a page that loaded while the worker was not in charge', { timeout: TEST_TIMEOUT_MS }, async () => {
		const context = await newContext();
		const page = await openRoomAs(ana.username, direct.id, context);
		await waitForServiceWorker(page);
		// A reload that bypasses the worker leaves the page uncontrolled, as does a navigation
		// that began before the first install activated.
		const cdp = await context.newCDPSession(page);
		const loaded = page.waitForEvent('load');
		await cdp.send('Page.reload', { ignoreCache: true });
		await loaded;
		await page.getByRole('log').waitFor();
		await waitForServiceWorker(page);
		await context.setOffline(true);
		expect((await page.reload())?.fromServiceWorker()).toBe(true);
		await page.getByRole('log').waitFor();
	});

	it('sends messages written offline once each and in order, also after the tab was closed', { timeout: TEST_TIMEOUT_MS }, async () => {
		const context = await newContext();
		const anaPage = await openRoomAs(ana.username, direct.id, context);
		brunoPage = await openRoomAs(bruno.username, direct.id);
		await waitForState(anaPage, 'online');

		await context.setOffline(true);
		await waitForState(anaPage, 'offline');
		const tag = uniqueName('t');
		const offline = [1, 2, 3].map((n) => `offline ${n} ${tag}`);
		for (const text of offline) await sendMessage(anaPage, text);
		for (const text of offline) expect(await statusOf(anaPage, text)).toBe('pending');
		await holdsFor(async () => !(await textsOf(brunoPage)).includes(offline[0]), 500, 'nothing reaches Bruno while Ana is offline');

		await context.setOffline(false);
		await waitFor(async () => (await textsOf(brunoPage)).filter((t) => t.endsWith(tag)).length >= 3, UI_TIMEOUT_MS, 'Bruno has the three');
		expect((await textsOf(brunoPage)).filter((t) => t.endsWith(tag))).toEqual(offline);
		await waitFor(async () => (await Promise.all(offline.map((t) => statusOf(anaPage, t)))).every((s) => s !== 'pending'), UI_TIMEOUT_MS, 'Ana sees them stored');

		// A fourth, written offline; the tab closes before the network returns.
		await context.setOffline(true);
		await waitForState(anaPage, 'offline');
		const database = databaseName(ana.api.user!.id, direct.id);
		const storedBefore = await storedUpdateCount(anaPage, database);
		const fourth = `offline 4 ${tag}`;
		await sendMessage(anaPage, fourth);
		expect(await statusOf(anaPage, fourth)).toBe('pending');
		await waitFor(async () => (await storedUpdateCount(anaPage, database)) > storedBefore, UI_TIMEOUT_MS, 'the message committed to IndexedDB');
		await anaPage.close();
		await holdsFor(async () => !(await textsOf(brunoPage)).includes(fourth), 300, 'the fourth waits on the device');

		await context.setOffline(false);
		const reopened = await context.newPage();
		await reopened.goto(`/rooms/${direct.id}`);
		await waitFor(async () => (await textsOf(brunoPage)).includes(fourth), UI_TIMEOUT_MS, 'Bruno has the fourth');
		expect((await textsOf(brunoPage)).filter((t) => t.endsWith(tag))).toEqual([...offline, fourth]);
		await waitFor(async () => (await statusOf(reopened, fourth)) !== 'pending', UI_TIMEOUT_MS, 'the fourth stored');

		// One order everywhere: Ana's device, Bruno's device and the history API agree.
		const history = await bruno.api.request('GET', `/api/rooms/${direct.id}/messages?limit=100`);
		const historyIds = (history.body.messages as { id: string }[]).map((m) => m.id);
		const brunoIds = (await shownMessages(brunoPage)).map((m) => m.id);
		await waitFor(async () => (await shownMessages(reopened)).length === brunoIds.length, UI_TIMEOUT_MS, 'Ana has everything');
		expect((await shownMessages(reopened)).map((m) => m.id)).toEqual(brunoIds);
		expect(historyIds).toEqual(brunoIds);
	});

	it('moves an own message from pending to sent, delivered and read as the other person connects and reads', { timeout: TEST_TIMEOUT_MS }, async () => {
		const room = await ana.api.openDirect(carla.username);
		const anaContext = await newContext();
		const anaPage = await openRoomAs(ana.username, room.id, anaContext);
		const carlaContext = await newContext();
		const carlaPage = await carlaContext.newPage();
		await logInThroughForm(carlaPage, carla.username);
		await carlaContext.setOffline(true);

		// Record every status the message element takes, in order, so no step can be skipped.
		await anaPage.evaluate(() => {
			const seen: string[] = [];
			(window as unknown as { statusTrail: string[] }).statusTrail = seen;
			const note = (element: Element): void => {
				const status = element.getAttribute('data-status');
				if (status && seen.at(-1) !== status) seen.push(status);
			};
			new MutationObserver((records) => {
				for (const record of records) {
					const targets = record.type === 'attributes' ? [record.target as Element] : [...record.addedNodes].filter((n): n is Element => n instanceof Element);
					for (const target of targets) for (const el of [target, ...target.querySelectorAll('[data-status]')]) if (el.matches('[data-status]')) note(el);
				}
			}).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
		});
		const trail = (): Promise<string[]> => anaPage.evaluate(() => (window as unknown as { statusTrail: string[] }).statusTrail);

		await anaContext.setOffline(true);
		await waitForState(anaPage, 'offline');
		const text = `ticks ${uniqueName('m')}`;
		await sendMessage(anaPage, text);
		expect(await statusOf(anaPage, text)).toBe('pending');
		await anaContext.setOffline(false);
		await waitFor(async () => (await statusOf(anaPage, text)) === 'sent', UI_TIMEOUT_MS, 'sent');
		// Carla's device is offline: the message stays `sent`.
		await holdsFor(async () => (await statusOf(anaPage, text)) === 'sent', 500, 'not delivered while Carla is offline');

		// Carla's app comes online on her room list: her device syncs the room in the background.
		await carlaContext.setOffline(false);
		await waitFor(async () => (await statusOf(anaPage, text)) === 'delivered', UI_TIMEOUT_MS, 'delivered');
		await carlaPage.getByRole('navigation', { name: 'Chats' }).getByRole('link', { name: /Ana Lima/ }).click();
		await carlaPage.getByRole('log').getByText(text).waitFor();
		await waitFor(async () => (await statusOf(anaPage, text)) === 'read', UI_TIMEOUT_MS, 'read');
		expect(await trail()).toEqual(['pending', 'sent', 'delivered', 'read']);
		await carlaContext.close();
	});

	it('shows per-member receipts of a group message', { timeout: TEST_TIMEOUT_MS }, async () => {
		const group = await ana.api.createGroup(`Receipts ${uniqueName('g')}`, [bruno.username, carla.username]);
		const anaPage = await openRoomAs(ana.username, group.id);
		await brunoPage.goto(`/rooms/${group.id}`);
		await brunoPage.getByRole('log').waitFor();
		const text = `group ${uniqueName('m')}`;
		await sendMessage(anaPage, text);
		await brunoPage.getByRole('log').getByText(text).waitFor();
		await waitFor(async () => (await statusOf(anaPage, text)) === 'sent', UI_TIMEOUT_MS, 'sent');

		const own = anaPage.getByRole('log').locator('[data-message-id]').filter({ hasText: text });
		await own.getByRole('button', { name: /show details/ }).click();
		const dialog = anaPage.getByRole('dialog', { name: 'Message info' });
		await dialog.waitFor();
		const receipt = (userId: string) => dialog.locator(`[data-user-id="${userId}"]`).getAttribute('data-receipt');
		await waitFor(async () => (await receipt(bruno.api.user!.id)) === 'read', UI_TIMEOUT_MS, 'Bruno read it');
		// Carla has no device online: not yet delivered to her, so the message as a whole is `sent`.
		expect(await receipt(carla.api.user!.id)).toBe('sent');
		expect(await statusOf(anaPage, text)).toBe('sent');
	});

	it('lets two tabs of one profile see each other\'s new messages with the network off', { timeout: TEST_TIMEOUT_MS }, async () => {
		const context = await newContext();
		const tabA = await openRoomAs(ana.username, direct.id, context);
		const tabB = await context.newPage();
		await tabB.goto(`/rooms/${direct.id}`);
		await tabB.getByRole('log').waitFor();
		await brunoPage.goto(`/rooms/${direct.id}`);
		await brunoPage.getByRole('log').waitFor();

		await context.setOffline(true);
		await waitForState(tabA, 'offline');
		await waitForState(tabB, 'offline');
		const tag = uniqueName('tab');
		await sendMessage(tabA, `from tab A ${tag}`);
		await tabB.getByRole('log').getByText(`from tab A ${tag}`).waitFor();
		await sendMessage(tabB, `from tab B ${tag}`);
		await tabA.getByRole('log').getByText(`from tab B ${tag}`).waitFor();
		expect(await statusOf(tabA, `from tab B ${tag}`)).toBe('pending');

		await context.setOffline(false);
		await waitFor(async () => (await textsOf(brunoPage)).filter((t) => t.endsWith(tag)).length === 2, UI_TIMEOUT_MS, 'Bruno has both');
		await holdsFor(async () => (await textsOf(brunoPage)).filter((t) => t.endsWith(tag)).length === 2, 300, 'each arrives once');
	});

	it('stops retrying and says why when the relay ends the connection for good', { timeout: TEST_TIMEOUT_MS }, async () => {
		const group = await ana.api.createGroup(`Leaving ${uniqueName('g')}`, [carla.username]);
		const carlaPage = await openRoomAs(carla.username, group.id);
		await waitForState(carlaPage, 'online');
		// Any new attempt starts with a fresh sync descriptor, then a socket. (Only this room's:
		// the app also syncs other rooms with news in the background.)
		let attempts = 0;
		carlaPage.on('request', (request) => {
			if (request.url().endsWith(`/api/rooms/${group.id}/sync`)) attempts += 1;
		});
		carlaPage.on('websocket', (socket) => {
			if (socket.url().includes(group.id)) attempts += 1;
		});

		// Removal closes Carla's socket with 4403: terminal, so no reconnect, and the reason shown.
		const removal = await ana.api.request('DELETE', `/api/rooms/${group.id}/members/${carla.api.user!.id}`);
		expect(removal.status).toBe(204);
		await carlaPage.getByText('You are no longer a member of this room').waitFor();
		// The first retry of a transient close would come within a second.
		await holdsFor(() => attempts === 0, 2_000, 'no reconnect after a terminal close');
	});

	it('removes the account\'s rooms and caches from the device on sign-out', { timeout: TEST_TIMEOUT_MS }, async () => {
		const context = await newContext();
		const page = await openRoomAs(ana.username, direct.id, context);
		const userId = ana.api.user!.id;
		const deviceData = () =>
			page.evaluate(async (id) => {
				const databases = (await indexedDB.databases()).map((d) => d.name ?? '').filter((n) => n.startsWith(`chat:${id}:`));
				const keys = Object.keys(localStorage).filter((k) => k.startsWith(`tunnel:${id}:`) || (k === 'tunnel:me' && localStorage.getItem(k)?.includes(id)));
				return { databases, keys };
			}, userId);
		await waitFor(async () => (await deviceData()).databases.length > 0, UI_TIMEOUT_MS, 'the room is on the device');
		expect((await deviceData()).keys.length).toBeGreaterThan(0);

		await page.getByRole('button', { name: 'Sign out' }).click();
		await page.waitForURL((url) => url.pathname === '/login');
		expect(await deviceData()).toEqual({ databases: [], keys: [] });
	});

	it('passes Chromium\'s installability check (manifest, icons, service worker)', { timeout: TEST_TIMEOUT_MS }, async () => {
		const profile = await mkdtemp(path.join(os.tmpdir(), 'chat-profile-'));
		const context = await launchPersistentChromium(profile, server.baseUrl);
		try {
			const page = context.pages()[0] ?? (await context.newPage());
			await logInThroughForm(page, bruno.username);
			await waitForServiceWorker(page);
			const cdp = await context.newCDPSession(page);
			const manifest = await cdp.send('Page.getAppManifest');
			expect(manifest.errors).toEqual([]);
			const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
			expect(installabilityErrors).toEqual([]);
		} finally {
			await context.close();
			await rm(profile, { recursive: true, force: true });
		}
	});
});
