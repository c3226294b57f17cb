import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import { MemoryPresence, createMemoryPresenceHub } from '../../src/lib/server/presence/memory-presence';
import { RedisPresence } from '../../src/lib/server/presence/redis-presence';
import { describePresenceConformance } from '../conformance/presence.conformance';

describe('MemoryPresence', () => {
	describePresenceConformance('memory (instances on one hub)', async (timings) => {
		const hub = createMemoryPresenceHub();
		return timings.map((timing) => new MemoryPresence(hub, timing));
	});
});

// Registered only when Redis is configured, so a run without it reports fewer tests instead of a
// silent pass or a skip that reads like coverage.
const redisUrl = process.env.REDIS_URL;
if (redisUrl) {
	describe('RedisPresence', () => {
		// A random prefix per run, and a fresh one per backend, so runs and tests sharing one Redis
		// never see each other's keys.
		const runPrefix = `test:${randomUUID()}:`;
		let backends = 0;
		describePresenceConformance(`redis (${redisUrl})`, async (timings) => {
			backends += 1;
			const keyPrefix = `${runPrefix}${backends}:`;
			return timings.map((timing) => new RedisPresence({ url: redisUrl, keyPrefix, ...timing }));
		});
	});
}
