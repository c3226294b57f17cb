/**
 * Sessions as the Lucia guide implements them: a random token in an HttpOnly, SameSite cookie;
 * only its SHA-256 is stored (the session id), so a database leak reveals no usable token.
 * Sliding expiry: a session used in the second half of its life is extended.
 */
import { sha256 } from '@oslojs/crypto/sha2';
import { encodeBase32LowerCaseNoPadding, encodeHexLowerCase } from '@oslojs/encoding';
import type { Queryable } from './db/database';
import { toUser, type SessionUser } from './users';

export const SESSION_COOKIE = 'session';
export const SESSION_TTL_MS = 30 * 24 * 60 * 60 * 1000;
const SESSION_RENEW_BEFORE_MS = SESSION_TTL_MS / 2;

export interface Session {
	id: string;
	userId: string;
	expiresAt: Date;
}

export interface SessionValidation {
	session: Session;
	user: SessionUser;
	/** True when the expiry moved: the cookie must be sent again. */
	renewed: boolean;
}

export function generateSessionToken(): string {
	const bytes = new Uint8Array(20);
	crypto.getRandomValues(bytes);
	return encodeBase32LowerCaseNoPadding(bytes);
}

export function sessionIdFromToken(token: string): string {
	return encodeHexLowerCase(sha256(new TextEncoder().encode(token)));
}

export async function createSession(db: Queryable, token: string, userId: string): Promise<Session> {
	const session: Session = {
		id: sessionIdFromToken(token),
		userId,
		expiresAt: new Date(Date.now() + SESSION_TTL_MS)
	};
	await db.query('insert into sessions (id, user_id, expires_at) values ($1, $2, $3)', [
		session.id,
		session.userId,
		session.expiresAt
	]);
	return session;
}

/** Looks a session up by its id (not the token); expired sessions are deleted and answer null. */
export async function validateSessionId(db: Queryable, sessionId: string): Promise<SessionValidation | null> {
	const rows = await db.query<{
		id: string;
		user_id: string;
		expires_at: Date;
		username: string;
		display_name: string;
	}>(
		`select s.id, s.user_id, s.expires_at, u.username, u.display_name
		 from sessions s join users u on u.id = s.user_id where s.id = $1`,
		[sessionId]
	);
	const row = rows[0];
	if (!row) return null;
	const session: Session = { id: row.id, userId: row.user_id, expiresAt: new Date(row.expires_at) };
	const now = Date.now();
	if (now >= session.expiresAt.getTime()) {
		await db.query('delete from sessions where id = $1', [session.id]);
		return null;
	}
	let renewed = false;
	if (now >= session.expiresAt.getTime() - SESSION_RENEW_BEFORE_MS) {
		session.expiresAt = new Date(now + SESSION_TTL_MS);
		await db.query('update sessions set expires_at = $1 where id = $2', [session.expiresAt, session.id]);
		renewed = true;
	}
	const user = toUser({ id: row.user_id, username: row.username, display_name: row.display_name });
	return { session, user, renewed };
}

export function validateSessionToken(db: Queryable, token: string): Promise<SessionValidation | null> {
	return validateSessionId(db, sessionIdFromToken(token));
}

export async function invalidateSession(db: Queryable, sessionId: string): Promise<void> {
	await db.query('delete from sessions where id = $1', [sessionId]);
}

/** Reads the session token from a Cookie header (for the relay's upgrade, outside SvelteKit). */
export function readSessionCookie(cookieHeader: string | undefined): string | null {
	if (!cookieHeader) return null;
	for (const part of cookieHeader.split(';')) {
		const [name, ...rest] = part.trim().split('=');
		if (name === SESSION_COOKIE) return decodeURIComponent(rest.join('='));
	}
	return null;
}
