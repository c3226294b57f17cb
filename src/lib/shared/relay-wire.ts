/**
 * The relay's wire as both sides name it: y-websocket message types, this relay's extensions and
 * its close codes (docs/protocol.md). Shared by the relay (sync-server/) and the browser.
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
	/** The room was deleted: drop its local copy; do not retry. */
	roomDeleted: 4404,
	/**
	 * The room's live document rolled over to a new epoch, and this socket's document belongs to
	 * an older one. Whatever the client sent before the close was carried into the current
	 * document (exactly once). The client discards its local copy, fetches a fresh descriptor and
	 * syncs a new, empty Y.Doc; its own messages that no `durable` frame covered are appended
	 * again after that sync unless their ids are already there.
	 */
	roomMoved: 4410,
	/**
	 * The socket's document holds writes of other accounts that the room does not have: a message
	 * the relay forwarded and then lost in a crash before committing it (its sender, never told it
	 * was stored, sends it again), or a forgery. The client does what it does after 4410: a fresh
	 * descriptor, a new, empty Y.Doc, and its own unconfirmed messages appended again.
	 */
	resync: 4409,
	/** A stock client (no extensions) sent an update the room refuses; see the reason text. */
	rejectedUpdate: 4422,
	/** Too many refused updates or frames in a short time. */
	tooManyErrors: 4429
} as const;
