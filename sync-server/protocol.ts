/**
 * The relay's limits, and its wire (src/lib/shared/relay-wire.ts), named in one place
 * (docs/protocol.md documents each).
 */

// Message types, close codes and the extensions parameter are shared with the browser.
export { CloseCode, EXTENSIONS_PARAM, EXTENSIONS_VERSION, MessageType } from '../src/lib/shared/relay-wire';

/**
 * Largest frame accepted. A message is at most 4,000 characters (≤ 16 KB of UTF-8); the frame
 * limit leaves room for an offline client's sync step 2 carrying its queued messages.
 */
export const RELAY_MAX_FRAME_BYTES = 2 * 1024 * 1024;
/**
 * Outgoing bytes a socket may have waiting (a client that stops reading would otherwise make the
 * relay buffer the room's traffic for it without end).
 */
export const RELAY_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** Largest awareness state (JSON) one client may publish. */
export const AWARENESS_STATE_MAX_BYTES = 2048;
/** Per-connection limits; tests and benchmarks may raise them through RelayOptions. */
export interface RelayLimits {
	/** Refused or rate-limited frames tolerated before the socket is closed with tooManyErrors. */
	maxRejections: number;
	/** A burst of updates, then a sustained rate: a person sends a few messages a second at most;
	 * receipts and a reconnect's sync add a handful. */
	updatesBurst: number;
	updatesPerSecond: number;
	/** Awareness changes (typing indicators). */
	awarenessBurst: number;
	awarenessPerSecond: number;
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
	maxRejections: 20,
	updatesBurst: 100,
	updatesPerSecond: 20,
	awarenessBurst: 30,
	awarenessPerSecond: 10
};

/** How long an empty room stays loaded before its document is dropped from memory. */
export const ROOM_IDLE_UNLOAD_MS = 30_000;
/**
 * Stored update rows a room gathers before the relay merges the newest of them (doc-store.ts
 * mergeRows). Merging 100 small updates takes ~1 ms of Yjs, 200 ~2.4 ms, 1,000 ~30 ms (it grows
 * faster than the count), and each merge also costs a handful of statements on PGlite: in
 * bench/peers.ts a merge cost ~10 ms of CPU in all, so merging every 100 rows cost more than
 * every 200 without pausing the relay for less.
 */
export const ROOM_UPDATE_ROWS_MERGE_AT = 200;
/** Ping interval; a socket that misses a whole interval is terminated. */
export const RELAY_PING_INTERVAL_MS = 30_000;
/**
 * Sockets are pinged a slice at a time, one slice every interval ÷ this: a ping is a write (a
 * system call) per socket, and pinging a thousand at once held the event loop for ~55 ms,
 * delaying every message in flight.
 */
export const RELAY_PING_SLICES = 30;
/** Longest time close() waits for pending writes before giving up. */
export const RELAY_CLOSE_TIMEOUT_MS = 10_000;

/** How long a relay instance holds a room's compaction lease without renewing it. */
export const COMPACTION_LEASE_MS = 60_000;
/**
 * The share of its lease a compaction gives its DynamoDB writes; past it they are abandoned, and
 * the rest of the lease is time for a request the service already took to be applied before
 * another instance may take the lease and write the same keys.
 */
export const COMPACTION_WRITE_SHARE = 2 / 3;
/** Entries written per lease renewal while sealing (a backlog is written in several). */
export const COMPACTION_WRITE_CHUNK = 1000;
/** Messages one compaction step seals at most. */
export const COMPACTION_BATCH_MAX = 5000;
/** Backoff while DynamoDB or PostgreSQL is unreachable during compaction. */
export const COMPACTION_RETRY_MIN_MS = 250;
export const COMPACTION_RETRY_MAX_MS = 30_000;
/** Compaction steps one relay runs at once, across all its rooms. */
export const COMPACTION_STEPS_AT_ONCE = 2;

/**
 * Messages left in the live document after a compaction: 90% of the limit, so one compaction
 * seals a batch rather than a message per append.
 */
export function compactionKeep(liveMessagesMax: number): number {
	return Math.max(1, Math.floor(liveMessagesMax * 0.9));
}

/** When a room rolls over to a new epoch: removed entries its live document may keep. */
export interface RolloverLimits {
	/** With sockets connected (they are moved with 4410). */
	connected: number;
	/** When the room goes idle (nobody to move). */
	idle: number;
}

/**
 * Removed entries cost ~9 bytes of metadata each against ~130 for a live message (bench), so
 * twice the limit keeps a worn document within ~15% of a fresh one. Rolling over moves every
 * connected socket, so it waits for at least 2,000 removals (18 KB) whatever the limit; an idle
 * room rolls over sooner.
 */
export function defaultRolloverLimits(liveMessagesMax: number): RolloverLimits {
	return { connected: Math.max(2 * liveMessagesMax, 2000), idle: Math.max(liveMessagesMax, 1000) };
}
