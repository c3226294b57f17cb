/** The reference server: @y/websocket-server's setupWSConnection behind a `ws` WebSocketServer. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { setupWSConnection } from '@y/websocket-server/utils';

const wss = new WebSocketServer({ noServer: true });
const http = createServer((_req, res) => res.end('okay'));
wss.on('connection', setupWSConnection);
http.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request)));
http.listen(0, '127.0.0.1', () => console.log(`Listening: ws://127.0.0.1:${(http.address() as AddressInfo).port}`));
process.on('disconnect', () => process.exit(0));
