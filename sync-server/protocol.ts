/**
 * The relay's wire: y-websocket message types, this relay's extensions, close codes and limits.
 * Named in one place (docs/protocol.md documents each).
 */

/** y-websocket top-level message types (y-websocket's provider and server agree on these). */
export const MessageType = {
	sync: 0,
	awareness: 1,
	auth: 2,
	queryAwareness: 3,
	/** Extension: relay → client, the room's durably stored state vector (sent after each commit). */
	durable: 100,
	/** Extension: relay → client, an update of this client's was refused: varString code, varString text. */
	rejected: 101
} as const;

/** Query parameter by which a client opts into the extension messages (stock clients never see them). */
export const EXTENSIONS_PARAM = 'ext';
export const EXTENSIONS_VERSION = '1';

/** WebSocket close codes (4000-4999 are the application's; RFC 6455 §7.4.2). */
export const CloseCode = {
	/** The relay is shutting down or restarting; reconnect later. */
	goingAway: 1001,
	/** A frame above RELAY_MAX_FRAME_BYTES (sent by `ws` itself). */
	tooLarge: 1009,
	/** A frame that is not a y-websocket message. */
	malformed: 4000,
	/** The session behind this socket was signed out or expired; do not retry with it. */
	unauthorized: 4401,
	/** The account is no longer a member of this room; do not retry. */
	forbidden: 4403,
	/** A stock client (no extensions) sent an update the room refuses; see the reason text. */
	rejectedUpdate: 4422,
	/** Too many refused updates or frames in a short time. */
	tooManyErrors: 4429
} as const;

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
/** Stored update rows a room may gather before the relay merges them into one. */
export const ROOM_UPDATE_ROWS_MERGE_AT = 200;
/** Ping interval; a socket that misses a whole interval is terminated. */
export const RELAY_PING_INTERVAL_MS = 30_000;
/** Longest time close() waits for pending writes before giving up. */
export const RELAY_CLOSE_TIMEOUT_MS = 10_000;
