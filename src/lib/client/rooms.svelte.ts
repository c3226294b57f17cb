/**
 * The signed-in user's room list, shared by the sidebar and the room view. Polls the API and
 * takes live hints from an open room, so the list never waits for the next poll to look right.
 * The last list is kept on the device (per account) and shown at once, so the app opens with its
 * rooms when the network is slow or gone. A group that leaves the list because it was deleted
 * (the API answers `room_deleted`) leaves the device too (room-removal.ts).
 */
import { getRoom, isRoomDeleted, listRooms, ApiError } from './api';
import { readJson, roomsKey, writeJson } from './device-store';
import { forgetDeletedRoom } from './room-removal';
import type { Room, RoomPreview, User } from '$lib/shared/api-types';
import type { ChatMessage } from '$lib/shared/schema';

const ROOMS_REFRESH_MS = 15_000;

export function isUnread(room: Room, viewerId: string): boolean {
	const last = room.lastMessage;
	if (!last || last.author === viewerId) return false;
	return room.lastReadId === null || last.id > room.lastReadId;
}

export function otherMember(room: Room, viewerId: string): Room['members'][number] | null {
	return room.members.find((m) => m.id !== viewerId) ?? null;
}

/** Enough of a room's shape to render it; the cache is the app's own, but old versions may linger. */
function isCachedRoom(value: unknown): value is Room {
	if (typeof value !== 'object' || value === null) return false;
	const r = value as Record<string, unknown>;
	return typeof r.id === 'string' && typeof r.name === 'string' && typeof r.lastActivityAt === 'string' && Array.isArray(r.members);
}

export class RoomsStore {
	rooms = $state.raw<Room[]>([]);
	/** True after the first answer; an empty list now means the user has no rooms. */
	loaded = $state(false);
	/** Set when the last refresh could not reach the server. */
	offline = $state(false);
	/** Called when the session has ended (401). */
	onSignedOut: (() => void) | null = null;

	readonly user: User;
	#refreshing: Promise<void> | null = null;

	constructor(user: User) {
		this.user = user;
		const cached = readJson(roomsKey(user.id));
		if (Array.isArray(cached) && cached.every(isCachedRoom)) {
			this.rooms = cached;
			this.loaded = true;
		}
	}

	get(roomId: string): Room | null {
		return this.rooms.find((r) => r.id === roomId) ?? null;
	}

	refresh(): Promise<void> {
		this.#refreshing ??= this.#load().finally(() => (this.#refreshing = null));
		return this.#refreshing;
	}

	/** Polls every 15 s, on window focus and when the network comes back; returns the stop function. */
	start(): () => void {
		void this.refresh();
		const timer = setInterval(() => void this.refresh(), ROOMS_REFRESH_MS);
		const onWake = () => void this.refresh();
		window.addEventListener('focus', onWake);
		window.addEventListener('online', onWake);
		return () => {
			clearInterval(timer);
			window.removeEventListener('focus', onWake);
			window.removeEventListener('online', onWake);
		};
	}

	/** Adds or replaces a room (after creating it, or a fresher copy from the room view). */
	upsert(room: Room): void {
		const known = this.rooms.some((r) => r.id === room.id);
		this.#set(known ? this.rooms.map((r) => (r.id === room.id ? room : r)) : [room, ...this.rooms]);
	}

	remove(roomId: string): void {
		this.#set(this.rooms.filter((r) => r.id !== roomId));
	}

	/** Live hint from an open room: its newest message and the viewer's read pointer. */
	noteLive(roomId: string, newest: ChatMessage | null, myReadId: string | null, authorName: (id: string) => string): void {
		const room = this.get(roomId);
		if (!room) return;
		let changed = false;
		let next: Room = room;
		if (newest && (!room.lastMessage || newest.id !== room.lastMessage.id) && newest.ts >= (room.lastMessage?.ts ?? 0)) {
			const preview: RoomPreview = { id: newest.id, author: newest.author, authorName: authorName(newest.author), text: newest.text, ts: newest.ts };
			next = { ...next, lastMessage: preview, lastActivityAt: new Date(newest.ts).toISOString() };
			changed = true;
		}
		if (myReadId && (room.lastReadId === null || myReadId > room.lastReadId)) {
			next = { ...next, lastReadId: myReadId };
			changed = true;
		}
		if (!changed) return;
		const others = this.rooms.filter((r) => r.id !== roomId);
		this.#set([next, ...others].sort((a, b) => b.lastActivityAt.localeCompare(a.lastActivityAt)));
	}

	#set(rooms: Room[]): void {
		this.rooms = rooms;
		writeJson(roomsKey(this.user.id), rooms);
	}

	async #load(): Promise<void> {
		try {
			const previous = this.rooms;
			const fresh = await listRooms();
			this.#set(fresh);
			this.loaded = true;
			this.offline = false;
			const listed = new Set(fresh.map((r) => r.id));
			for (const room of previous) if (room.kind === 'group' && !listed.has(room.id)) void this.#checkGone(room.id);
		} catch (error) {
			if (error instanceof ApiError && error.status === 401) this.onSignedOut?.();
			else if (error instanceof ApiError && error.isNetwork) this.offline = true;
			else console.error('Could not load rooms', error);
		}
	}

	/**
	 * A group that left the list: if it was deleted (this device was away when it happened and
	 * never heard the relay's 4404), its copy on the device goes too. A group the viewer was
	 * removed from or left keeps its copy.
	 */
	async #checkGone(roomId: string): Promise<void> {
		try {
			await getRoom(roomId);
		} catch (error) {
			if (isRoomDeleted(error)) await forgetDeletedRoom(this.user.id, roomId);
		}
	}
}
