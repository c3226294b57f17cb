/**
 * Presence in Redis, shared by every relay instance. Per user one sorted set whose members are
 * the instance ids holding a connection of theirs, scored by when that claim expires (ms since
 * the epoch). A user is online while any claim's score is in the future, so a crashed instance's
 * claims lapse on their own after the TTL; live instances renew theirs on a timer.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type ChainableCommander } from 'ioredis';
import { PRESENCE_RENEW_MS, PRESENCE_TTL_MS, type PresenceStore } from './presence';
import { requireConnectionCount, requirePositiveMs } from './memory-presence';
import { quitConnection } from '../redis-connection';

export type PresenceErrorReporter = (error: unknown, context: string) => void;

export interface RedisPresenceOptions {
	url: string;
	instanceId?: string;
	/** Prepended to every key, so several tenants or test runs can share one Redis. */
	keyPrefix?: string;
	/** How long a claim lives without renewal. Every instance must use the same value: PEXPIRE
	 * sets the key's lifetime from the latest writer, which is only the longest when TTLs agree. */
	ttlMs?: number;
	/** How often this instance renews its claims; keep well under ttlMs. */
	renewMs?: number;
	/** Where connection errors and failed renewals are reported. */
	onError?: PresenceErrorReporter;
}

function logPresenceError(error: unknown, context: string): void {
	console.error(`[presence] ${context}:`, error);
}

export class RedisPresence implements PresenceStore {
	readonly kind = 'redis' as const;
	readonly instanceId: string;
	private readonly redis: Redis;
	private readonly keyPrefix: string;
	private readonly ttlMs: number;
	private readonly reportError: PresenceErrorReporter;
	private readonly held = new Set<string>();
	private readonly renewTimer: NodeJS.Timeout;
	private renewing = false;
	private closing: Promise<void> | null = null;

	constructor(options: RedisPresenceOptions) {
		this.instanceId = options.instanceId ?? randomUUID();
		this.keyPrefix = options.keyPrefix ?? '';
		this.ttlMs = requirePositiveMs(options.ttlMs ?? PRESENCE_TTL_MS, 'ttlMs');
		const renewMs = requirePositiveMs(options.renewMs ?? PRESENCE_RENEW_MS, 'renewMs');
		this.reportError = options.onError ?? logPresenceError;
		this.redis = new Redis(options.url, { connectionName: `presence-${this.instanceId}` });
		this.redis.on('error', (error: unknown) => this.reportError(error, 'connection'));
		this.renewTimer = setInterval(() => void this.renew(), renewMs);
		// Presence must never keep a process alive that has nothing else to do.
		this.renewTimer.unref();
	}

	async setConnections(userId: string, count: number): Promise<void> {
		requireConnectionCount(count);
		this.assertOpen();
		const key = this.key(userId);
		// `held` changes before the command is queued, and one connection keeps command order, so
		// a renewal can never re-add a claim after the ZREM that released it.
		if (count > 0) {
			this.held.add(userId);
			// MULTI: a key must never exist without its expiry, or a crash would leak it.
			const transaction = this.redis.multi();
			transaction.zadd(key, Date.now() + this.ttlMs, this.instanceId).pexpire(key, this.ttlMs);
			await execChecked(transaction);
		} else {
			this.held.delete(userId);
			await this.redis.zrem(key, this.instanceId);
		}
	}

	async onlineUsers(userIds: string[]): Promise<Set<string>> {
		this.assertOpen();
		const unique = [...new Set(userIds)];
		if (unique.length === 0) return new Set();
		// Exclusive lower bound: a claim expiring exactly now has lapsed.
		const liveFrom = `(${Date.now()}`;
		const pipeline = this.redis.pipeline();
		for (const userId of unique) pipeline.zcount(this.key(userId), liveFrom, '+inf');
		const counts = await execChecked(pipeline);
		return new Set(unique.filter((_, index) => Number(counts[index]) > 0));
	}

	close(): Promise<void> {
		this.closing ??= this.shutdown();
		return this.closing;
	}

	private async shutdown(): Promise<void> {
		clearInterval(this.renewTimer);
		const users = [...this.held];
		this.held.clear();
		if (users.length > 0) {
			const pipeline = this.redis.pipeline();
			for (const userId of users) pipeline.zrem(this.key(userId), this.instanceId);
			try {
				await execChecked(pipeline);
			} catch (error) {
				// Not fatal: the claims lapse on their own after ttlMs.
				this.reportError(error, `releasing ${users.length} claims on close`);
			}
		}
		await quitConnection(this.redis, this.reportError);
	}

	private async renew(): Promise<void> {
		if (this.renewing || this.held.size === 0) return;
		this.renewing = true;
		try {
			const now = Date.now();
			const expiresAt = now + this.ttlMs;
			const pipeline = this.redis.pipeline();
			for (const userId of this.held) {
				const key = this.key(userId);
				pipeline.zadd(key, expiresAt, this.instanceId).pexpire(key, this.ttlMs);
				// Crashed instances' lapsed members would otherwise stay while others keep the key alive.
				pipeline.zremrangebyscore(key, '-inf', now);
			}
			await execChecked(pipeline);
		} catch (error) {
			this.reportError(error, `renewing ${this.held.size} claims`);
		} finally {
			this.renewing = false;
		}
	}

	private key(userId: string): string {
		return `${this.keyPrefix}presence:${userId}`;
	}

	private assertOpen(): void {
		if (this.closing !== null) throw new Error(`RedisPresence ${this.instanceId} is closed`);
	}
}

/** Runs a pipeline or transaction; throws the first command's error instead of returning it. */
async function execChecked(commands: ChainableCommander): Promise<unknown[]> {
	const results = await commands.exec();
	if (results === null) throw new Error('Redis discarded the transaction');
	return results.map(([error, value]) => {
		if (error) throw error;
		return value;
	});
}

