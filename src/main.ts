/**
 * `npm start`: the web app (SvelteKit, adapter-node's handler) on PORT and the sync relay on
 * RELAY_PORT, in one process so the embedded database has one owner. This file only wires
 * configuration, servers and signals.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startChat, type Chat } from './lib/server/boot';
import { ConfigError, readConfig, withBoundAppPort, type Config } from './lib/server/config';
import { DataDirLockedError } from './lib/server/instance-lock';
import { setServices } from './lib/server/services';

const HTTP_CLOSE_TIMEOUT_MS = 5_000;

type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;

export interface RunningApp {
	chat: Chat;
	server: Server;
	port: number;
	close(): Promise<void>;
}

/** Starts both servers; used by main below and by tests (with PORT=0, RELAY_PORT=0). */
export async function startApp(requested: Config): Promise<RunningApp> {
	let handler: Handler | null = null;
	const server = createServer((req, res) => {
		if (handler) return handler(req, res);
		res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
		res.end(JSON.stringify({ error: { code: 'starting', message: 'the app is starting' } }));
	});
	// Bind first: with PORT=0 the derived ORIGIN (CSRF check, relay allowlist) needs the real port.
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(requested.port, requested.host, () => resolve());
	});
	const port = (server.address() as AddressInfo).port;
	const config = withBoundAppPort(requested, port);
	// adapter-node reads ORIGIN when its handler loads; without it, it assumes https.
	process.env.ORIGIN = config.origin;
	let chat: Chat;
	try {
		chat = await startChat(config);
	} catch (error) {
		server.close();
		throw error;
	}
	setServices(chat.services);
	const handlerUrl = new URL('../build/handler.js', import.meta.url).href;
	handler = ((await import(handlerUrl)) as { handler: Handler }).handler;
	let closing: Promise<void> | null = null;
	const close = (): Promise<void> =>
		(closing ??= (async () => {
			const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
			server.closeIdleConnections();
			const timer = setTimeout(() => server.closeAllConnections(), HTTP_CLOSE_TIMEOUT_MS);
			await stopped;
			clearTimeout(timer);
			await chat.close();
			setServices(undefined);
		})());
	return { chat, server, port, close };
}

async function main(): Promise<void> {
	// The pinned AWS SDK supports Node 20; its warning is about releases after January 2027.
	process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
	let config: Config;
	try {
		config = readConfig();
	} catch (error) {
		if (error instanceof ConfigError) {
			console.error(`Configuration error: ${error.message}`);
			process.exit(2);
		}
		throw error;
	}
	let app: RunningApp;
	try {
		app = await startApp(config);
	} catch (error) {
		if (error instanceof DataDirLockedError) {
			console.error(error.message);
			process.exit(1);
		}
		throw error;
	}
	const services = [
		config.databaseUrl ? 'PostgreSQL' : `PGlite (${config.dataDir})`,
		config.dynamodbEndpoint ? 'DynamoDB' : 'dynalite',
		config.redisUrl ? 'Redis' : 'in-process bus'
	];
	console.log(`Web app:  http://${config.host}:${app.port}`);
	console.log(`Relay:    ${app.chat.services.relayUrl}`);
	console.log(`Services: ${services.join(', ')}`);

	const shutdown = (signal: string): void => {
		console.log(`${signal}: shutting down…`);
		app.close().then(
			() => process.exit(0),
			(error) => {
				console.error('Shutdown failed:', error);
				process.exit(1);
			}
		);
	};
	// Terminals and service managers signal the whole process group; handle each signal once.
	process.once('SIGINT', () => shutdown('SIGINT'));
	process.once('SIGTERM', () => shutdown('SIGTERM'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
	main().catch((error) => {
		console.error('Startup failed:', error);
		process.exit(1);
	});
}
