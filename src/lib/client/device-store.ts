/**
 * What this device keeps about an account besides the rooms' Yjs documents: the signed-in user,
 * the last room list, each room's acknowledged clocks, and a registry of the account's IndexedDB
 * databases, so signing out can remove all of it. Small values live in localStorage (synchronous,
 * so the app can paint from them before anything else answers); documents live in IndexedDB.
 *
 * Every key starts with `tunnel:`; an account's keys with `tunnel:<userId>:`.
 */
import type { User } from '$lib/shared/api-types';

const KEY_PREFIX = 'tunnel:';
/** The account last signed in on this device (`/api/me` when the network is gone). */
const ME_KEY = `${KEY_PREFIX}me`;
/** A deletion blocked by another tab is left to finish on its own after this long. */
const DATABASE_DELETE_WAIT_MS = 3_000;

function accountPrefix(userId: string): string {
	return `${KEY_PREFIX}${userId}:`;
}

export function roomsKey(userId: string): string {
	return `${accountPrefix(userId)}rooms`;
}

export function durableKey(userId: string, roomId: string): string {
	return `${accountPrefix(userId)}durable:${roomId}`;
}

function databasesKey(userId: string): string {
	return `${accountPrefix(userId)}databases`;
}

/**
 * IndexedDB database of one room's document on this device. A room whose live document rolled
 * over to a new epoch (close code 4410) gets a fresh database under a new `generation`.
 */
export function roomDatabaseName(userId: string, roomId: string, generation = ''): string {
	return generation ? `chat:${userId}:${roomId}~${generation}` : `chat:${userId}:${roomId}`;
}

/**
 * IndexedDB database of the account's cached history pages (all rooms). Under the account's
 * `chat:<userId>:` prefix like the room databases (room ids never contain `~`).
 */
export function historyDatabaseName(userId: string): string {
	return `chat:${userId}:~history`;
}

/** The generation of a room's document this device currently uses ('' for the first). */
export function roomGenerationKey(userId: string, roomId: string): string {
	return `${accountPrefix(userId)}generation:${roomId}`;
}

export function readRoomGeneration(userId: string, roomId: string): string {
	const value = readJson(roomGenerationKey(userId, roomId));
	return typeof value === 'string' ? value : '';
}

function storage(): Storage | null {
	try {
		return typeof localStorage === 'undefined' ? null : localStorage;
	} catch (error) {
		// Some privacy modes throw on access; the app then works without a device cache.
		console.warn('localStorage is not available', error);
		return null;
	}
}

/** A stored JSON value, or null when absent or unreadable (it is a cache: never trusted blindly). */
export function readJson(key: string): unknown {
	const raw = storage()?.getItem(key);
	if (raw == null) return null;
	try {
		return JSON.parse(raw) as unknown;
	} catch (error) {
		console.warn(`Ignoring unreadable device cache entry ${key}`, error);
		return null;
	}
}

export function writeJson(key: string, value: unknown): void {
	try {
		storage()?.setItem(key, JSON.stringify(value));
	} catch (error) {
		// Quota exceeded: the cache is an optimisation, the documents in IndexedDB are what matter.
		console.warn(`Could not store ${key} on this device`, error);
	}
}

function isUser(value: unknown): value is User {
	if (typeof value !== 'object' || value === null) return false;
	const v = value as Record<string, unknown>;
	return typeof v.id === 'string' && typeof v.username === 'string' && typeof v.displayName === 'string';
}

export function readCachedUser(): User | null {
	const value = readJson(ME_KEY);
	return isUser(value) ? { id: value.id, username: value.username, displayName: value.displayName } : null;
}

export function cacheUser(user: User): void {
	writeJson(ME_KEY, { id: user.id, username: user.username, displayName: user.displayName });
}

/** The server said the session is over: stop opening the app as this user offline. */
export function forgetCachedUser(): void {
	storage()?.removeItem(ME_KEY);
}

/** Remembers that this account has a room database, so sign-out finds it without a listing. */
export function registerRoomDatabase(userId: string, name: string): void {
	const known = readDatabaseRegistry(userId);
	if (known.includes(name)) return;
	writeJson(databasesKey(userId), [...known, name]);
}

function readDatabaseRegistry(userId: string): string[] {
	const value = readJson(databasesKey(userId));
	return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Resolves true once deleted, false if other tabs still hold it open after a while. */
export function deleteDatabase(name: string): Promise<boolean> {
	return new Promise((resolve) => {
		const timer = setTimeout(() => resolve(false), DATABASE_DELETE_WAIT_MS);
		const request = indexedDB.deleteDatabase(name);
		request.onsuccess = () => {
			clearTimeout(timer);
			resolve(true);
		};
		request.onerror = () => {
			clearTimeout(timer);
			console.error(`Could not delete ${name}`, request.error);
			resolve(false);
		};
	});
}

/**
 * Removes everything this device holds for the account: its room databases (the registry plus
 * whatever `indexedDB.databases()` lists under the account's prefix, for rooms opened before the
 * registry existed) and its localStorage keys. Open documents must be closed first.
 */
export async function forgetAccountData(userId: string): Promise<void> {
	const names = new Set([...readDatabaseRegistry(userId), historyDatabaseName(userId)]);
	const prefix = roomDatabaseName(userId, '');
	if (typeof indexedDB.databases === 'function') {
		for (const info of await indexedDB.databases()) {
			if (info.name?.startsWith(prefix)) names.add(info.name);
		}
	}
	await Promise.all([...names].map((name) => deleteDatabase(name)));
	const store = storage();
	if (!store) return;
	const keys: string[] = [];
	for (let i = 0; i < store.length; i += 1) {
		const key = store.key(i);
		if (key?.startsWith(accountPrefix(userId))) keys.push(key);
	}
	for (const key of keys) store.removeItem(key);
	if (readCachedUser()?.id === userId) forgetCachedUser();
}

/** The newest message of a room this device has synced in the background (InboxSync). */
export function inboxKey(userId: string, roomId: string): string {
	return `${accountPrefix(userId)}inbox:${roomId}`;
}

/**
 * Removes what this device keeps about one room of the account (the room was deleted): its
 * documents of every generation and its small keys. The history pages are the caller's to drop
 * (HistoryCache); open connections to the room must be closed first.
 */
export async function forgetRoomData(userId: string, roomId: string): Promise<void> {
	const base = roomDatabaseName(userId, roomId);
	const registry = readDatabaseRegistry(userId);
	const names = new Set(registry.filter((name) => name === base || name.startsWith(`${base}~`)));
	names.add(base);
	if (typeof indexedDB.databases === 'function') {
		for (const info of await indexedDB.databases()) {
			if (info.name && (info.name === base || info.name.startsWith(`${base}~`))) names.add(info.name);
		}
	}
	writeJson(
		databasesKey(userId),
		registry.filter((name) => !names.has(name))
	);
	for (const key of [durableKey(userId, roomId), inboxKey(userId, roomId), roomGenerationKey(userId, roomId)]) storage()?.removeItem(key);
	const rooms = readJson(roomsKey(userId));
	if (Array.isArray(rooms)) {
		writeJson(
			roomsKey(userId),
			rooms.filter((room) => (room as { id?: unknown } | null)?.id !== roomId)
		);
	}
	await Promise.all([...names].map((name) => deleteDatabase(name)));
}

/** Forgets one database of the account (a room's document of an earlier generation). */
export async function forgetRoomDatabase(userId: string, name: string): Promise<void> {
	writeJson(
		databasesKey(userId),
		readDatabaseRegistry(userId).filter((known) => known !== name)
	);
	await deleteDatabase(name);
}
