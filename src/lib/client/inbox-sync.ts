/**
 * "Delivered" means a device of the recipient has the message, not that the room is open on it.
 * While the app runs, rooms whose newest message (from the room list) is someone else's and newer
 * than what this device last synced are synced in the background, one at a time: the room's
 * document is brought into IndexedDB (so the room also opens offline) and the connection writes
 * the account's `delivered` mark, then closes once the relay has stored that mark.
 */
import type { Room, User } from '$lib/shared/api-types';
import { inboxKey, readJson, writeJson } from './device-store';
import { RoomConnection } from './room-connection.svelte';
import { forgetDeletedRoom } from './room-removal';

/** A background sync that has not finished by then is abandoned (retried on the next pass). */
const INBOX_ROOM_TIMEOUT_MS = 15_000;
/** How often a background connection is checked for being done. */
const INBOX_CHECK_INTERVAL_MS = 100;

export class InboxSync {
	readonly #user: User;
	/** Rooms open in this tab keep their own connection and marks. */
	readonly #isOpen: (roomId: string) => boolean;
	#queue: Room[] = [];
	#running = false;
	#current: RoomConnection | null = null;
	#stopped = false;

	constructor(user: User, isOpen: (roomId: string) => boolean) {
		this.#user = user;
		this.#isOpen = isOpen;
	}

	/** Queues the rooms that have something this device has not synced yet. */
	update(rooms: readonly Room[]): void {
		if (this.#stopped) return;
		this.#queue = rooms.filter((room) => this.#needsSync(room));
		if (!this.#running) void this.#drain();
	}

	stop(): void {
		this.#stopped = true;
		this.#queue = [];
		this.#current?.destroy();
	}

	#needsSync(room: Room): boolean {
		const last = room.lastMessage;
		if (!last || last.author === this.#user.id || this.#isOpen(room.id)) return false;
		return readJson(inboxKey(this.#user.id, room.id)) !== last.id;
	}

	async #drain(): Promise<void> {
		this.#running = true;
		try {
			for (let room = this.#queue.shift(); room && !this.#stopped; room = this.#queue.shift()) {
				if (!navigator.onLine) break;
				if (!this.#needsSync(room) || !room.lastMessage) continue;
				if (await this.#syncRoom(room.id, room.lastMessage.id)) writeJson(inboxKey(this.#user.id, room.id), room.lastMessage.id);
			}
		} finally {
			this.#running = false;
		}
	}

	/** Resolves true once the room holds `newestId` and the device's mark for it is stored. */
	#syncRoom(roomId: string, newestId: string): Promise<boolean> {
		const connection = new RoomConnection(roomId, this.#user, { background: true });
		this.#current = connection;
		const deadline = Date.now() + INBOX_ROOM_TIMEOUT_MS;
		return new Promise<boolean>((resolve) => {
			const check = (): void => {
				const holdsNewest = connection.synced && connection.messages.some((m) => m.id === newestId);
				const markStored = connection.delivered.get(this.#user.id) === connection.messages.at(-1)?.id && connection.localWritesDurable;
				const done = holdsNewest && markStored;
				if (done || connection.stopped || this.#stopped || Date.now() > deadline) {
					connection.destroy();
					if (connection.stopped === 'deleted') void forgetDeletedRoom(this.#user.id, roomId);
					if (this.#current === connection) this.#current = null;
					resolve(done);
					return;
				}
				setTimeout(check, INBOX_CHECK_INTERVAL_MS);
			};
			check();
		});
	}
}
