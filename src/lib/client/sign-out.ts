/**
 * Signing out on this device: the server ends the session, every tab of the account closes its
 * rooms, and the account's data leaves the device (issue 3: "Signing out removes that account's
 * data from the device"). The tabs hear about it on a BroadcastChannel named after the account.
 */
import { ApiError, logout } from './api';
import { forgetAccountData } from './device-store';
import { clearDrafts } from './drafts';
import { HistoryCache } from './history-cache';
import { closeAllRoomConnections } from './room-connection.svelte';

type AccountMessage = { type: 'signed-out' };

function accountChannelName(userId: string): string {
	return `tunnel:${userId}:account`;
}

/**
 * Ends the session, then deletes the account's device data. Throws ApiError when the server could
 * not be told (offline): the session cookie would stay valid and the app would open signed in
 * with an empty device, so nothing is deleted and the user is asked to try again online.
 */
export async function signOut(userId: string): Promise<void> {
	try {
		await logout();
	} catch (error) {
		// 401: the session had already ended, which is what signing out wants.
		if (!(error instanceof ApiError && error.status === 401)) throw error;
	}
	if (typeof BroadcastChannel !== 'undefined') {
		const channel = new BroadcastChannel(accountChannelName(userId));
		channel.postMessage({ type: 'signed-out' } satisfies AccountMessage);
		channel.close();
	}
	closeAllRoomConnections();
	HistoryCache.closeAll();
	clearDrafts();
	await forgetAccountData(userId);
}

/** Calls `onSignedOut` when another tab signs this account out; returns the unsubscribe function. */
export function watchSignOutElsewhere(userId: string, onSignedOut: () => void): () => void {
	if (typeof BroadcastChannel === 'undefined') return () => {};
	const channel = new BroadcastChannel(accountChannelName(userId));
	channel.onmessage = (event: MessageEvent<unknown>) => {
		if ((event.data as AccountMessage | null)?.type !== 'signed-out') return;
		closeAllRoomConnections();
		HistoryCache.closeAll();
		clearDrafts();
		onSignedOut();
	};
	return () => channel.close();
}
