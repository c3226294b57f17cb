/** The practical ceiling: a `ws` server that forwards each frame to the other sockets of the same path. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const rooms = new Map<string, Set<WebSocket>>();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const http = createServer((_req, res) => res.end('okay'));
http.on('upgrade', (request, socket, head) =>
	wss.handleUpgrade(request, socket, head, (ws) => {
		const path = request.url ?? '/';
		let room = rooms.get(path);
		if (!room) rooms.set(path, (room = new Set()));
		room.add(ws);
		ws.on('message', (data, isBinary) => {
			for (const other of room) if (other !== ws) other.send(data, { binary: isBinary });
		});
		ws.on('close', () => {
			room.delete(ws);
			if (room.size === 0) rooms.delete(path);
		});
	})
);
http.listen(0, '127.0.0.1', () => console.log(`Listening: ws://127.0.0.1:${(http.address() as AddressInfo).port}`));
process.on('disconnect', () => process.exit(0));
