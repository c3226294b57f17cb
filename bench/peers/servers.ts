/**
 * Starts each server under test in its own process and says how to reach a room on it: our app
 * (web app + relay, `node --import tsx src/main.ts`, as `npm start` runs it), @y/websocket-server,
 * Hocuspocus and the bare `ws` fan-out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../../tests/helpers/server';
import { waitHealthy } from '../lib/stats';
import { track } from './processes';
import type { Dialect } from './wire';

export type ServerKind = 'ours' | 'ours-pg' | 'y-websocket' | 'hocuspocus' | 'ws';

export const SERVER_LABELS: Record<ServerKind, string> = {
	ours: 'our relay (PGlite)',
	'ours-pg': 'our relay (PostgreSQL)',
	'y-websocket': '@y/websocket-server 0.1.1',
	hocuspocus: 'Hocuspocus 3.4.4',
	ws: 'bare ws fan-out'
};

export interface BenchServer {
	kind: ServerKind;
	pid: number;
	dialect: Dialect;
	/** false for the bare fan-out, which answers no sync step. */
	expectsSync: boolean;
	/** The socket URL of a room (for ours, the caller appends the descriptor's token). */
	roomUrl(room: string): string;
	/** Our app only. */
	app?: { baseUrl: string; relayUrl: string };
	/** With `memoryProbe`: the process's memory right after a forced full GC. */
	memory(): Promise<MemorySample>;
	stop(): Promise<void>;
}

/** A server's memory right after a forced full GC (bench/peers/memory-probe.mjs), KiB. */
export interface MemorySample {
	rssKiB: number;
	/** JS heap in use + external (Buffers, ArrayBuffers). */
	heapKiB: number;
}

const PROBE = fileURLToPath(new URL('./memory-probe.mjs', import.meta.url));

/** Asks the preloaded memory probe (bench/peers/memory-probe.mjs) for a sample. */
function probeMemory(child: ChildProcess): Promise<MemorySample> {
	if (!child.send) return Promise.reject(new Error('the server was started without memoryProbe'));
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => done(new Error('no memory sample within 30 s')), 30_000);
		const onMessage = (m: { type?: string } & MemorySample): void => {
			if (m?.type === 'memory') done(null, { rssKiB: m.rssKiB, heapKiB: m.heapKiB });
		};
		const done = (error: Error | null, sample?: MemorySample): void => {
			clearTimeout(timer);
			child.off('message', onMessage);
			if (error) reject(error);
			else resolve(sample!);
		};
		child.on('message', onMessage);
		child.send({ type: 'memory' });
	});
}

/**
 * For memory samples (scenario 4), every server alike: glibc's malloc serves large blocks from
 * mmap and hands them back on free, rather than raising its threshold after the first such free
 * and keeping later large blocks in its heap, where freed memory leaves RSS at no fixed time. Our
 * server frees tens of MiB that way after sign-ups (each password hash takes 19 MiB), which made
 * one run's baseline 50 MiB too high and the connections' RSS cost come out negative.
 */
const MEMORY_SAMPLING_ENV = { MALLOC_MMAP_THRESHOLD_: String(128 * 1024) };

const PEER_SCRIPTS: Record<'y-websocket' | 'hocuspocus' | 'ws', string> = {
	'y-websocket': 'y-websocket-server.ts',
	hocuspocus: 'hocuspocus-server.ts',
	ws: 'ws-fanout.ts'
};

/** BENCH_APP_DIR: run our app from another checkout (e.g. a scratch copy with a relay change to try). */
export interface OursOptions {
	databaseUrl?: string;
	/** Directory for `node --cpu-prof` output, to profile the server process. */
	cpuProfDir?: string;
	/** Preload bench/peers/memory-probe.mjs (with --expose-gc) so that `memory()` works. */
	memoryProbe?: boolean;
	/** Our relay's ROOM_IDLE_UNLOAD_MS (how long an empty room stays loaded); default as shipped. */
	roomIdleUnloadMs?: number;
}

export async function startBenchServer(kind: ServerKind, options: OursOptions = {}): Promise<BenchServer> {
	if (kind === 'ours' || kind === 'ours-pg') {
		// As tests/helpers/server.ts starts it, plus node flags (--cpu-prof is not allowed in NODE_OPTIONS).
		const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bench-peers-'));
		const flags = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [];
		const probe = options.memoryProbe ? ['--expose-gc', '--import', 'tsx', '--import', PROBE] : ['--import', 'tsx'];
		const env: NodeJS.ProcessEnv = { ...process.env, ...(options.memoryProbe ? MEMORY_SAMPLING_ENV : {}), HOST: '127.0.0.1', PORT: '0', RELAY_PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'error', NODE_NO_WARNINGS: '1' };
		if (kind === 'ours-pg') env.DATABASE_URL = options.databaseUrl!;
		if (options.roomIdleUnloadMs !== undefined) env.ROOM_IDLE_UNLOAD_MS = String(options.roomIdleUnloadMs);
		const child = track(spawn(process.execPath, [...flags, ...probe, 'src/main.ts'], { cwd: process.env.BENCH_APP_DIR ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe', ...(options.memoryProbe ? ['ipc' as const] : [])] }));
		const exited = new Promise((resolve) => child.once('exit', resolve));
		const app = await new Promise<{ baseUrl: string; relayUrl: string }>((resolve, reject) => {
			let out = '';
			const onData = (chunk: Buffer): void => {
				out += chunk;
				const web = /Web app:\s+(http:\/\/\S+)/.exec(out);
				const relay = /Relay:\s+(ws:\/\/\S+)/.exec(out);
				if (web && relay) resolve({ baseUrl: web[1], relayUrl: relay[1] });
			};
			child.stdout!.on('data', onData);
			child.stderr!.on('data', (chunk) => process.stderr.write(chunk));
			child.once('exit', (code) => reject(new Error(`our server exited with ${code} before it started:\n${out}`)));
		});
		await waitHealthy(app.baseUrl);
		return {
			kind,
			pid: child.pid!,
			dialect: 'y',
			expectsSync: true,
			roomUrl: (room) => `${app.relayUrl}/${room}`,
			app,
			memory: () => probeMemory(child),
			async stop() {
				if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
				await exited;
				await rm(dataDir, { recursive: true, force: true });
			}
		};
	}
	const script = fileURLToPath(new URL(`./${PEER_SCRIPTS[kind]}`, import.meta.url));
	const child = track(
		spawn(process.execPath, [...(options.memoryProbe ? ['--expose-gc', '--import', 'tsx', '--import', PROBE] : ['--import', 'tsx']), script], {
			stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
			env: { ...process.env, ...(options.memoryProbe ? MEMORY_SAMPLING_ENV : {}), NODE_NO_WARNINGS: '1' }
		})
	);
	const base = await new Promise<string>((resolve, reject) => {
		let out = '';
		child.stdout!.on('data', (chunk) => {
			out += chunk;
			const match = /Listening: (ws:\/\/\S+)/.exec(out);
			if (match) resolve(match[1]);
		});
		child.once('exit', (code) => reject(new Error(`${kind} exited with ${code} before listening:\n${out}`)));
	});
	return {
		kind,
		pid: child.pid!,
		dialect: kind === 'hocuspocus' ? 'hocus' : 'y',
		expectsSync: kind !== 'ws',
		// Hocuspocus takes the document name from each frame, not from the path.
		roomUrl: (room) => (kind === 'hocuspocus' ? base : `${base}/${room}`),
		memory: () => probeMemory(child),
		async stop() {
			if (child.exitCode !== null || child.signalCode !== null) return;
			const exited = new Promise((resolve) => child.once('exit', resolve));
			child.kill('SIGTERM');
			await exited;
		}
	};
}
