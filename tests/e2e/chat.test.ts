/**
 * Two people in two browser contexts: sign up, open a direct chat, talk live, see each other
 * online and typing; after both servers restart the history is intact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { ulid } from 'ulid';
import { ApiClient, uniqueName } from '../helpers/api';
import { launchChromium } from '../helpers/browser';
import { startServer, type TestServer } from '../helpers/server';

let server: TestServer;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
	server = await startServer();
	browser = await launchChromium();
});

afterAll(async () => {
	for (const context of contexts) await context.close();
	await browser?.close();
	await server?.stop();
	await server?.cleanup();
});

async function newPage(): Promise<Page> {
	const context = await browser.newContext({ baseURL: server.baseUrl });
	contexts.push(context);
	const page = await context.newPage();
	page.setDefaultTimeout(15_000);
	return page;
}

async function signUp(page: Page, username: string, displayName: string): Promise<void> {
	await page.goto('/signup');
	await page.getByLabel('Username').fill(username);
	await page.getByLabel('Display name').fill(displayName);
	await page.getByLabel('Password').fill('correct horse battery');
	await page.getByRole('button', { name: 'Create account' }).click();
	await page.waitForURL((url) => url.pathname === '/');
}

async function logIn(page: Page, username: string): Promise<void> {
	await page.goto('/login');
	await page.getByLabel('Username').fill(username);
	await page.getByLabel('Password').fill('correct horse battery');
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.waitForURL((url) => url.pathname === '/');
}

function log(page: Page) {
	return page.getByRole('log');
}

describe('chat in the browser', () => {
	const ana = uniqueName('ana');
	const bruno = uniqueName('bruno');
	let anaPage: Page;
	let brunoPage: Page;
	let roomPath = '';

	it('redirects a signed-out visitor to the login page', async () => {
		const page = await newPage();
		await page.goto('/');
		expect(new URL(page.url()).pathname).toBe('/login');
		await expect(page.getByLabel('Username').isVisible()).resolves.toBe(true);
	});

	it('lets two people sign up and open a direct chat', async () => {
		anaPage = await newPage();
		brunoPage = await newPage();
		await signUp(anaPage, ana, 'Ana Lima');
		await signUp(brunoPage, bruno, 'Bruno Costa');

		await anaPage.getByRole('button', { name: 'New chat' }).first().click();
		await anaPage.getByLabel('Find a person').fill(bruno);
		await anaPage.getByRole('button', { name: /Bruno Costa/ }).first().click();
		await anaPage.waitForURL(/\/rooms\//);
		roomPath = new URL(anaPage.url()).pathname;

		// Bruno finds the new chat in his room list.
		await brunoPage.reload();
		await brunoPage.getByRole('link', { name: /Ana Lima/ }).first().click();
		await brunoPage.waitForURL((url) => url.pathname === roomPath);
	});

	it('delivers messages live both ways, with Enter sending and Shift+Enter breaking the line', async () => {
		const composer = anaPage.getByRole('textbox', { name: 'Message' });
		await composer.fill('Hi Bruno!');
		await composer.press('Enter');
		await expect(log(brunoPage).getByText('Hi Bruno!').waitFor()).resolves.toBeUndefined();

		const brunoComposer = brunoPage.getByRole('textbox', { name: 'Message' });
		await brunoComposer.click();
		await brunoComposer.type('Line one');
		await brunoComposer.press('Shift+Enter');
		await brunoComposer.type('Line two');
		await brunoComposer.press('Enter');
		const received = log(anaPage).locator('[data-message-id]').filter({ hasText: 'Line one' });
		await received.waitFor();
		expect(await received.innerText()).toMatch(/Line one\s*\nLine two/);
		expect(await brunoComposer.inputValue()).toBe('');
	});

	it('marks own messages with a status and others\' without', async () => {
		const own = log(anaPage).locator('[data-message-id]').filter({ hasText: 'Hi Bruno!' });
		await expect.poll(() => own.getAttribute('data-status')).toMatch(/^(sent|delivered|read)$/);
		const theirs = log(anaPage).locator('[data-message-id]').filter({ hasText: 'Line one' });
		expect(await theirs.getAttribute('data-status')).toBeNull();
	});

	it('shows the other person online and typing', async () => {
		await anaPage.getByText('online', { exact: false }).first().waitFor();
		await brunoPage.getByRole('textbox', { name: 'Message' }).type('thinking…');
		await anaPage.getByText(/typing/i).first().waitFor();
		await brunoPage.getByRole('textbox', { name: 'Message' }).fill('');
	});

	it('lets a stock WebsocketProvider in Node, given only the sync descriptor, talk with the browser', async () => {
		const api = new ApiClient(server.baseUrl);
		const me = await api.login(bruno);
		const roomId = roomPath.split('/').pop()!;
		const { serverUrl, room, params } = await api.descriptor(roomId);
		const doc = new Y.Doc();
		const provider = new WebsocketProvider(serverUrl, room, doc, {
			params,
			WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
			disableBc: true
		});
		try {
			const messages = doc.getArray<{ text: string }>('messages');
			await expect.poll(() => messages.toArray().map((m) => m.text), { timeout: 10_000 }).toContain('Hi Bruno!');
			messages.push([{ id: ulid(), author: me.id, ts: Date.now(), kind: 'text', text: 'from a bot in Node' } as never]);
			await log(anaPage).getByText('from a bot in Node').waitFor();
			await anaPage.getByRole('textbox', { name: 'Message' }).fill('hello bot');
			await anaPage.getByRole('textbox', { name: 'Message' }).press('Enter');
			await expect.poll(() => messages.toArray().map((m) => m.text), { timeout: 10_000 }).toContain('hello bot');
		} finally {
			provider.destroy();
		}
	});

	it('keeps every message after both servers restart', async () => {
		const ids = await log(anaPage).locator('[data-message-id]').evaluateAll((els) => els.map((e) => e.getAttribute('data-message-id')));
		expect(ids.length).toBe(4);
		const { dataDir } = server;
		const port = Number(new URL(server.baseUrl).port);
		const relayPort = Number(new URL(server.relayUrl).port);
		expect(await server.stop()).toBe(0);
		server = await startServer({ dataDir, port, relayPort });
		// A brand-new browser profile has no device copy: what it shows comes from the servers.
		const fresh = await newPage();
		await logIn(fresh, ana);
		await fresh.goto(roomPath);
		await expect
			.poll(() => log(fresh).locator('[data-message-id]').evaluateAll((els) => els.map((e) => e.getAttribute('data-message-id'))), {
				timeout: 15_000
			})
			.toEqual(ids);
	});
});
