/**
 * Idle memory of the one server process (web app + relay + embedded PGlite + dynalite), then the
 * RSS cost of 100 stock y-websocket connections from Node across 10 rooms.
 */
import { readFile } from 'node:fs/promises';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { ApiClient, uniqueName } from '../../tests/helpers/api';
import { startServer, type TestServer } from '../../tests/helpers/server';
import { round, sleep, waitHealthy } from './stats';

const ROOMS = 10;
const USERS = 10; // every user joins every room: USERS × ROOMS connections
const RSS_POLL_MS = 1_000;
/** `npm run bench` shortens these (BENCH_RSS_*): scenario 4 of bench/peers.ts measures connection memory with forced GCs. */
const RSS_STABLE_WINDOW_MS = Number(process.env.BENCH_RSS_STABLE_WINDOW_MS ?? 40_000);
const RSS_SETTLE_TIMEOUT_MS = Number(process.env.BENCH_RSS_SETTLE_TIMEOUT_MS ?? 180_000);
const SYNC_TIMEOUT_MS = 30_000;

export interface RssReading {
	mib: number;
	settled: boolean;
	waitedMs: number;
}

export interface MemoryResult {
	idle: RssReading;
	/** After sign-ups, room creation and descriptor requests, before any socket. */
	beforeConnections: RssReading;
	withConnections: RssReading;
	connections: number;
	rooms: number;
	syncMs: number;
	/** (withConnections − beforeConnections) / connections. */
	kbPerConnection: number;
	/** (withConnections − idle) / connections, includes the API work of the setup. */
	kbPerConnectionFromIdle: number;
}

async function rssKb(pid: number): Promise<number> {
	const status = await readFile(`/proc/${pid}/status`, 'utf8');
	const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
	if (!match) throw new Error(`no VmRSS for pid ${pid}`);
	return Number(match[1]);
}

/**
 * Polls VmRSS every second until every reading of the last RSS_STABLE_WINDOW_MS lies within
 * 1 MiB (bounded by RSS_SETTLE_TIMEOUT_MS). Two close readings are not enough: V8's memory
 * reducer frees large external buffers (PGlite's) in steps 10–40 s after activity stops.
 */
async function settledRss(pid: number): Promise<RssReading> {
	const start = Date.now();
	const window: number[] = [];
	const size = RSS_STABLE_WINDOW_MS / RSS_POLL_MS + 1;
	for (;;) {
		window.push(await rssKb(pid));
		if (window.length > size) window.shift();
		const stable = window.length === size && Math.max(...window) - Math.min(...window) <= 1024;
		const waitedMs = Date.now() - start;
		if (stable || waitedMs >= RSS_SETTLE_TIMEOUT_MS) return { mib: round(window[window.length - 1] / 1024), settled: stable, waitedMs };
		await sleep(RSS_POLL_MS);
	}
}

export async function measureMemory(): Promise<MemoryResult> {
	let server: TestServer | undefined;
	const providers: WebsocketProvider[] = [];
	try {
		server = await startServer();
		await waitHealthy(server.baseUrl);
		const pid = server.process.pid!;
		const idle = await settledRss(pid);

		const clients: ApiClient[] = [];
		for (let i = 0; i < USERS; i++) {
			const client = new ApiClient(server.baseUrl);
			await client.signup(uniqueName(`mem${i}`));
			clients.push(client);
		}
		const members = clients.slice(1).map((c) => c.user!.username);
		const roomIds: string[] = [];
		for (let r = 0; r < ROOMS; r++) roomIds.push((await clients[0].createGroup(`bench room ${r}`, members)).id);
		const descriptors = [];
		for (const client of clients) for (const roomId of roomIds) descriptors.push(await client.descriptor(roomId));
		const beforeConnections = await settledRss(pid);

		// Each stock WebsocketProvider in Node adds a process 'exit' listener.
		process.setMaxListeners(Math.max(process.getMaxListeners(), descriptors.length + 10));
		const syncStart = Date.now();
		for (const { serverUrl, room, params } of descriptors) {
			providers.push(
				new WebsocketProvider(serverUrl, room, new Y.Doc(), {
					params,
					WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
					disableBc: true
				})
			);
		}
		while (!providers.every((p) => p.synced)) {
			if (Date.now() - syncStart > SYNC_TIMEOUT_MS) {
				const n = providers.filter((p) => p.synced).length;
				throw new Error(`only ${n} of ${providers.length} providers synced within ${SYNC_TIMEOUT_MS} ms`);
			}
			await sleep(10);
		}
		const syncMs = Date.now() - syncStart;
		const withConnections = await settledRss(pid);
		const n = providers.length;
		return {
			idle,
			beforeConnections,
			withConnections,
			connections: n,
			rooms: ROOMS,
			syncMs,
			kbPerConnection: round(((withConnections.mib - beforeConnections.mib) * 1024) / n),
			kbPerConnectionFromIdle: round(((withConnections.mib - idle.mib) * 1024) / n)
		};
	} finally {
		for (const provider of providers) provider.destroy();
		await server?.stop();
		await server?.cleanup();
	}
}
