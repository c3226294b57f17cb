/**
 * Authorization at the HTTP upgrade, before any WebSocket exists: the Origin against an exact
 * allowlist, then the descriptor token (or the session cookie), then membership in PostgreSQL.
 * A refused upgrade is answered with an HTTP status and a JSON error, like the HTTP API.
 */
import type { IncomingMessage } from 'node:http';
import type { Database } from '../src/lib/server/db/database';
import type { RelayTokenSigner } from '../src/lib/server/relay-token';
import { getMemberRole, isDeletedRoom } from '../src/lib/server/rooms';
import { readSessionCookie, validateSessionId, validateSessionToken } from '../src/lib/server/sessions';
import type { ConnectionIdentity } from './connection';
import { EXTENSIONS_PARAM, EXTENSIONS_VERSION } from './protocol';

export interface UpgradeRefusal {
	status: 400 | 401 | 403 | 404 | 503;
	code: string;
	message: string;
}

export interface AuthorizeDeps {
	db: Database;
	tokens: RelayTokenSigner;
	allowedOrigins: ReadonlySet<string>;
}

const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export async function authorizeUpgrade(
	request: IncomingMessage,
	deps: AuthorizeDeps
): Promise<ConnectionIdentity | UpgradeRefusal> {
	// Browsers always send Origin on WebSocket upgrades; other clients (bots, Node) send none.
	const origin = request.headers.origin;
	if (origin !== undefined && !deps.allowedOrigins.has(origin)) {
		return { status: 403, code: 'origin_not_allowed', message: `origin ${origin} may not open relay sockets` };
	}
	const url = new URL(request.url ?? '/', 'http://relay.invalid');
	const roomId = decodeURIComponent(url.pathname.split('/').filter(Boolean).at(-1) ?? '');
	if (!ROOM_ID_PATTERN.test(roomId)) {
		return { status: 400, code: 'bad_room', message: 'the socket path must end with a room id' };
	}
	const token = url.searchParams.get('token');
	let validation;
	if (token !== null) {
		const claims = deps.tokens.verify(token);
		if (typeof claims === 'string') {
			return { status: 401, code: `token_${claims}`, message: `the room token is ${claims.replace('_', ' ')}` };
		}
		if (claims.roomId !== roomId) {
			return { status: 401, code: 'token_wrong_room', message: 'the token was issued for another room' };
		}
		validation = await validateSessionId(deps.db, claims.sessionId);
		if (validation && validation.user.id !== claims.userId) validation = null;
	} else {
		const sessionToken = readSessionCookie(request.headers.cookie);
		validation = sessionToken ? await validateSessionToken(deps.db, sessionToken) : null;
	}
	if (!validation) {
		return { status: 401, code: 'unauthorized', message: 'sign in, then fetch a fresh sync descriptor' };
	}
	const role = await getMemberRole(deps.db, roomId, validation.user.id);
	if (role === null) {
		if (await isDeletedRoom(deps.db, roomId)) return { status: 404, code: 'room_deleted', message: 'this room was deleted' };
		return { status: 404, code: 'room_not_found', message: 'no such room' };
	}
	return {
		userId: validation.user.id,
		userName: validation.user.displayName,
		sessionId: validation.session.id,
		roomId,
		role,
		extensions: url.searchParams.get(EXTENSIONS_PARAM) === EXTENSIONS_VERSION
	};
}
