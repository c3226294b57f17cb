/**
 * Script payloads in display names, room names and messages are rendered as text: no script
 * runs, no element is injected, the text reads exactly as typed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ulid } from 'ulid';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { ApiClient, uniqueName } from '../helpers/api';
import { launchChromium } from '../helpers/browser';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const NAME_PAYLOAD = '<img src=x onerror="window.__xss=1;alert(1)">';
const ROOM_PAYLOAD = '<script>window.__xss=2</script><b>bold</b>';
const MESSAGE_PAYLOADS = ['<img src=x onerror="window.__xss=3;alert(3)">', '"><svg onload="window.__xss=4">', 'javascript:alert(5)', '{@html "<i>x</i>"}'];

let server: TestServer;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
	server = await startServer();
	browser = await launchChromium();
});

afterAll(async () => {
	await context?.close();
	await browser?.close();
	await server?.stop();
	await server?.cleanup();
});

async function pageFor(api: ApiClient): Promise<{ page: Page; dialogs: string[] }> {
	context = await browser.newContext({ baseURL: server.baseUrl });
	const [name, value] = api.cookie!.split('=');
	await context.addCookies([{ name, value, url: server.baseUrl }]);
	const page = await context.newPage();
	const dialogs: string[] = [];
	page.on('dialog', (dialog) => {
		dialogs.push(dialog.message());
		void dialog.dismiss();
	});
	return { page, dialogs };
}

describe('hostile text in the browser', () => {
	it('renders payloads in names, room names and messages as text, and runs none of them', async () => {
		const mallory = new ApiClient(server.baseUrl);
		await mallory.signup(uniqueName('mal'), 'correct horse battery', NAME_PAYLOAD);
		const victim = new ApiClient(server.baseUrl);
		await victim.signup(uniqueName('vic'), 'correct horse battery', 'Victim');
		const room = await mallory.createGroup(ROOM_PAYLOAD, [victim.user!.username]);

		// Mallory posts the payloads through the real sync path.
		const { serverUrl, params } = await mallory.descriptor(room.id);
		const doc = new Y.Doc();
		const provider = new WebsocketProvider(serverUrl, room.id, doc, {
			params,
			WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
			disableBc: true
		});
		doc.getArray('messages').push(MESSAGE_PAYLOADS.map((text) => ({ id: ulid(), author: mallory.user!.id, ts: Date.now(), kind: 'text', text })));
		await waitFor(async () => (await victim.request('GET', `/api/rooms/${room.id}/messages`)).body.messages.length === MESSAGE_PAYLOADS.length, 10_000, 'stored');
		provider.destroy();

		const { page, dialogs } = await pageFor(victim);
		await page.goto('/');
		await page.getByText(ROOM_PAYLOAD).first().waitFor();
		await page.goto(`/rooms/${room.id}`);
		const log = page.getByRole('log');
		for (const text of MESSAGE_PAYLOADS) await log.getByText(text, { exact: true }).waitFor();
		await page.getByText(NAME_PAYLOAD).first().waitFor();

		expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
		expect(dialogs).toEqual([]);
		expect(await page.locator('img[src="x"], svg[onload], script:not([src]):has-text("__xss")').count()).toBe(0);
		expect(await page.locator('b', { hasText: 'bold' }).count()).toBe(0);
	});

	it('serves pages with a Content-Security-Policy that forbids inline script and framing', async () => {
		const response = await fetch(`${server.baseUrl}/login`);
		const csp = response.headers.get('content-security-policy') ?? '';
		const scriptSrc = /script-src ([^;]*)/.exec(csp)?.[1] ?? '';
		expect(scriptSrc).toContain("'self'");
		expect(scriptSrc).not.toContain('unsafe-inline');
		expect(csp).toContain("frame-ancestors 'none'");
		expect(response.headers.get('x-content-type-options')).toBe('nosniff');
	});
});
