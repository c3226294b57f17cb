/**
 * Frames the relay sends one socket within one turn of the event loop leave in one write (one
 * system call), in order; a frame of a later turn goes out in a write of its own. Real sockets on
 * loopback: the server side's writes are counted where Node hands them to the kernel.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Connection } from '../../sync-server/connection';
import { DEFAULT_RELAY_LIMITS } from '../../sync-server/protocol';
import { waitFor } from '../helpers/wait';

const IDENTITY = { userId: 'u1', userName: 'Ann', sessionId: 's1', roomId: 'r1', role: 'member' as const, extensions: true };

let server: Server | null = null;
let client: WebSocket | null = null;

afterEach(async () => {
	client?.terminate();
	await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
	server = null;
	client = null;
});

/** A relay-side Connection on a real upgraded socket, the number of writes that socket made, and what the client got. */
async function connected(): Promise<{ conn: Connection; writes: () => number; received: string[] }> {
	const wss = new WebSocketServer({ noServer: true });
	let writes = 0;
	const accepted = new Promise<Connection>((resolve) => {
		server = createServer();
		server.on('upgrade', (request, socket, head) => {
			// Count the socket's own write calls (one per system call: one buffer, or a vector).
			const raw = socket as Socket & { _write: Socket['_write']; _writev?: Socket['_writev'] };
			const write = raw._write.bind(raw);
			const writev = raw._writev!.bind(raw);
			raw._write = (chunk, encoding, callback) => {
				writes += 1;
				write(chunk, encoding, callback);
			};
			raw._writev = (chunks, callback) => {
				writes += 1;
				writev(chunks, callback);
			};
			wss.handleUpgrade(request, socket, head, (ws) => resolve(new Connection(ws, IDENTITY, DEFAULT_RELAY_LIMITS, socket)));
		});
	});
	await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
	const received: string[] = [];
	client = new WebSocket(`ws://127.0.0.1:${(server!.address() as AddressInfo).port}`);
	client.on('message', (data: Buffer) => received.push(data.toString()));
	const conn = await accepted;
	await new Promise((resolve) => client!.once('open', resolve));
	// The upgrade's own response was written before the count matters.
	await new Promise((resolve) => setImmediate(resolve));
	const base = writes;
	return { conn, writes: () => writes - base, received };
}

describe('Connection.send', () => {
	it('sends the frames of one turn in one write, in order, and a later turn\'s in another', async () => {
		const { conn, writes, received } = await connected();
		for (let i = 0; i < 5; i++) conn.send(new TextEncoder().encode(`frame ${i}`));
		await waitFor(() => received.length === 5, 5_000, 'five frames');
		expect(received).toEqual(['frame 0', 'frame 1', 'frame 2', 'frame 3', 'frame 4']);
		expect(writes()).toBe(1);
		conn.send(new TextEncoder().encode('later'));
		await waitFor(() => received.length === 6, 5_000, 'the later frame');
		expect(received.at(-1)).toBe('later');
		expect(writes()).toBe(2);
	});

	it('sends a close after the frames queued before it', async () => {
		const { conn, received } = await connected();
		const closed = new Promise<number>((resolve) => client!.once('close', resolve));
		conn.send(new TextEncoder().encode('last words'));
		conn.close(4410, 'moved');
		expect(await closed).toBe(4410);
		expect(received).toEqual(['last words']);
	});
});
