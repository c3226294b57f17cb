/**
 * Login throttling per account, shared by every instance through PostgreSQL: after
 * LOGIN_MAX_FAILURES failures within LOGIN_WINDOW_MS the account refuses logins (429) for
 * LOGIN_LOCK_MS. A success clears the count. OWASP Authentication Cheat Sheet, "Account Lockout".
 */
import type { Queryable } from './db/database';

export const LOGIN_MAX_FAILURES = 5;
export const LOGIN_WINDOW_MS = 15 * 60_000;
export const LOGIN_LOCK_MS = 60_000;

/** Milliseconds until the account may try again, or 0 when it may try now. */
export async function loginRetryAfterMs(db: Queryable, username: string): Promise<number> {
	const rows = await db.query<{ locked_until: Date | null }>(
		'select locked_until from login_throttle where username = $1',
		[username]
	);
	const lockedUntil = rows[0]?.locked_until;
	if (!lockedUntil) return 0;
	return Math.max(0, new Date(lockedUntil).getTime() - Date.now());
}

export async function recordLoginFailure(db: Queryable, username: string): Promise<void> {
	await db.query(
		`insert into login_throttle (username, failures, window_started_at)
		 values ($1, 1, now())
		 on conflict (username) do update set
		   failures = case when login_throttle.window_started_at < now() - ($2::int * interval '1 millisecond')
		                   then 1 else login_throttle.failures + 1 end,
		   window_started_at = case when login_throttle.window_started_at < now() - ($2::int * interval '1 millisecond')
		                   then now() else login_throttle.window_started_at end`,
		[username, LOGIN_WINDOW_MS]
	);
	await db.query(
		`update login_throttle set locked_until = now() + ($2::int * interval '1 millisecond'), failures = 0, window_started_at = now()
		 where username = $1 and failures >= $3`,
		[username, LOGIN_LOCK_MS, LOGIN_MAX_FAILURES]
	);
}

export async function clearLoginFailures(db: Queryable, username: string): Promise<void> {
	await db.query('delete from login_throttle where username = $1', [username]);
}
