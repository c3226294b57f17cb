/**
 * One behavioural contract for every `Database` implementation (PGlite embedded, node-postgres):
 * migrations, then the domain modules that run on it (users, sessions, login throttle, rooms),
 * transactions and bytea. `open` is called once per suite. On a real PostgreSQL the database is
 * shared with parallel test files and earlier runs, so every test makes its own uniquely named
 * users and never assumes a table is empty.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/lib/server/db/database';
import { migrate } from '../../src/lib/server/db/migrate';
import { newId } from '../../src/lib/server/ids';
import {
	clearLoginFailures,
	LOGIN_LOCK_MS,
	LOGIN_MAX_FAILURES,
	LOGIN_WINDOW_MS,
	loginRetryAfterMs,
	recordLoginFailure
} from '../../src/lib/server/login-throttle';
import {
	addMember,
	createGroupRoom,
	ensureAdmin,
	getMemberRole,
	getRoomForMember,
	listRooms,
	openDirectRoom,
	removeMember
} from '../../src/lib/server/rooms';
import {
	createSession,
	generateSessionToken,
	invalidateSession,
	SESSION_TTL_MS,
	sessionIdFromToken,
	validateSessionToken
} from '../../src/lib/server/sessions';
import { createUser, getUserByUsername, searchUsers } from '../../src/lib/server/users';
import type { User } from '../../src/lib/shared/api-types';
import { uniqueName } from '../helpers/api';
import { ROOT } from '../helpers/server';

export const MIGRATIONS_DIR = path.join(ROOT, 'migrations');
const MIGRATION_FILES = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{3,}_.*\.sql$/.test(f)).sort();
/** Tolerance when comparing a computed expiry with one the code set a moment ago. */
const CLOCK_SLACK_MS = 60_000;
const DAY_MS = 24 * 60 * 60 * 1000;

export function describeDatabaseConformance(name: string, open: () => Promise<Database>): void {
	describe(`Database conformance: ${name}`, () => {
		let db: Database;

		beforeAll(async () => {
			db = await open();
			await migrate(db, MIGRATIONS_DIR);
		});

		afterAll(async () => {
			await db?.close();
		});

		async function newUser(prefix = 'db', displayName?: string): Promise<User> {
			const username = uniqueName(prefix);
			const user = await createUser(db, { username, displayName: displayName ?? username, passwordHash: 'not-a-real-hash' });
			if (!user) throw new Error(`username ${username} unexpectedly taken`);
			return user;
		}

		describe('migrations', () => {
			it('records every migration file as applied', async () => {
				const rows = await db.query<{ name: string }>('select name from schema_migrations');
				expect(MIGRATION_FILES.length).toBeGreaterThan(0);
				expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(MIGRATION_FILES));
			});

			it('applies nothing the second time and keeps the data', async () => {
				const user = await newUser('mig');
				expect(await migrate(db, MIGRATIONS_DIR)).toEqual({ applied: [] });
				expect((await getUserByUsername(db, user.username))?.id).toBe(user.id);
			});

			it('lets concurrent migrations take turns without failing', async () => {
				const results = await Promise.all([migrate(db, MIGRATIONS_DIR), migrate(db, MIGRATIONS_DIR)]);
				expect(results).toEqual([{ applied: [] }, { applied: [] }]);
			});
		});

		describe('users', () => {
			it('creates a user and finds it by username, whatever the case', async () => {
				const username = uniqueName('usr');
				const created = await createUser(db, { username, displayName: 'Grace H.', passwordHash: 'hash-1' });
				expect(created).toEqual({ id: expect.any(String), username, displayName: 'Grace H.' });
				expect(await getUserByUsername(db, username.toUpperCase())).toEqual({ ...created, passwordHash: 'hash-1' });
			});

			it('answers null for a taken username instead of throwing, keeping the first account', async () => {
				const first = await newUser('dup');
				expect(await createUser(db, { username: first.username, displayName: 'Other', passwordHash: 'x' })).toBeNull();
				expect((await getUserByUsername(db, first.username))?.id).toBe(first.id);
			});

			it('answers null for an unknown username', async () => {
				expect(await getUserByUsername(db, uniqueName('ghost'))).toBeNull();
			});

			it('searches by username or display name prefix, without the caller, in username order', async () => {
				// The trailing letter keeps one test's prefix from being a prefix of another's (…1 vs …12).
				const prefix = `${uniqueName('s').slice(0, 24)}q`;
				const me = (await createUser(db, { username: `${prefix}me`, displayName: 'Me', passwordHash: 'x' }))!;
				const b = (await createUser(db, { username: `${prefix}b`, displayName: 'B', passwordHash: 'x' }))!;
				const a = (await createUser(db, { username: `${prefix}a`, displayName: 'A', passwordHash: 'x' }))!;
				const byDisplayName = await newUser('dn', `Marker${prefix}`);

				expect(await searchUsers(db, prefix.toUpperCase(), me.id)).toEqual([a, b]);
				expect(await searchUsers(db, `marker${prefix}`, me.id)).toEqual([byDisplayName]);
				expect(await searchUsers(db, `${prefix}a`, me.id, 1)).toEqual([a]);
			});

			it('treats % and _ in a search literally', async () => {
				const prefix = `${uniqueName('w').slice(0, 24)}q`;
				const user = (await createUser(db, { username: `${prefix}x`, displayName: 'W', passwordHash: 'x' }))!;
				const other = await newUser('caller');
				expect(await searchUsers(db, `${prefix}x`, other.id)).toEqual([user]);
				expect(await searchUsers(db, `${prefix}_`, other.id)).toEqual([]);
				expect(await searchUsers(db, `${prefix.slice(0, -1)}%`, other.id)).toEqual([]);
			});
		});

		describe('sessions', () => {
			it('validates a fresh session without renewing it, and stores only the token’s hash', async () => {
				const user = await newUser('ses');
				const token = generateSessionToken();
				const session = await createSession(db, token, user.id);
				expect(session.id).toBe(sessionIdFromToken(token));
				expect(session.id).not.toBe(token);
				expect(await db.query('select id from sessions where id = $1', [token])).toEqual([]);

				const validation = await validateSessionToken(db, token);
				expect(validation).not.toBeNull();
				expect(validation!.user).toEqual(user);
				expect(validation!.session.userId).toBe(user.id);
				expect(validation!.renewed).toBe(false);
				expect(Math.abs(validation!.session.expiresAt.getTime() - (Date.now() + SESSION_TTL_MS))).toBeLessThan(CLOCK_SLACK_MS);
			});

			it('answers null for an unknown token', async () => {
				expect(await validateSessionToken(db, generateSessionToken())).toBeNull();
			});

			it('answers null for an expired session and deletes it', async () => {
				const user = await newUser('exp');
				const token = generateSessionToken();
				const session = await createSession(db, token, user.id);
				await db.query(`update sessions set expires_at = now() - interval '1 second' where id = $1`, [session.id]);
				expect(await validateSessionToken(db, token)).toBeNull();
				expect(await db.query('select id from sessions where id = $1', [session.id])).toEqual([]);
			});

			it('renews a session used in the second half of its life to a full term', async () => {
				const user = await newUser('slide');
				const token = generateSessionToken();
				const session = await createSession(db, token, user.id);
				await db.query(`update sessions set expires_at = now() + interval '1 day' where id = $1`, [session.id]);

				const validation = await validateSessionToken(db, token);
				expect(validation?.renewed).toBe(true);
				const expected = Date.now() + SESSION_TTL_MS;
				expect(Math.abs(validation!.session.expiresAt.getTime() - expected)).toBeLessThan(CLOCK_SLACK_MS);
				const [row] = await db.query<{ expires_at: Date }>('select expires_at from sessions where id = $1', [session.id]);
				expect(new Date(row.expires_at).getTime()).toBeGreaterThan(Date.now() + SESSION_TTL_MS - DAY_MS);

				expect((await validateSessionToken(db, token))?.renewed).toBe(false);
			});

			it('answers null once the session is invalidated, leaving the user’s other sessions', async () => {
				const user = await newUser('out');
				const token = generateSessionToken();
				const other = generateSessionToken();
				const session = await createSession(db, token, user.id);
				await createSession(db, other, user.id);
				await invalidateSession(db, session.id);
				expect(await validateSessionToken(db, token)).toBeNull();
				expect((await validateSessionToken(db, other))?.user.id).toBe(user.id);
			});
		});

		describe('login throttle', () => {
			it(`locks an account after ${LOGIN_MAX_FAILURES} failures, for at most LOGIN_LOCK_MS`, async () => {
				const username = uniqueName('thr');
				expect(await loginRetryAfterMs(db, username)).toBe(0);
				for (let failure = 1; failure < LOGIN_MAX_FAILURES; failure++) {
					await recordLoginFailure(db, username);
					expect(await loginRetryAfterMs(db, username)).toBe(0);
				}
				await recordLoginFailure(db, username);
				const retryAfter = await loginRetryAfterMs(db, username);
				expect(retryAfter).toBeGreaterThan(LOGIN_LOCK_MS - CLOCK_SLACK_MS / 2);
				expect(retryAfter).toBeLessThanOrEqual(LOGIN_LOCK_MS + 1_000);
			});

			it('unlocks when the lock has passed, and when failures are cleared', async () => {
				const username = uniqueName('unl');
				for (let failure = 0; failure < LOGIN_MAX_FAILURES; failure++) await recordLoginFailure(db, username);
				expect(await loginRetryAfterMs(db, username)).toBeGreaterThan(0);
				await db.query(`update login_throttle set locked_until = now() - interval '1 second' where username = $1`, [username]);
				expect(await loginRetryAfterMs(db, username)).toBe(0);

				for (let failure = 0; failure < LOGIN_MAX_FAILURES; failure++) await recordLoginFailure(db, username);
				expect(await loginRetryAfterMs(db, username)).toBeGreaterThan(0);
				await clearLoginFailures(db, username);
				expect(await loginRetryAfterMs(db, username)).toBe(0);
				expect(await db.query('select username from login_throttle where username = $1', [username])).toEqual([]);
			});

			it('counts failures within LOGIN_WINDOW_MS only', async () => {
				const username = uniqueName('win');
				for (let failure = 1; failure < LOGIN_MAX_FAILURES; failure++) await recordLoginFailure(db, username);
				await db.query(
					`update login_throttle set window_started_at = now() - ($2::int * interval '1 millisecond') - interval '1 second'
					 where username = $1`,
					[username, LOGIN_WINDOW_MS]
				);
				await recordLoginFailure(db, username);
				expect(await loginRetryAfterMs(db, username)).toBe(0);
				const [row] = await db.query<{ failures: number }>('select failures from login_throttle where username = $1', [username]);
				expect(row.failures).toBe(1);
			});

			it('keeps accounts apart', async () => {
				const locked = uniqueName('lk');
				const other = uniqueName('ok');
				for (let failure = 0; failure < LOGIN_MAX_FAILURES; failure++) await recordLoginFailure(db, locked);
				await recordLoginFailure(db, other);
				expect(await loginRetryAfterMs(db, locked)).toBeGreaterThan(0);
				expect(await loginRetryAfterMs(db, other)).toBe(0);
			});
		});

		describe('rooms', () => {
			it('opens one direct room per pair, whichever side opens it', async () => {
				const a = await newUser('da');
				const b = await newUser('db');
				const first = await openDirectRoom(db, a.id, b.id);
				expect(first.created).toBe(true);
				expect(await openDirectRoom(db, a.id, b.id)).toEqual({ roomId: first.roomId, created: false });
				expect(await openDirectRoom(db, b.id, a.id)).toEqual({ roomId: first.roomId, created: false });

				const room = await getRoomForMember(db, first.roomId, a.id);
				expect(room?.kind).toBe('direct');
				expect(room!.members.map((m) => [m.id, m.role]).sort()).toEqual([[a.id, 'member'], [b.id, 'member']].sort());
			});

			it('creates exactly one direct room when 10 calls for the same pair race', async () => {
				const a = await newUser('ra');
				const b = await newUser('rb');
				const results = await Promise.all(
					Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? openDirectRoom(db, a.id, b.id) : openDirectRoom(db, b.id, a.id)))
				);
				expect(new Set(results.map((r) => r.roomId)).size).toBe(1);
				expect(results.filter((r) => r.created)).toHaveLength(1);
				const roomId = results[0].roomId;
				const members = await db.query<{ user_id: string }>('select user_id from room_members where room_id = $1', [roomId]);
				expect(members.map((m) => m.user_id).sort()).toEqual([a.id, b.id].sort());
				expect((await listRooms(db, a.id)).map((r) => r.id)).toEqual([roomId]);
			});

			it('creates a group with its creator as the only admin, ignoring duplicate members', async () => {
				const admin = await newUser('ga');
				const b = await newUser('gb');
				const c = await newUser('gc');
				const roomId = await createGroupRoom(db, admin.id, 'Team', [b.id, c.id, b.id, admin.id]);
				const room = await getRoomForMember(db, roomId, b.id);
				expect(room).toMatchObject({ id: roomId, kind: 'group', name: 'Team' });
				const roles = Object.fromEntries(room!.members.map((m) => [m.id, m.role]));
				expect(roles).toEqual({ [admin.id]: 'admin', [b.id]: 'member', [c.id]: 'member' });
				expect(room!.members.find((m) => m.id === c.id)).toMatchObject({ username: c.username, displayName: c.displayName });
			});

			it('hides a room from non-members', async () => {
				const admin = await newUser('ha');
				const outsider = await newUser('ho');
				const roomId = await createGroupRoom(db, admin.id, 'Hidden', []);
				expect(await getRoomForMember(db, roomId, outsider.id)).toBeNull();
				expect(await getMemberRole(db, roomId, outsider.id)).toBeNull();
				expect(await listRooms(db, outsider.id)).toEqual([]);
			});

			it('adds and removes members, telling whether anything changed', async () => {
				const admin = await newUser('ma');
				const b = await newUser('mb');
				const roomId = await createGroupRoom(db, admin.id, 'Club', []);
				expect(await addMember(db, roomId, b.id, 'member')).toBe(true);
				expect(await addMember(db, roomId, b.id, 'admin')).toBe(false);
				expect(await getMemberRole(db, roomId, b.id)).toBe('member');
				expect(await removeMember(db, roomId, b.id)).toBe(true);
				expect(await removeMember(db, roomId, b.id)).toBe(false);
				expect(await getRoomForMember(db, roomId, b.id)).toBeNull();
			});

			it('promotes the longest-standing member when the last admin leaves, and only then', async () => {
				const admin = await newUser('ea');
				const early = await newUser('ee');
				const late = await newUser('el');
				const roomId = await createGroupRoom(db, admin.id, 'Club', []);
				await addMember(db, roomId, late.id, 'member');
				await addMember(db, roomId, early.id, 'member');
				await db.query(`update room_members set joined_at = now() - interval '1 hour' where room_id = $1 and user_id = $2`, [roomId, early.id]);

				await ensureAdmin(db, roomId);
				expect(await getMemberRole(db, roomId, early.id)).toBe('member');

				await removeMember(db, roomId, admin.id);
				await ensureAdmin(db, roomId);
				expect(await getMemberRole(db, roomId, early.id)).toBe('admin');
				expect(await getMemberRole(db, roomId, late.id)).toBe('member');
			});

			it('lists a user’s rooms by latest activity first', async () => {
				const me = await newUser('la');
				const other = await newUser('lb');
				const older = await createGroupRoom(db, me.id, 'Older', [other.id]);
				const newer = (await openDirectRoom(db, me.id, other.id)).roomId;
				expect((await listRooms(db, me.id)).map((r) => r.id)).toEqual([newer, older]);

				await db.query(`update rooms set last_activity_at = now() + interval '1 minute' where id = $1`, [older]);
				const rooms = await listRooms(db, me.id);
				expect(rooms.map((r) => r.id)).toEqual([older, newer]);
				expect(rooms[0].name).toBe('Older');
				expect(rooms[1].name).toBe(other.displayName);
				expect(rooms[0].members).toHaveLength(2);
			});
		});

		describe('transactions and types', () => {
			it('commits a transaction that resolves, returning its value', async () => {
				const username = uniqueName('tx');
				const id = await db.transaction(async (tx) => {
					const user = await createUser(tx, { username, displayName: username, passwordHash: 'x' });
					return user!.id;
				});
				expect((await getUserByUsername(db, username))?.id).toBe(id);
			});

			it('rolls back everything a throwing transaction did, and rethrows its error', async () => {
				const username = uniqueName('rb');
				const failure = new Error('abort this transaction');
				await expect(
					db.transaction(async (tx) => {
						await createUser(tx, { username, displayName: username, passwordHash: 'x' });
						expect((await tx.query('select id from users where username = $1', [username])).length).toBe(1);
						throw failure;
					})
				).rejects.toBe(failure);
				expect(await getUserByUsername(db, username)).toBeNull();
				expect(await db.query<{ one: number }>('select 1 as one')).toEqual([{ one: 1 }]);
			});

			it('rolls back a transaction whose statement fails', async () => {
				const taken = await newUser('tk');
				const username = uniqueName('rs');
				await expect(
					db.transaction(async (tx) => {
						await createUser(tx, { username, displayName: username, passwordHash: 'x' });
						await tx.query('insert into users (id, username, display_name, password_hash) values ($1, $2, $3, $4)', [
							newId(),
							taken.username,
							'x',
							'x'
						]);
					})
				).rejects.toThrow();
				expect(await getUserByUsername(db, username)).toBeNull();
			});

			it('round-trips all 256 byte values through bytea', async () => {
				const owner = await newUser('by');
				const roomId = await createGroupRoom(db, owner.id, 'Bytes', []);
				const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
				const reversed = Uint8Array.from(bytes).reverse();
				await db.query('insert into room_updates (room_id, data) values ($1, $2)', [roomId, bytes]);
				await db.transaction((tx) => tx.query('insert into room_updates (room_id, data) values ($1, $2)', [roomId, reversed]));
				const rows = await db.query<{ data: Uint8Array }>('select data from room_updates where room_id = $1 order by seq', [roomId]);
				expect(rows).toHaveLength(2);
				expect(Array.from(new Uint8Array(rows[0].data))).toEqual(Array.from(bytes));
				expect(Array.from(new Uint8Array(rows[1].data))).toEqual(Array.from(reversed));
			});

			it('stores exactly the bytes a view shows, empty and large values included', async () => {
				const owner = await newUser('bv');
				const roomId = await createGroupRoom(db, owner.id, 'Views', []);
				// A view into a larger buffer (as a decoder's subarray is): only its own bytes are stored.
				const backing = Uint8Array.from({ length: 64 }, (_, i) => 200 - i);
				const view = backing.subarray(10, 26);
				// A merged room state can be hundreds of KB.
				const large = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 256);
				const values = [new Uint8Array(0), view, large];
				for (const value of values) await db.query('insert into room_updates (room_id, data) values ($1, $2)', [roomId, value]);
				const rows = await db.query<{ data: Uint8Array; size: number }>(
					'select data, length(data) as size from room_updates where room_id = $1 order by seq',
					[roomId]
				);
				expect(rows.map((r) => Number(r.size))).toEqual([0, 16, 300_000]);
				rows.forEach((row, i) => expect(Buffer.compare(Buffer.from(new Uint8Array(row.data)), Buffer.from(values[i]))).toBe(0));
				const [stored] = await db.query<{ hex: string }>("select encode(data, 'hex') as hex from room_updates where room_id = $1 and length(data) = 16", [roomId]);
				expect(stored.hex).toBe(Buffer.from(view).toString('hex'));
			});
		});
	});
}
