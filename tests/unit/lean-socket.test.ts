import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { LeanSocket, type LeanSocketEvents } from '../../bench/peers/lean-socket';

/** The load generator's client against the `ws` server the benchmarked servers are built on. */
let http: Server | null = null;

async function serve(onSocket: (ws: WebSocket) => void, refuse = false): Promise<string> {
	const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
	http = createServer();
	http.on('upgrade', (req, socket, head) => {
		if (refuse) {
			socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
			return;
		}
		wss.handleUpgrade(req, socket, head, onSocket);
	});
	await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve));
	return `ws://127.0.0.1:${(http.address() as AddressInfo).port}/room?token=t`;
}

afterEach(async () => {
	http?.closeAllConnections();
	await new Promise((resolve) => http?.close(resolve));
	http = null;
});

function events(): LeanSocketEvents & { log: string[]; messages: Buffer[]; next(what: string): Promise<void> } {
	const log: string[] = [];
	const messages: Buffer[] = [];
	const waiting: Array<{ what: string; resolve: () => void }> = [];
	const record = (entry: string): void => {
		log.push(entry);
		for (const w of waiting.filter((w) => entry.startsWith(w.what))) {
			waiting.splice(waiting.indexOf(w), 1);
			w.resolve();
		}
	};
	return {
		log,
		messages,
		open: () => record('open'),
		message: (data) => {
			messages.push(Buffer.from(data));
			record('message');
		},
		fail: (why) => record(`fail ${why}`),
		close: (why) => record(`close ${why}`),
		next: (what) => (log.some((e) => e.startsWith(what)) ? Promise.resolve() : new Promise((resolve) => waiting.push({ what, resolve })))
	};
}

describe('the load generator socket', () => {
	it('sends masked frames of every length encoding and reads frames split across chunks', async () => {
		const sizes = [0, 125, 126, 65_535, 65_536, 300_000];
		const received: Buffer[] = [];
		let path = '';
		const url = await serve((ws) => {
			ws.on('message', (data: Buffer) => {
				received.push(data);
				ws.send(data); // echoed: the big ones reach the client in many TCP chunks
			});
		});
		http!.on('upgrade', (req) => (path = req.url ?? ''));
		const on = events();
		const socket = new LeanSocket(url, on);
		await on.next('open');
		expect(path).toBe('/room?token=t');
		const payloads = sizes.map((n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + n) & 255)));
		for (const p of payloads) socket.send(p);
		await expect.poll(() => on.messages.length).toBe(payloads.length);
		expect(received.map((b) => b.length)).toEqual(sizes);
		received.forEach((b, i) => expect(b.equals(payloads[i])).toBe(true));
		on.messages.forEach((b, i) => expect(b.equals(payloads[i])).toBe(true));
		socket.close();
		await socket.ended;
	});

	it('answers pings, and reports the close code and reason the server chose', async () => {
		const url = await serve((ws) => {
			ws.on('pong', (data) => {
				expect(data.toString()).toBe('are you there');
				ws.close(4410, 'room moved');
			});
			ws.ping('are you there');
		});
		const on = events();
		new LeanSocket(url, on);
		await on.next('close');
		expect(on.log).toEqual(['open', 'close 4410 room moved']);
	});

	it('closes with 1000 when it ends the session itself', async () => {
		let closed = '';
		const url = await serve((ws) => ws.on('close', (code) => (closed = String(code))));
		const on = events();
		const socket = new LeanSocket(url, on);
		await on.next('open');
		socket.close();
		await on.next('close');
		expect(on.log.at(-1)).toBe('close 1000 ');
		await expect.poll(() => closed).toBe('1000');
	});

	it('fails, not opens, when the upgrade is refused', async () => {
		const url = await serve(() => undefined, true);
		const on = events();
		const socket = new LeanSocket(url, on);
		await socket.ended;
		expect(on.log).toEqual(['fail HTTP 401']);
		expect(socket.open).toBe(false);
	});
});
