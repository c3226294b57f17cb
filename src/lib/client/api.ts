/**
 * Typed helpers for the HTTP API (docs/api.md). Every failure becomes an `ApiError` carrying the
 * server's `{error: {code, message}}`, or `code: 'network'` with status 0 when no answer came.
 */
import type { ApiErrorBody, MessagesPage, Room, SyncDescriptor, User } from '$lib/shared/api-types';

export class ApiError extends Error {
	readonly code: string;
	readonly status: number;

	constructor(status: number, code: string, message: string) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
		this.code = code;
	}

	get isNetwork(): boolean {
		return this.status === 0;
	}
}

function isErrorBody(value: unknown): value is ApiErrorBody {
	if (typeof value !== 'object' || value === null) return false;
	const error = (value as { error?: unknown }).error;
	return (
		typeof error === 'object' &&
		error !== null &&
		typeof (error as { code?: unknown }).code === 'string' &&
		typeof (error as { message?: unknown }).message === 'string'
	);
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
	let response: Response;
	try {
		response = await fetch(path, {
			method,
			credentials: 'same-origin',
			headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
			body: body === undefined ? undefined : JSON.stringify(body)
		});
	} catch {
		throw new ApiError(0, 'network', 'No connection to the server.');
	}
	if (response.status === 204) return undefined as T;
	const payload: unknown = await response.json().catch(() => null);
	if (!response.ok) {
		if (isErrorBody(payload)) throw new ApiError(response.status, payload.error.code, payload.error.message);
		throw new ApiError(response.status, 'http_error', `The server answered ${response.status}.`);
	}
	return payload as T;
}

export async function signup(input: { username: string; password: string; displayName?: string }): Promise<User> {
	return (await request<{ user: User }>('POST', '/api/auth/signup', input)).user;
}

export async function login(input: { username: string; password: string }): Promise<User> {
	return (await request<{ user: User }>('POST', '/api/auth/login', input)).user;
}

export async function logout(): Promise<void> {
	await request<void>('POST', '/api/auth/logout');
}

export async function searchUsers(query: string): Promise<User[]> {
	const q = encodeURIComponent(query);
	return (await request<{ users: User[] }>('GET', `/api/users?query=${q}`)).users;
}

export async function listRooms(): Promise<Room[]> {
	return (await request<{ rooms: Room[] }>('GET', '/api/rooms')).rooms;
}

export async function getRoom(roomId: string): Promise<Room> {
	return (await request<{ room: Room }>('GET', `/api/rooms/${encodeURIComponent(roomId)}`)).room;
}

export async function createDirectRoom(username: string): Promise<Room> {
	return (await request<{ room: Room }>('POST', '/api/rooms', { kind: 'direct', with: username })).room;
}

export async function createGroupRoom(name: string, members: string[]): Promise<Room> {
	return (await request<{ room: Room }>('POST', '/api/rooms', { kind: 'group', name, members })).room;
}

export async function addMember(roomId: string, username: string): Promise<Room | null> {
	const answer = await request<{ room?: Room } | undefined>(
		'POST',
		`/api/rooms/${encodeURIComponent(roomId)}/members`,
		{ username }
	);
	return answer?.room ?? null;
}

export async function removeMember(roomId: string, userId: string): Promise<void> {
	await request<void>('DELETE', `/api/rooms/${encodeURIComponent(roomId)}/members/${encodeURIComponent(userId)}`);
}

/** Deletes a group (admins only); its members' devices drop it. */
export async function deleteRoom(roomId: string): Promise<void> {
	await request<void>('DELETE', `/api/rooms/${encodeURIComponent(roomId)}`);
}

/** One page of a room's history, oldest first, ending just before `before` (the newest page when null). */
export async function getMessagesPage(roomId: string, before: string | null, limit: number): Promise<MessagesPage> {
	const query = new URLSearchParams({ limit: String(limit) });
	if (before !== null) query.set('before', before);
	return request<MessagesPage>('GET', `/api/rooms/${encodeURIComponent(roomId)}/messages?${query}`);
}

/**
 * The page of a room's history ending just before `messageId`, a message of the live document
 * (the page just older than the live log). 400 `invalid_cursor` when the message is not in the
 * live document (compacted meanwhile, or not yet stored by the relay).
 */
export async function getMessagesPageBeforeId(roomId: string, messageId: string, limit: number): Promise<MessagesPage> {
	const query = new URLSearchParams({ limit: String(limit), beforeId: messageId });
	return request<MessagesPage>('GET', `/api/rooms/${encodeURIComponent(roomId)}/messages?${query}`);
}

/** True for the 404 of a group that was deleted (not merely one the viewer is not in). */
export function isRoomDeleted(error: unknown): boolean {
	return error instanceof ApiError && error.status === 404 && error.code === 'room_deleted';
}

export async function getSyncDescriptor(roomId: string): Promise<SyncDescriptor> {
	return request<SyncDescriptor>('GET', `/api/rooms/${encodeURIComponent(roomId)}/sync`);
}

/** A `?next=` target is followed only when it is a path on this site. */
export function safeNextPath(next: string | null): string {
	if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
	return next;
}
