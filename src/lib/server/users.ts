/** Accounts: creation, lookup, search. Usernames are stored lower-case and are unique. */
import type { Queryable } from './db/database';
import { newId } from './ids';
import type { User } from '$lib/shared/api-types';

export type SessionUser = User;

export const USERNAME_PATTERN = /^[a-z0-9_.-]{3,32}$/;
export const DISPLAY_NAME_MAX_CHARS = 64;

interface UserRow {
	id: string;
	username: string;
	display_name: string;
}

export interface UserWithHash extends User {
	passwordHash: string;
}

export function toUser(row: UserRow): User {
	return { id: row.id, username: row.username, displayName: row.display_name };
}

export function normalizeUsername(username: string): string {
	return username.trim().toLowerCase();
}

/** Creates an account; null when the username is taken. */
export async function createUser(
	db: Queryable,
	input: { username: string; displayName: string; passwordHash: string }
): Promise<User | null> {
	const rows = await db.query<UserRow>(
		`insert into users (id, username, display_name, password_hash)
		 values ($1, $2, $3, $4)
		 on conflict (username) do nothing
		 returning id, username, display_name`,
		[newId(), input.username, input.displayName, input.passwordHash]
	);
	return rows[0] ? toUser(rows[0]) : null;
}

export async function getUserByUsername(db: Queryable, username: string): Promise<UserWithHash | null> {
	const rows = await db.query<UserRow & { password_hash: string }>(
		'select id, username, display_name, password_hash from users where username = $1',
		[normalizeUsername(username)]
	);
	const row = rows[0];
	return row ? { ...toUser(row), passwordHash: row.password_hash } : null;
}

export async function getUsersByUsernames(db: Queryable, usernames: string[]): Promise<User[]> {
	if (usernames.length === 0) return [];
	const rows = await db.query<UserRow>(
		'select id, username, display_name from users where username = any($1::text[])',
		[usernames.map(normalizeUsername)]
	);
	return rows.map(toUser);
}

/** Prefix search on username and display name, for the new-chat pickers. */
export async function searchUsers(db: Queryable, query: string, excludeUserId: string, limit = 20): Promise<User[]> {
	const pattern = query.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
	const rows = await db.query<UserRow>(
		`select id, username, display_name from users
		 where id <> $1 and (username like $2 or lower(display_name) like $2)
		 order by username limit $3`,
		[excludeUserId, pattern, limit]
	);
	return rows.map(toUser);
}

export async function touchLastSeen(db: Queryable, userIds: string[]): Promise<void> {
	if (userIds.length === 0) return;
	await db.query('update users set last_seen_at = now() where id = any($1::text[])', [userIds]);
}
