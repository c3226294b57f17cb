/**
 * A deleted room leaves the device (issue 4): when the relay closes a socket with 4404
 * (roomDeleted), the viewer deletes the group, or the API answers 404 `room_deleted` (a device
 * that was offline when the group was deleted), this tab closes its connections to the room and
 * removes its document, cached history pages and cached room-list entry; every tab of the
 * account hears about it (BroadcastChannel) so it drops the room from its list and leaves it if
 * it is open.
 */
import { forgetRoomData } from './device-store';
import { HistoryCache } from './history-cache';
import { closeRoomConnections } from './room-connection.svelte';

type RoomsMessage = { type: 'room-deleted'; roomId: string };

function roomsChannelName(userId: string): string {
	return `tunnel:${userId}:rooms`;
}

/** Listeners in this tab (a BroadcastChannel does not deliver to its own sender). */
const localListeners = new Set<(roomId: string) => void>();

/** Removals under way in this tab, so several signs of one deletion remove the room once. */
const forgetting = new Map<string, Promise<void>>();

/**
 * Removes the room from this device and tells every tab of the account. Called on the relay's
 * 4404 close, on the viewer deleting the group, and on a `room_deleted` answer from the API (the
 * device was away when the group was deleted).
 */
export function forgetDeletedRoom(userId: string, roomId: string): Promise<void> {
	const key = `${userId}:${roomId}`;
	let removal = forgetting.get(key);
	if (!removal) {
		removal = forget(userId, roomId).finally(() => forgetting.delete(key));
		forgetting.set(key, removal);
	}
	return removal;
}

async function forget(userId: string, roomId: string): Promise<void> {
	closeRoomConnections(roomId);
	for (const listener of localListeners) listener(roomId);
	if (typeof BroadcastChannel !== 'undefined') {
		const channel = new BroadcastChannel(roomsChannelName(userId));
		channel.postMessage({ type: 'room-deleted', roomId } satisfies RoomsMessage);
		channel.close();
	}
	await Promise.all([forgetRoomData(userId, roomId), HistoryCache.forUser(userId).forgetRoom(roomId)]);
}

/** Calls `onDeleted` when a room of the account is deleted in any tab; returns the unsubscribe function. */
export function watchRoomDeletions(userId: string, onDeleted: (roomId: string) => void): () => void {
	localListeners.add(onDeleted);
	const channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(roomsChannelName(userId));
	if (channel) {
		channel.onmessage = (event: MessageEvent<unknown>) => {
			const data = event.data as RoomsMessage | null;
			if (data?.type !== 'room-deleted' || typeof data.roomId !== 'string') return;
			closeRoomConnections(data.roomId);
			onDeleted(data.roomId);
		};
	}
	return () => {
		localListeners.delete(onDeleted);
		channel?.close();
	};
}
