/**
 * The HTTP API of CONTRACT.md ("HTTP API"), request by request, against one real server started
 * as `npm start` does (port 0, temp DATA_DIR, whatever DATABASE_URL / REDIS_URL the environment
 * names). Every test signs up its own users, so tests never depend on one another's state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Room, RoomMember } from '../../src/lib/shared/api-types';
import WebSocket from 'ws';
import { CloseCode } from '../../src/lib/shared/relay-wire';
import { ApiClient, uniqueName, type ApiAnswer } from '../helpers/api';
import { ulid } from 'ulid';
import * as Y from 'yjs';
import { connectStockProvider, upgradeStatus } from '../helpers/relay';
import { waitFor } from '../helpers/wait';
import { startServer, type TestServer } from '../helpers/server';

const PASSWORD = 'correct horse battery';
const SNAKE_CASE = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

let server: TestServer;
let stopping = false;

beforeAll(async () => {
	server = await startServer();
	// Every later failure would read "fetch failed"; say why the server went away instead.
	server.process.once('exit', (code, signal) => {
		if (!stopping) console.error(`the server exited during the tests (${code ?? signal}):\n${server.output()}`);
	});
});

afterAll(async () => {
	stopping = true;
	await server?.stop();
	await server?.cleanup();
});

/** Asserts the contract's error shape: `{"error": {"code": "<snake_case>", "message": "<text>"}}`. */
function expectError(answer: ApiAnswer, status: number, code?: string): void {
	expect({ status: answer.status, body: answer.body }).toMatchObject({ status, body: { error: {} } });
	expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
	const error = answer.body.error;
	expect(Object.keys(answer.body)).toEqual(['error']);
	expect(typeof error.code).toBe('string');
	expect(error.code).toMatch(SNAKE_CASE);
	expect(typeof error.message).toBe('string');
	expect(error.message.trim().length).toBeGreaterThan(0);
	if (code !== undefined) expect(error.code).toBe(code);
}

function client(): ApiClient {
	return new ApiClient(server.baseUrl);
}

async function signedIn(): Promise<ApiClient> {
	const c = client();
	await c.signup();
	return c;
}

function memberOf(room: Room, userId: string): RoomMember | undefined {
	return room.members.find((m) => m.id === userId);
}

/** A fetch that sends exactly the cookie given (the ApiClient keeps and replaces its own). */
async function getWithCookie(path: string, cookie: string): Promise<Response> {
	return fetch(server.baseUrl + path, { headers: { cookie }, redirect: 'manual' });
}

describe('POST /api/auth/signup', () => {
	it('creates the account, answers 201 {user} and sets an HttpOnly, SameSite=Lax, Path=/ session cookie', async () => {
		const c = client();
		const username = uniqueName();
		const answer = await c.request('POST', '/api/auth/signup', { username, password: PASSWORD, displayName: 'Ada L.' });
		expect(answer.status).toBe(201);
		expect(answer.body.user).toEqual({ id: expect.any(String), username, displayName: 'Ada L.' });
		const setCookie = answer.headers.get('set-cookie') ?? '';
		expect(setCookie).toMatch(/^session=[^;]+;/);
		const attributes = setCookie.split(';').map((part) => part.trim().toLowerCase());
		expect(attributes).toContain('httponly');
		expect(attributes).toContain('samesite=lax');
		expect(attributes).toContain('path=/');
		const me = await c.request('GET', '/api/me');
		expect(me.status).toBe(200);
		expect(me.body.user).toEqual(answer.body.user);
	});

	it('uses the username as display name when none is given', async () => {
		const username = uniqueName();
		const answer = await client().request('POST', '/api/auth/signup', { username, password: PASSWORD });
		expect(answer.status).toBe(201);
		expect(answer.body.user.displayName).toBe(username);
	});

	it('answers 409 username_taken for a taken username, whatever its case', async () => {
		const username = uniqueName();
		await client().signup(username);
		const again = await client().request('POST', '/api/auth/signup', { username: username.toUpperCase(), password: PASSWORD });
		expectError(again, 409, 'username_taken');
		expect(again.headers.get('set-cookie')).toBeNull();
	});

	it('answers 400 weak_password for a short password or one equal to the username', async () => {
		const short = await client().request('POST', '/api/auth/signup', { username: uniqueName(), password: 'short' });
		expectError(short, 400, 'weak_password');
		const username = uniqueName();
		const same = await client().request('POST', '/api/auth/signup', { username, password: username.toUpperCase() });
		expectError(same, 400, 'weak_password');
	});

	it('answers 400 invalid_username for usernames outside 3–32 of [a-z0-9_.-]', async () => {
		for (const username of ['ab', 'has space', 'bad!name', 'x'.repeat(33), '']) {
			const answer = await client().request('POST', '/api/auth/signup', { username, password: PASSWORD });
			expectError(answer, 400, 'invalid_username');
		}
	});

	it('answers 400 when username or password is missing or not a string', async () => {
		expectError(await client().request('POST', '/api/auth/signup', {}), 400);
		expectError(await client().request('POST', '/api/auth/signup', { username: uniqueName() }), 400);
		expectError(await client().request('POST', '/api/auth/signup', { password: PASSWORD }), 400);
		expectError(await client().request('POST', '/api/auth/signup', { username: 42, password: PASSWORD }), 400);
	});

	it('answers 400 for a body that is not JSON, or JSON that is not an object', async () => {
		expectError(await client().request('POST', '/api/auth/signup', '{"username": '), 400, 'invalid_json');
		const array = await client().request('POST', '/api/auth/signup', JSON.stringify([uniqueName(), PASSWORD]));
		expectError(array, 400);
		expectError(await client().request('POST', '/api/auth/signup', 'null'), 400);
	});

	it('answers 415 unsupported_media_type for a body sent as another content type', async () => {
		const body = JSON.stringify({ username: uniqueName(), password: PASSWORD });
		const answer = await client().request('POST', '/api/auth/signup', body, { 'content-type': 'application/xml' });
		expectError(answer, 415, 'unsupported_media_type');
		expect(answer.headers.get('set-cookie')).toBeNull();
	});

	it('answers a text/plain body from a non-browser client (no Origin) with the JSON 415, not a plain-text 403', async () => {
		const body = JSON.stringify({ username: uniqueName(), password: PASSWORD });
		const answer = await client().request('POST', '/api/auth/signup', body, { 'content-type': 'text/plain' });
		expectError(answer, 415, 'unsupported_media_type');
	});

	it('does not mark the session cookie Secure when the app is served over plain http', async () => {
		const answer = await client().request('POST', '/api/auth/signup', { username: uniqueName(), password: PASSWORD });
		expect(answer.status).toBe(201);
		const attributes = (answer.headers.get('set-cookie') ?? '').split(';').map((part) => part.trim().toLowerCase());
		expect(attributes).not.toContain('secure');
	});
});

describe('POST /api/auth/login', () => {
	it('answers 200 {user} with a fresh session cookie for the right password', async () => {
		const username = uniqueName();
		const user = await client().signup(username);
		const c = client();
		const answer = await c.request('POST', '/api/auth/login', { username: username.toUpperCase(), password: PASSWORD });
		expect(answer.status).toBe(200);
		expect(answer.body.user).toEqual(user);
		expect(answer.headers.get('set-cookie')).toMatch(/^session=[^;]+;.*HttpOnly/i);
		expect((await c.request('GET', '/api/me')).body.user).toEqual(user);
	});

	it('answers 401 invalid_credentials for a wrong password and for an unknown user alike', async () => {
		const username = uniqueName();
		await client().signup(username);
		const wrong = await client().request('POST', '/api/auth/login', { username, password: 'not the password' });
		expectError(wrong, 401, 'invalid_credentials');
		expect(wrong.headers.get('set-cookie')).toBeNull();
		const unknown = await client().request('POST', '/api/auth/login', { username: uniqueName('nobody'), password: PASSWORD });
		expectError(unknown, 401, 'invalid_credentials');
		expect(unknown.body.error.message).toBe(wrong.body.error.message);
	});

	it('answers 429 with retry-after after 5 failures, even for the right password while locked', async () => {
		const username = uniqueName();
		await client().signup(username);
		const attacker = client();
		for (let attempt = 1; attempt <= 5; attempt++) {
			const answer = await attacker.request('POST', '/api/auth/login', { username, password: `wrong ${attempt}` });
			expectError(answer, 401, 'invalid_credentials');
		}
		const locked = await attacker.request('POST', '/api/auth/login', { username, password: 'wrong 6' });
		expectError(locked, 429);
		const retryAfter = Number(locked.headers.get('retry-after'));
		expect(Number.isInteger(retryAfter)).toBe(true);
		expect(retryAfter).toBeGreaterThan(0);
		expect(retryAfter).toBeLessThanOrEqual(60);

		const owner = client();
		const right = await owner.request('POST', '/api/auth/login', { username, password: PASSWORD });
		expectError(right, 429);
		expect(right.headers.get('retry-after')).not.toBeNull();
		expect(owner.cookie).toBeNull();
	});
});

describe('POST /api/auth/logout and GET /api/me', () => {
	it('GET /api/me answers 401 unauthorized without a session and 200 {user} with one', async () => {
		expectError(await client().request('GET', '/api/me'), 401, 'unauthorized');
		const c = client();
		const user = await c.signup();
		const me = await c.request('GET', '/api/me');
		expect(me.status).toBe(200);
		expect(me.body).toEqual({ user });
	});

	it('GET /api/me answers 401 for a made-up session cookie', async () => {
		const response = await getWithCookie('/api/me', 'session=notarealsessiontokenatall');
		expect(response.status).toBe(401);
	});

	it('logout answers 204 and revokes the session on the server: the old cookie no longer works', async () => {
		const c = await signedIn();
		const oldCookie = c.cookie!;
		expect((await getWithCookie('/api/me', oldCookie)).status).toBe(200);

		const logout = await c.request('POST', '/api/auth/logout');
		expect(logout.status).toBe(204);
		expect(logout.body).toBeNull();
		expect(logout.headers.get('set-cookie')).toMatch(/^session=;/);

		const replay = await getWithCookie('/api/me', oldCookie);
		expect(replay.status).toBe(401);
		const body = await replay.json();
		expect(body.error.code).toBe('unauthorized');
	});

	it('logout without a session still answers 204', async () => {
		expect((await client().request('POST', '/api/auth/logout')).status).toBe(204);
	});
});

describe('CSRF protection of state-changing API requests', () => {
	it('refuses a POST whose Origin is another site with 403 cross_site_request, and does nothing', async () => {
		const c = await signedIn();
		const answer = await c.request('POST', '/api/rooms', { kind: 'group', name: 'evil', members: [] }, { origin: 'https://evil.example' });
		expectError(answer, 403, 'cross_site_request');
		expect((await c.request('GET', '/api/rooms')).body.rooms).toEqual([]);
	});

	it('refuses a POST marked Sec-Fetch-Site: cross-site with 403 cross_site_request', async () => {
		const c = await signedIn();
		const answer = await c.request('POST', '/api/rooms', { kind: 'group', name: 'evil', members: [] }, { 'sec-fetch-site': 'cross-site' });
		expectError(answer, 403, 'cross_site_request');
		expect((await c.request('GET', '/api/rooms')).body.rooms).toEqual([]);
	});

	it('refuses a cross-site signup and logout too', async () => {
		const signup = await client().request('POST', '/api/auth/signup', { username: uniqueName(), password: PASSWORD }, { origin: 'https://evil.example' });
		expectError(signup, 403, 'cross_site_request');
		const c = await signedIn();
		const logout = await c.request('POST', '/api/auth/logout', undefined, { origin: 'https://evil.example' });
		expectError(logout, 403, 'cross_site_request');
		expect((await c.request('GET', '/api/me')).status).toBe(200);
	});

	it('allows a POST from the app’s own origin, as a browser on the app’s page sends it', async () => {
		const c = await signedIn();
		const origin = new URL(server.baseUrl).origin;
		const answer = await c.request('POST', '/api/rooms', { kind: 'group', name: 'ours', members: [] }, { origin, 'sec-fetch-site': 'same-origin' });
		expect({ status: answer.status, body: answer.body }).toMatchObject({ status: 201, body: { room: { name: 'ours' } } });
	});

	it('allows a POST from a non-browser client that sends neither Origin nor Sec-Fetch-Site', async () => {
		const c = await signedIn();
		const answer = await c.request('POST', '/api/rooms', { kind: 'group', name: 'bot', members: [] });
		expect(answer.status).toBe(201);
	});
});

describe('POST /api/rooms {kind: "direct"}', () => {
	it('creates the pair’s room (201) once; both directions then get the same room (200)', async () => {
		const a = await signedIn();
		const b = await signedIn();
		const first = await a.request('POST', '/api/rooms', { kind: 'direct', with: b.user!.username });
		expect(first.status).toBe(201);
		const room: Room = first.body.room;
		expect(room.kind).toBe('direct');
		expect(room.id).toEqual(expect.any(String));
		expect(room.name).toBe(b.user!.displayName);
		expect(room.members.map((m) => m.id).sort()).toEqual([a.user!.id, b.user!.id].sort());

		const again = await a.request('POST', '/api/rooms', { kind: 'direct', with: b.user!.username.toUpperCase() });
		expect(again.status).toBe(200);
		expect(again.body.room.id).toBe(room.id);

		const reverse = await b.request('POST', '/api/rooms', { kind: 'direct', with: a.user!.username });
		expect(reverse.status).toBe(200);
		expect(reverse.body.room.id).toBe(room.id);
		expect(reverse.body.room.name).toBe(a.user!.displayName);
	});

	it('answers 400 for a direct room with yourself and 404 user_not_found for an unknown user', async () => {
		const a = await signedIn();
		expectError(await a.request('POST', '/api/rooms', { kind: 'direct', with: a.user!.username }), 400);
		expectError(await a.request('POST', '/api/rooms', { kind: 'direct', with: uniqueName('ghost') }), 404, 'user_not_found');
		expect((await a.request('GET', '/api/rooms')).body.rooms).toEqual([]);
	});

	it('answers 401 signed out and 400 for an unknown kind', async () => {
		expectError(await client().request('POST', '/api/rooms', { kind: 'direct', with: uniqueName() }), 401, 'unauthorized');
		expectError(await (await signedIn()).request('POST', '/api/rooms', { kind: 'channel', name: 'x' }), 400);
	});
});

describe('POST /api/rooms {kind: "group"}', () => {
	it('creates the group (201) with the creator as admin and everyone else as member', async () => {
		const a = await signedIn();
		const b = await signedIn();
		const c = await signedIn();
		const answer = await a.request('POST', '/api/rooms', { kind: 'group', name: 'Team', members: [b.user!.username, c.user!.username] });
		expect(answer.status).toBe(201);
		const room: Room = answer.body.room;
		expect(room).toMatchObject({ kind: 'group', name: 'Team' });
		expect(room.members).toHaveLength(3);
		expect(memberOf(room, a.user!.id)?.role).toBe('admin');
		expect(memberOf(room, b.user!.id)?.role).toBe('member');
		expect(memberOf(room, c.user!.id)?.role).toBe('member');
		expect((await b.request('GET', `/api/rooms/${room.id}`)).status).toBe(200);
	});

	it('answers 404 user_not_found when a member does not exist, creating nothing', async () => {
		const a = await signedIn();
		const answer = await a.request('POST', '/api/rooms', { kind: 'group', name: 'Team', members: [uniqueName('ghost')] });
		expectError(answer, 404, 'user_not_found');
		expect((await a.request('GET', '/api/rooms')).body.rooms).toEqual([]);
	});

	it('answers 400 for a missing name or members that are not a list of usernames', async () => {
		const a = await signedIn();
		expectError(await a.request('POST', '/api/rooms', { kind: 'group', members: [] }), 400);
		expectError(await a.request('POST', '/api/rooms', { kind: 'group', name: '   ', members: [] }), 400);
		expectError(await a.request('POST', '/api/rooms', { kind: 'group', name: 'x', members: 'bob' }), 400);
	});
});

describe('GET /api/rooms and GET /api/rooms/:id', () => {
	it('lists the caller’s rooms, most recent first, with their members as {id, username, displayName, role}', async () => {
		const a = await signedIn();
		const b = await signedIn();
		const direct = await a.openDirect(b.user!.username);
		const group = await a.createGroup('Later', [b.user!.username]);

		const answer = await a.request('GET', '/api/rooms');
		expect(answer.status).toBe(200);
		const rooms: Room[] = answer.body.rooms;
		expect(rooms.map((r) => r.id)).toEqual([group.id, direct.id]);
		const expectedMembers = (adminId: string | null) =>
			[a.user!, b.user!].map((u) => expect.objectContaining({ id: u.id, username: u.username, displayName: u.displayName, role: u.id === adminId ? 'admin' : 'member' }));
		expect(rooms[0].members).toEqual(expect.arrayContaining(expectedMembers(a.user!.id)));
		expect(rooms[0].members).toHaveLength(2);
		expect(rooms[1].members).toEqual(expect.arrayContaining(expectedMembers(null)));
		expect(rooms[1].members).toHaveLength(2);

		const outsider = await signedIn();
		expect((await outsider.request('GET', '/api/rooms')).body).toEqual({ rooms: [] });
	});

	it('GET /api/rooms answers 401 signed out', async () => {
		expectError(await client().request('GET', '/api/rooms'), 401, 'unauthorized');
	});

	it('GET /api/rooms/:id answers 200 {room} to members, and the same 404 to non-members and for unknown ids', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Private', []);
		const own = await a.request('GET', `/api/rooms/${group.id}`);
		expect(own.status).toBe(200);
		expect(own.body.room).toMatchObject({ id: group.id, kind: 'group', name: 'Private' });

		const outsider = await signedIn();
		const notMine = await outsider.request('GET', `/api/rooms/${group.id}`);
		expectError(notMine, 404, 'room_not_found');
		const unknown = await outsider.request('GET', `/api/rooms/${uniqueName('room')}`);
		expectError(unknown, 404, 'room_not_found');
		expect(notMine.body).toEqual(unknown.body);

		expectError(await client().request('GET', `/api/rooms/${group.id}`), 401, 'unauthorized');
	});
});

describe('POST /api/rooms/:id/members', () => {
	it('lets an admin add a member (201); the new member then sees the room', async () => {
		const admin = await signedIn();
		const newcomer = await signedIn();
		const group = await admin.createGroup('Club', []);
		const answer = await admin.request('POST', `/api/rooms/${group.id}/members`, { username: newcomer.user!.username });
		expect(answer.status).toBe(201);
		const room = await newcomer.request('GET', `/api/rooms/${group.id}`);
		expect(room.status).toBe(200);
		expect(memberOf(room.body.room, newcomer.user!.id)?.role).toBe('member');
	});

	it('adds with the requested role, and answers 400 for an unknown role', async () => {
		const admin = await signedIn();
		const deputy = await signedIn();
		const group = await admin.createGroup('Club', []);
		expectError(await admin.request('POST', `/api/rooms/${group.id}/members`, { username: deputy.user!.username, role: 'owner' }), 400);
		expect((await admin.request('POST', `/api/rooms/${group.id}/members`, { username: deputy.user!.username, role: 'admin' })).status).toBe(201);
		expect(memberOf((await deputy.request('GET', `/api/rooms/${group.id}`)).body.room, deputy.user!.id)?.role).toBe('admin');
	});

	it('answers 403 to a non-admin member, 404 for an unknown user, 409 for an existing member', async () => {
		const admin = await signedIn();
		const member = await signedIn();
		const third = await signedIn();
		const group = await admin.createGroup('Club', [member.user!.username]);
		const path = `/api/rooms/${group.id}/members`;

		expectError(await member.request('POST', path, { username: third.user!.username }), 403, 'not_admin');
		expect((await third.request('GET', `/api/rooms/${group.id}`)).status).toBe(404);
		expectError(await admin.request('POST', path, { username: uniqueName('ghost') }), 404, 'user_not_found');
		expectError(await admin.request('POST', path, { username: member.user!.username }), 409, 'already_member');
	});

	it('answers 403 for a direct room and 404 to a non-member', async () => {
		const a = await signedIn();
		const b = await signedIn();
		const c = await signedIn();
		const direct = await a.openDirect(b.user!.username);
		expectError(await a.request('POST', `/api/rooms/${direct.id}/members`, { username: c.user!.username }), 403, 'direct_room');

		const group = await a.createGroup('Club', []);
		expectError(await c.request('POST', `/api/rooms/${group.id}/members`, { username: c.user!.username }), 404, 'room_not_found');
		expect((await c.request('GET', `/api/rooms/${group.id}`)).status).toBe(404);
	});
});

describe('DELETE /api/rooms/:id/members/:userId', () => {
	it('lets an admin remove another member (204); the room is then 404 for them', async () => {
		const admin = await signedIn();
		const member = await signedIn();
		const group = await admin.createGroup('Club', [member.user!.username]);
		const answer = await admin.request('DELETE', `/api/rooms/${group.id}/members/${member.user!.id}`);
		expect(answer.status).toBe(204);
		expectError(await member.request('GET', `/api/rooms/${group.id}`), 404, 'room_not_found');
		expect((await member.request('GET', '/api/rooms')).body.rooms).toEqual([]);
	});

	it('lets a member leave (204); the room is then 404 for them and the others stay', async () => {
		const admin = await signedIn();
		const member = await signedIn();
		const group = await admin.createGroup('Club', [member.user!.username]);
		expect((await member.request('DELETE', `/api/rooms/${group.id}/members/${member.user!.id}`)).status).toBe(204);
		expectError(await member.request('GET', `/api/rooms/${group.id}`), 404, 'room_not_found');
		const room = (await admin.request('GET', `/api/rooms/${group.id}`)).body.room as Room;
		expect(room.members.map((m) => m.id)).toEqual([admin.user!.id]);
	});

	it('answers 403 not_admin when a member removes someone else, who stays', async () => {
		const admin = await signedIn();
		const member = await signedIn();
		const group = await admin.createGroup('Club', [member.user!.username]);
		expectError(await member.request('DELETE', `/api/rooms/${group.id}/members/${admin.user!.id}`), 403, 'not_admin');
		expect((await admin.request('GET', `/api/rooms/${group.id}`)).status).toBe(200);
	});

	it('promotes the remaining member to admin when the last admin leaves', async () => {
		const admin = await signedIn();
		const member = await signedIn();
		const group = await admin.createGroup('Club', [member.user!.username]);
		expect((await admin.request('DELETE', `/api/rooms/${group.id}/members/${admin.user!.id}`)).status).toBe(204);
		const room = (await member.request('GET', `/api/rooms/${group.id}`)).body.room as Room;
		expect(room.members).toHaveLength(1);
		expect(memberOf(room, member.user!.id)?.role).toBe('admin');
	});

	it('answers 404 to a non-member, and for a user who is not in the room', async () => {
		const admin = await signedIn();
		const outsider = await signedIn();
		const group = await admin.createGroup('Club', []);
		expectError(await outsider.request('DELETE', `/api/rooms/${group.id}/members/${admin.user!.id}`), 404, 'room_not_found');
		expectError(await admin.request('DELETE', `/api/rooms/${group.id}/members/${outsider.user!.id}`), 404);
		expect((await admin.request('GET', `/api/rooms/${group.id}`)).status).toBe(200);
	});

	it('answers 403 in a direct room', async () => {
		const a = await signedIn();
		const b = await signedIn();
		const direct = await a.openDirect(b.user!.username);
		expectError(await a.request('DELETE', `/api/rooms/${direct.id}/members/${a.user!.id}`), 403, 'direct_room');
	});
});

describe('DELETE /api/rooms/:id', () => {
	it('lets an admin delete a group (204): it is gone for every member at once and their sockets close with 4404', async () => {
		const admin = await signedIn();
		const member = await signedIn();
		const group = await admin.createGroup('Doomed', [member.user!.username]);
		const descriptor = await member.descriptor(group.id);
		const socket = new WebSocket(`${descriptor.serverUrl}/${descriptor.room}?token=${descriptor.params.token}`);
		await new Promise((resolve, reject) => {
			socket.once('open', resolve);
			socket.once('error', reject);
		});
		const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
		expect((await admin.request('DELETE', `/api/rooms/${group.id}`)).status).toBe(204);
		expect(await closed).toBe(CloseCode.roomDeleted);
		for (const c of [admin, member]) {
			// 404 like any room one is not in, with a code that tells devices to drop their copy.
			expectError(await c.request('GET', `/api/rooms/${group.id}`), 404, 'room_deleted');
			expectError(await c.request('GET', `/api/rooms/${group.id}/messages`), 404, 'room_deleted');
			expectError(await c.request('GET', `/api/rooms/${group.id}/sync`), 404, 'room_deleted');
			expect(((await c.request('GET', '/api/rooms')).body.rooms as Room[]).map((r) => r.id)).not.toContain(group.id);
		}
		expect((await upgradeStatus(`${descriptor.serverUrl}/${descriptor.room}?token=${descriptor.params.token}`)).status).toBe(404);
	});

	it('answers 403 not_admin to a member, 403 direct_room for a direct chat, 404 to a non-member', async () => {
		const admin = await signedIn();
		const member = await signedIn();
		const group = await admin.createGroup('Kept', [member.user!.username]);
		expectError(await member.request('DELETE', `/api/rooms/${group.id}`), 403, 'not_admin');
		expectError(await (await signedIn()).request('DELETE', `/api/rooms/${group.id}`), 404, 'room_not_found');
		const direct = await admin.openDirect(member.user!.username);
		expectError(await admin.request('DELETE', `/api/rooms/${direct.id}`), 403, 'direct_room');
		expect((await member.request('GET', `/api/rooms/${group.id}`)).status).toBe(200);
	});
});

describe('GET /api/rooms/:id/sync', () => {
	it('answers 200 {serverUrl, room, params} with the relay URL, the room id and a token', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Synced', []);
		const answer = await a.request('GET', `/api/rooms/${group.id}/sync`);
		expect(answer.status).toBe(200);
		expect(Object.keys(answer.body).sort()).toEqual(['params', 'room', 'serverUrl']);
		expect(answer.body.serverUrl).toBe(server.relayUrl);
		expect(answer.body.room).toBe(group.id);
		expect(typeof answer.body.params.token).toBe('string');
		expect(answer.body.params.token.length).toBeGreaterThan(0);
	});

	it('answers 404 to a non-member and 401 signed out', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Synced', []);
		expectError(await (await signedIn()).request('GET', `/api/rooms/${group.id}/sync`), 404, 'room_not_found');
		expectError(await client().request('GET', `/api/rooms/${group.id}/sync`), 401, 'unauthorized');
	});
});

describe('GET /api/rooms/:id/messages', () => {
	it('answers 200 {messages: [], nextBefore: null} for an empty room', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Quiet', []);
		const answer = await a.request('GET', `/api/rooms/${group.id}/messages`);
		expect(answer.status).toBe(200);
		expect(answer.body).toEqual({ messages: [], nextBefore: null });
		expect((await a.request('GET', `/api/rooms/${group.id}/messages?limit=100`)).body).toEqual({ messages: [], nextBefore: null });
	});

	it('answers 400 invalid_limit for a limit outside 1..100 or not a number', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Quiet', []);
		for (const limit of ['0', '101', 'abc', '-1', '2.5']) {
			expectError(await a.request('GET', `/api/rooms/${group.id}/messages?limit=${limit}`), 400, 'invalid_limit');
		}
	});

	it('pages by cursor, and by beforeId for a message of the live document', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Paged', []);
		const descriptor = await a.descriptor(group.id);
		const doc = new Y.Doc();
		const texts = Array.from({ length: 7 }, (_, i) => `page ${i}`);
		doc.getArray('messages').push(texts.map((text, i) => ({ id: ulid(), author: a.user!.id, ts: Date.now() - 1000 + i, kind: 'text', text })));
		const provider = connectStockProvider(descriptor.serverUrl, descriptor.room, descriptor.params);
		Y.applyUpdate(provider.doc, Y.encodeStateAsUpdate(doc));
		try {
			await waitFor(async () => (await a.request('GET', `/api/rooms/${group.id}/messages`)).body.messages.length === 7, 10_000, 'stored');
			const newest = await a.request('GET', `/api/rooms/${group.id}/messages?limit=3`);
			expect(newest.body.messages.map((m: { text: string }) => m.text)).toEqual(texts.slice(4));
			const older = await a.request('GET', `/api/rooms/${group.id}/messages?limit=3&before=${newest.body.nextBefore}`);
			expect(older.body.messages.map((m: { text: string }) => m.text)).toEqual(texts.slice(1, 4));
			const first = await a.request('GET', `/api/rooms/${group.id}/messages?limit=3&before=${older.body.nextBefore}`);
			expect(first.body).toMatchObject({ nextBefore: null });
			expect(first.body.messages.map((m: { text: string }) => m.text)).toEqual(texts.slice(0, 1));
			const byId = await a.request('GET', `/api/rooms/${group.id}/messages?limit=2&beforeId=${newest.body.messages[0].id}`);
			expect(byId.body.messages.map((m: { text: string }) => m.text)).toEqual(texts.slice(2, 4));
			expectError(await a.request('GET', `/api/rooms/${group.id}/messages?beforeId=nope`), 400, 'invalid_cursor');
			// Someone added today reads what was said before they joined.
			const late = await signedIn();
			expect((await a.request('POST', `/api/rooms/${group.id}/members`, { username: late.user!.username })).status).toBe(201);
			const seen = await late.request('GET', `/api/rooms/${group.id}/messages?limit=100`);
			expect(seen.body.messages.map((m: { text: string }) => m.text)).toEqual(texts);
		} finally {
			provider.provider.destroy();
		}
	});

	it('answers 400 invalid_cursor for a cursor this server did not issue', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Quiet', []);
		expectError(await a.request('GET', `/api/rooms/${group.id}/messages?before=not-a-cursor`), 400, 'invalid_cursor');
		const wellFormedButUnknown = Buffer.from(JSON.stringify({ v: 1, before: 'nosuchmessage' })).toString('base64url');
		expectError(await a.request('GET', `/api/rooms/${group.id}/messages?before=${wellFormedButUnknown}`), 400, 'invalid_cursor');
	});

	it('answers 404 to a non-member and 401 signed out', async () => {
		const a = await signedIn();
		const group = await a.createGroup('Quiet', []);
		expectError(await (await signedIn()).request('GET', `/api/rooms/${group.id}/messages`), 404, 'room_not_found');
		expectError(await client().request('GET', `/api/rooms/${group.id}/messages`), 401, 'unauthorized');
	});
});

describe('health, unknown paths and methods', () => {
	it('GET /api/health answers 200 {ok: true}', async () => {
		const answer = await client().request('GET', '/api/health');
		expect(answer.status).toBe(200);
		expect(answer.body.ok).toBe(true);
	});

	it('answers an unknown /api path with a JSON 404, whatever the method', async () => {
		expectError(await client().request('GET', '/api/no/such/thing'), 404, 'not_found');
		expectError(await (await signedIn()).request('POST', '/api/no-such-endpoint', {}), 404, 'not_found');
	});

	it('answers a method an endpoint does not take with a JSON 405', async () => {
		const c = await signedIn();
		expectError(await c.request('DELETE', '/api/me'), 405);
		expectError(await c.request('PUT', '/api/rooms', {}), 405);
		expectError(await client().request('GET', '/api/auth/login'), 405);
	});
});

describe('pages', () => {
	it('serves /login with a CSP that forbids inline scripts and framing, and nosniff', async () => {
		const response = await fetch(`${server.baseUrl}/login`, { redirect: 'manual' });
		expect(response.status).toBe(200);
		expect(response.headers.get('content-type')).toMatch(/^text\/html/);
		const csp = response.headers.get('content-security-policy') ?? '';
		const directives = new Map(
			csp
				.split(';')
				.map((d) => d.trim().split(/\s+/))
				.filter((parts) => parts[0])
				.map(([name, ...values]) => [name.toLowerCase(), values] as const)
		);
		const scriptSrc = directives.get('script-src') ?? directives.get('default-src');
		expect(scriptSrc).toBeDefined();
		expect(scriptSrc).not.toContain("'unsafe-inline'");
		expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
		expect(response.headers.get('x-content-type-options')).toBe('nosniff');
		await response.body?.cancel();
	});

	it('sends a signed-out visitor of / to /login with a 303', async () => {
		const response = await fetch(`${server.baseUrl}/`, { redirect: 'manual' });
		expect(response.status).toBe(303);
		expect(new URL(response.headers.get('location')!, server.baseUrl).pathname).toBe('/login');
	});
});
