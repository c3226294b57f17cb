/** Signing up and signing in: the rules around users, passwords, sessions and throttling. */
import type { Database } from './db/database';
import { ApiError } from './http';
import { clearLoginFailures, loginRetryAfterMs, recordLoginFailure } from './login-throttle';
import { dummyPasswordHash, hashPassword, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, verifyPassword } from './password';
import { createSession, generateSessionToken } from './sessions';
import { createUser, DISPLAY_NAME_MAX_CHARS, getUserByUsername, normalizeUsername, USERNAME_PATTERN } from './users';
import type { User } from '$lib/shared/api-types';

export interface SignedIn {
	user: User;
	token: string;
}

export function checkNewUsername(raw: string): string {
	const username = normalizeUsername(raw);
	if (!USERNAME_PATTERN.test(username)) {
		throw new ApiError(400, 'invalid_username', 'a username is 3–32 characters: letters, digits, "_", "." or "-"');
	}
	return username;
}

export function checkNewPassword(password: string, username: string): void {
	if (password.length < PASSWORD_MIN_CHARS) {
		throw new ApiError(400, 'weak_password', `a password needs at least ${PASSWORD_MIN_CHARS} characters`);
	}
	if (password.length > PASSWORD_MAX_CHARS) {
		throw new ApiError(400, 'invalid_password', `a password has at most ${PASSWORD_MAX_CHARS} characters`);
	}
	if (password.toLowerCase() === username) throw new ApiError(400, 'weak_password', 'the password must differ from the username');
}

export function cleanDisplayName(raw: string | undefined, username: string): string {
	const name = (raw ?? '').replace(/\s+/g, ' ').trim();
	if (name.length > DISPLAY_NAME_MAX_CHARS) {
		throw new ApiError(400, 'invalid_display_name', `a display name has at most ${DISPLAY_NAME_MAX_CHARS} characters`);
	}
	return name || username;
}

export async function signUp(db: Database, input: { username: string; password: string; displayName?: string }): Promise<SignedIn> {
	const username = checkNewUsername(input.username);
	checkNewPassword(input.password, username);
	const displayName = cleanDisplayName(input.displayName, username);
	const user = await createUser(db, { username, displayName, passwordHash: await hashPassword(input.password) });
	if (!user) throw new ApiError(409, 'username_taken', 'that username is taken');
	const token = generateSessionToken();
	await createSession(db, token, user.id);
	return { user, token };
}

export async function logIn(db: Database, input: { username: string; password: string }): Promise<SignedIn> {
	const username = normalizeUsername(input.username);
	const retryAfterMs = await loginRetryAfterMs(db, username);
	if (retryAfterMs > 0) {
		const seconds = Math.ceil(retryAfterMs / 1000);
		throw new ApiError(429, 'too_many_attempts', `too many failed sign-ins; try again in ${seconds} s`, {
			'retry-after': String(seconds)
		});
	}
	const account = await getUserByUsername(db, username);
	// Verify against a dummy hash for unknown accounts so the answer time does not reveal them.
	const valid = await verifyPassword(account?.passwordHash ?? (await dummyPasswordHash()), input.password);
	if (!account || !valid) {
		await recordLoginFailure(db, username);
		throw new ApiError(401, 'invalid_credentials', 'wrong username or password');
	}
	await clearLoginFailures(db, username);
	const token = generateSessionToken();
	await createSession(db, token, account.id);
	const { passwordHash: _hash, ...user } = account;
	return { user, token };
}
