/**
 * The composition root: opens the stores (embedded unless configured), applies migrations,
 * starts the relay, and returns the services and one idempotent close(). main.ts wires it to
 * the HTTP server and signals; tests call it directly on port 0.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Relay } from '../../../sync-server/relay';
import { createLogger } from '../../../sync-server/log';
import type { Bus } from './bus/bus';
import { MemoryBus } from './bus/memory-bus';
import { RedisBus } from './bus/redis-bus';
import type { Config } from './config';
import type { Database } from './db/database';
import { migrate } from './db/migrate';
import { openPglite } from './db/pglite';
import { openPostgres } from './db/postgres';
import { DynamoHistoryStore } from './history/dynamo-history';
import { startEmbeddedDynamo, type EmbeddedDynamo } from './history/embedded-dynamo';
import { lockDataDir } from './instance-lock';
import { MemoryPresence } from './presence/memory-presence';
import type { PresenceStore } from './presence/presence';
import { RedisPresence } from './presence/redis-presence';
import { PurgeJob } from './purge';
import { RelayTokenSigner } from './relay-token';
import type { Services } from './services';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

export interface Chat {
	services: Services;
	relay: Relay;
	relayPort: number;
	close(): Promise<void>;
}

export async function startChat(config: Config): Promise<Chat> {
	const log = createLogger(config.logLevel);
	const cleanups: Array<() => Promise<unknown>> = [];
	const closeAll = async (): Promise<void> => {
		for (const cleanup of cleanups.reverse().splice(0)) {
			await cleanup().catch((error) => log.error('[boot] shutdown step failed:', error));
		}
	};
	try {
		const embedded = config.databaseUrl === null || config.dynamodbEndpoint === null;
		if (embedded) cleanups.push(await lockDataDir(config.dataDir));

		const db: Database = config.databaseUrl
			? await openPostgres(config.databaseUrl)
			: await openPglite(path.join(config.dataDir, 'postgres'));
		cleanups.push(() => db.close());
		await migrate(db, MIGRATIONS_DIR);

		let dynamo: EmbeddedDynamo | null = null;
		if (!config.dynamodbEndpoint) {
			dynamo = await startEmbeddedDynamo(path.join(config.dataDir, 'dynamodb'));
			const started = dynamo;
			cleanups.push(() => started.close());
		}
		const history = new DynamoHistoryStore({
			endpoint: config.dynamodbEndpoint ?? dynamo!.endpoint,
			region: config.awsRegion,
			table: config.dynamodbTable,
			...(config.awsCredentials ? { credentials: config.awsCredentials } : {})
		});
		cleanups.push(() => history.close());
		await history.ensureTable();

		const bus: Bus = config.redisUrl ? new RedisBus({ url: config.redisUrl }) : new MemoryBus();
		cleanups.push(() => bus.close());
		const presence: PresenceStore = config.redisUrl
			? new RedisPresence({ url: config.redisUrl, instanceId: bus.instanceId })
			: new MemoryPresence();
		cleanups.push(() => presence.close());

		const tokens = await RelayTokenSigner.load(db);
		const relay = new Relay(
			{ db, bus, history, presence, tokens, allowedOrigins: config.allowedOrigins, log },
			{
				liveMessagesMax: config.liveMessagesMax,
				// Relay instances share rooms only through Redis; without it this one is alone.
				soleInstance: config.redisUrl === null,
				rollover: { connected: config.rolloverAfter, idle: Math.max(1, Math.floor(config.rolloverAfter / 2)) },
				idleUnloadMs: config.roomIdleUnloadMs
			}
		);
		const relayPort = await relay.listen(config.relayPort, config.host);
		cleanups.push(() => relay.close());

		const relayUrl = config.publicRelayUrlExplicit
			? config.publicRelayUrl
			: config.publicRelayUrl.replace(/:\d+$/, `:${relayPort}`);
		const purge = new PurgeJob({ db, history, log });
		cleanups.push(() => purge.stop());
		const services: Services = { config, db, bus, presence, history, tokens, purge, relayUrl };
		let closing: Promise<void> | null = null;
		return { services, relay, relayPort, close: () => (closing ??= closeAll()) };
	} catch (error) {
		await closeAll();
		throw error;
	}
}
