/**
 * The process's configuration, read once at the edge (main.ts) and passed down.
 * Inner modules never read process.env; a bad variable is named in the error.
 */
import path from 'node:path';
import { ROOM_IDLE_UNLOAD_MS } from '../../../sync-server/protocol';

export interface Config {
	host: string;
	port: number;
	relayPort: number;
	dataDir: string;
	databaseUrl: string | null;
	dynamodbEndpoint: string | null;
	awsRegion: string;
	/** From AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; null uses local placeholders. */
	awsCredentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
	redisUrl: string | null;
	publicRelayUrl: string;
	/** False when PUBLIC_RELAY_URL was derived from HOST and RELAY_PORT (then the bound port wins). */
	publicRelayUrlExplicit: boolean;
	origin: string;
	/** False when ORIGIN was derived from HOST and PORT (then the bound port wins). */
	originExplicit: boolean;
	/** Origins whose pages may open relay sockets and post to the JSON API. */
	allowedOrigins: string[];
	liveMessagesMax: number;
	/** Removed entries after which a room with sockets rolls over to a new epoch (idle: half). */
	rolloverAfter: number;
	/** How long a room stays in the relay's memory after its last socket left. */
	roomIdleUnloadMs: number;
	dynamodbTable: string;
	relayTokenTtlMs: number;
	logLevel: 'silent' | 'error' | 'info';
}

export class ConfigError extends Error {
	constructor(variable: string, problem: string) {
		super(`${variable}: ${problem}`);
		this.name = 'ConfigError';
	}
}

type Env = Record<string, string | undefined>;

function readPort(env: Env, name: string, fallback: number): number {
	const raw = env[name];
	if (raw === undefined || raw === '') return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value < 0 || value > 65535) {
		throw new ConfigError(name, `expected a port number 0-65535, got "${raw}"`);
	}
	return value;
}

function readPositiveInt(env: Env, name: string, fallback: number): number {
	const raw = env[name];
	if (raw === undefined || raw === '') return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value <= 0) {
		throw new ConfigError(name, `expected a positive integer, got "${raw}"`);
	}
	return value;
}

function readUrl(env: Env, name: string, protocols: string[]): string | null {
	const raw = env[name];
	if (raw === undefined || raw === '') return null;
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw new ConfigError(name, `not a URL: "${raw}"`);
	}
	if (!protocols.includes(url.protocol)) {
		throw new ConfigError(name, `expected ${protocols.join(' or ')} URL, got "${raw}"`);
	}
	return raw;
}

function readOrigin(env: Env, name: string, fallback: string): string {
	const raw = readUrl(env, name, ['http:', 'https:']);
	return raw === null ? fallback : new URL(raw).origin;
}

/** Browsers treat localhost and 127.0.0.1 as different origins; accept both for the loopback default. */
function loopbackTwins(origin: string): string[] {
	const url = new URL(origin);
	const twins = [origin];
	if (url.hostname === '127.0.0.1') twins.push(origin.replace('127.0.0.1', 'localhost'));
	if (url.hostname === 'localhost') twins.push(origin.replace('localhost', '127.0.0.1'));
	return twins;
}

function allowedOrigins(origin: string, extra: string[]): string[] {
	return [...new Set([...loopbackTwins(origin), ...extra])];
}

/** The configuration once the app's port is bound (PORT=0 picks one): a derived ORIGIN follows it. */
export function withBoundAppPort(config: Config, port: number): Config {
	if (config.originExplicit || config.port === port) return config;
	const url = new URL(config.origin);
	url.port = String(port);
	const extra = config.allowedOrigins.filter((o) => !loopbackTwins(config.origin).includes(o));
	return { ...config, port, origin: url.origin, allowedOrigins: allowedOrigins(url.origin, extra) };
}

export function readConfig(env: Env = process.env, cwd = process.cwd()): Config {
	const host = env.HOST || '127.0.0.1';
	const port = readPort(env, 'PORT', 3000);
	const relayPort = readPort(env, 'RELAY_PORT', 3001);
	const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
	const origin = readOrigin(env, 'ORIGIN', `http://${urlHost}:${port}`);
	const extraOrigins = (env.ALLOWED_ORIGINS ?? '')
		.split(',')
		.map((s) => s.trim())
		.filter(Boolean)
		.map((value) => readOrigin({ ALLOWED_ORIGINS: value }, 'ALLOWED_ORIGINS', ''));
	const logLevel = env.LOG_LEVEL ?? 'info';
	if (logLevel !== 'silent' && logLevel !== 'error' && logLevel !== 'info') {
		throw new ConfigError('LOG_LEVEL', `expected silent, error or info, got "${logLevel}"`);
	}
	const liveMessagesMax = readPositiveInt(env, 'LIVE_MESSAGES_MAX', 1000);
	return {
		host,
		port,
		relayPort,
		dataDir: path.resolve(cwd, env.DATA_DIR || './data'),
		databaseUrl: readUrl(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
		dynamodbEndpoint: readUrl(env, 'DYNAMODB_ENDPOINT', ['http:', 'https:']),
		awsRegion: env.AWS_REGION || 'us-east-1',
		awsCredentials:
			env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
				? {
						accessKeyId: env.AWS_ACCESS_KEY_ID,
						secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
						...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {})
					}
				: null,
		redisUrl: readUrl(env, 'REDIS_URL', ['redis:', 'rediss:']),
		publicRelayUrl:
			readUrl(env, 'PUBLIC_RELAY_URL', ['ws:', 'wss:']) ?? `ws://${urlHost}:${relayPort}`,
		publicRelayUrlExplicit: Boolean(env.PUBLIC_RELAY_URL),
		origin,
		originExplicit: Boolean(env.ORIGIN),
		allowedOrigins: allowedOrigins(origin, extraOrigins),
		liveMessagesMax,
		rolloverAfter: readPositiveInt(env, 'EPOCH_ROLLOVER_AFTER', Math.max(2 * liveMessagesMax, 2000)),
		roomIdleUnloadMs: readPositiveInt(env, 'ROOM_IDLE_UNLOAD_MS', ROOM_IDLE_UNLOAD_MS),
		dynamodbTable: env.DYNAMODB_TABLE || 'chat_history',
		relayTokenTtlMs: readPositiveInt(env, 'RELAY_TOKEN_TTL_MS', 10 * 60_000),
		logLevel
	};
}
