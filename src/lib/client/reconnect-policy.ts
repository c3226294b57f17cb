/**
 * When to try the relay again after a failed or dropped connection: exponential backoff with
 * "equal jitter" (half the delay fixed, half random), capped. A relay restart drops every socket
 * at once; the jitter spreads the returning clients out so the restart is no stampede, and the
 * cap keeps a client that was away for long from waiting minutes once the network is back
 * (`online` and tab-visible events also retry at once).
 */

/** The first retry comes after 0.5–1 s. */
export const RECONNECT_BASE_MS = 500;
/** No wait is longer than this (the ceiling is reached after six failed attempts). */
export const RECONNECT_MAX_MS = 30_000;

/** Delay before retry number `attempt` (1 for the first retry). */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
	const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.max(0, attempt));
	return ceiling / 2 + random() * (ceiling / 2);
}
