/**
 * Polling helpers: tests wait for a condition to become true (or to stay true) instead of
 * sleeping for a guessed time, so they are fast when the system is fast and fail with a reason.
 */

/** How often conditions are re-checked; short, because the checks are cheap local calls. */
export const WAIT_POLL_INTERVAL_MS = 10;

export type Condition = () => boolean | Promise<boolean>;

function pause(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves as soon as `condition` returns true; rejects once `timeoutMs` has passed without it. */
export async function waitFor(
	condition: Condition,
	timeoutMs: number,
	description = 'condition'
): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() >= deadline) throw new Error(`waitFor: ${description} not met within ${timeoutMs} ms`);
		await pause(WAIT_POLL_INTERVAL_MS);
	}
}

/** Resolves if `condition` stays true for the whole of `durationMs`; rejects the first time it is false. */
export async function holdsFor(
	condition: Condition,
	durationMs: number,
	description = 'condition'
): Promise<void> {
	const start = Date.now();
	const deadline = start + durationMs;
	for (;;) {
		if (!(await condition())) {
			throw new Error(`holdsFor: ${description} became false after ${Date.now() - start} ms`);
		}
		if (Date.now() >= deadline) return;
		await pause(WAIT_POLL_INTERVAL_MS);
	}
}
