/**
 * Starts the real app + relay as `npm start` does (node --import tsx src/main.ts), on port 0,
 * with its own DATA_DIR, against the services the environment names (DATABASE_URL, REDIS_URL,
 * DYNAMODB_ENDPOINT pass through). Returns URLs and ways to stop it: politely or with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const START_TIMEOUT_MS = 60_000;

export interface TestServer {
	baseUrl: string;
	relayUrl: string;
	dataDir: string;
	process: ChildProcess;
	output(): string;
	/** SIGTERM, wait for exit; resolves with the exit code. */
	stop(): Promise<number | null>;
	/** SIGKILL: no chance to flush anything. */
	kill(): Promise<void>;
	/** Removes DATA_DIR (after stop), also when the caller chose it. */
	cleanup(): Promise<void>;
}

export interface StartOptions {
	dataDir?: string;
	env?: Record<string, string>;
	/** Fixed ports, e.g. to restart a server where clients expect it. Default 0 (any free port). */
	port?: number;
	relayPort?: number;
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
	const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'chat-test-')));
	const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
		cwd: ROOT,
		env: {
			...process.env,
			HOST: '127.0.0.1',
			PORT: String(options.port ?? 0),
			RELAY_PORT: String(options.relayPort ?? 0),
			DATA_DIR: dataDir,
			LOG_LEVEL: 'error',
			NODE_NO_WARNINGS: '1',
			...options.env
		},
		stdio: ['ignore', 'pipe', 'pipe']
	});
	let output = '';
	child.stdout!.on('data', (chunk) => (output += chunk));
	child.stderr!.on('data', (chunk) => (output += chunk));
	const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

	const urls = await new Promise<{ baseUrl: string; relayUrl: string }>((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${output}`)), START_TIMEOUT_MS);
		const check = (): void => {
			const web = /Web app:\s+(http:\/\/\S+)/.exec(output);
			const relay = /Relay:\s+(ws:\/\/\S+)/.exec(output);
			if (web && relay) {
				clearTimeout(timer);
				resolve({ baseUrl: web[1], relayUrl: relay[1] });
			}
		};
		child.stdout!.on('data', check);
		child.once('exit', (code) => {
			clearTimeout(timer);
			reject(new Error(`server exited with ${code} before it started:\n${output}`));
		});
	});

	return {
		...urls,
		dataDir,
		process: child,
		output: () => output,
		async stop() {
			if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
			return exited;
		},
		async kill() {
			if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
			await exited;
		},
		async cleanup() {
			await rm(dataDir, { recursive: true, force: true });
		}
	};
}
