/** What the Redis-backed stores (bus, presence) share about their connections. */
import type { Redis } from 'ioredis';

/** How long closing waits for Redis to answer QUIT before dropping the socket. */
export const REDIS_QUIT_TIMEOUT_MS = 2_000;

export type RedisErrorReporter = (error: unknown, context: string) => void;

/** QUIT, or drop the socket when Redis does not answer in time (it may be down). */
export async function quitConnection(redis: Redis, reportError: RedisErrorReporter): Promise<void> {
	if (redis.status === 'end') return;
	let timer: NodeJS.Timeout | undefined;
	const timedOut = new Promise<'timeout'>((resolve) => {
		timer = setTimeout(() => resolve('timeout'), REDIS_QUIT_TIMEOUT_MS);
	});
	const quit = redis.quit().then(
		() => 'quit' as const,
		(error: unknown) => {
			reportError(error, 'QUIT failed; dropping the connection');
			return 'failed' as const;
		}
	);
	const outcome = await Promise.race([quit, timedOut]);
	clearTimeout(timer);
	if (outcome !== 'quit') redis.disconnect();
}
