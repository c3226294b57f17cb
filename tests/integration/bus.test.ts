import { describe } from 'vitest';
import { MemoryBus, createMemoryBusHub } from '../../src/lib/server/bus/memory-bus';
import { RedisBus } from '../../src/lib/server/bus/redis-bus';
import { describeBusConformance } from '../conformance/bus.conformance';

describe('MemoryBus', () => {
	describeBusConformance('memory (two buses on one hub)', async (onError) => {
		const hub = createMemoryBusHub();
		return [new MemoryBus(hub, { onError }), new MemoryBus(hub, { onError })];
	});
});

// Registered only when Redis is configured, so a run without it reports fewer tests instead of a
// silent pass or a skip that reads like coverage.
const redisUrl = process.env.REDIS_URL;
if (redisUrl) {
	describe('RedisBus', () => {
		describeBusConformance(`redis (${redisUrl})`, async (onError) => [
			new RedisBus({ url: redisUrl, onError }),
			new RedisBus({ url: redisUrl, onError })
		]);
	});
}
