/**
 * The relay's wire as the browser sees it (docs/protocol.md): the extension messages this client
 * opts into, and the close codes that end a connection for good.
 */
import * as decoding from 'lib0/decoding';

import { CloseCode as RelayCloseCode, EXTENSIONS_PARAM, EXTENSIONS_VERSION, MessageType as RelayMessageType } from '$lib/shared/relay-wire';

export { RelayCloseCode, RelayMessageType };

/** Query parameters that opt into the extension messages (`durable`, `rejected`). */
export const RELAY_EXTENSIONS_PARAMS: Readonly<Record<string, string>> = { [EXTENSIONS_PARAM]: EXTENSIONS_VERSION };

/** Why a room's connection stopped for good (no more retries). */
export type StopReason = 'signed_out' | 'removed' | 'deleted' | 'refused' | 'too_many_errors' | 'too_large' | 'malformed';

const STOP_FOR_CLOSE_CODE: ReadonlyMap<number, StopReason> = new Map([
	[RelayCloseCode.unauthorized, 'signed_out'],
	[RelayCloseCode.forbidden, 'removed'],
	[RelayCloseCode.roomDeleted, 'deleted'],
	[RelayCloseCode.rejectedUpdate, 'refused'],
	[RelayCloseCode.tooManyErrors, 'too_many_errors'],
	[RelayCloseCode.tooLarge, 'too_large'],
	[RelayCloseCode.malformed, 'malformed']
]);

/**
 * The terminal reason behind a close code, or null when reconnecting may help (1001, 1006, …;
 * 4410, the room's document moved to a new epoch, is handled by the room connection).
 */
export function stopReasonForClose(code: number): StopReason | null {
	return STOP_FOR_CLOSE_CODE.get(code) ?? null;
}

/** What the user is told when a room's connection stops. */
export function describeStop(reason: StopReason): string {
	switch (reason) {
		case 'signed_out':
			return 'Your session has ended. Sign in again to keep syncing.';
		case 'removed':
			return 'You are no longer a member of this room.';
		case 'deleted':
			return 'This group was deleted.';
		case 'refused':
			return 'The server refused a change from this device. Reload the page to try again.';
		case 'too_many_errors':
			return 'The server stopped syncing this room after too many refused changes. Reload the page to try again.';
		case 'too_large':
			return 'This device sent more than the server accepts at once. Reload the page to try again.';
		case 'malformed':
			return 'The server could not understand this device. Reload the page to try again.';
	}
}

/** Reads a `durable` frame's body (the type was already read): client id → next clock. */
export function readDurableFrame(decoder: decoding.Decoder): Map<number, number> {
	const count = decoding.readVarUint(decoder);
	const clocks = new Map<number, number>();
	for (let i = 0; i < count; i += 1) {
		const client = decoding.readVarUint(decoder);
		clocks.set(client, decoding.readVarUint(decoder));
	}
	return clocks;
}

/**
 * `rejected` codes that a fresh sync repairs: the update arrived before one it builds on (another
 * tab's, relayed here), or the socket sent more updates than the relay's rate allows.
 */
export const RELAY_RESYNC_REJECTIONS: ReadonlySet<string> = new Set(['missing_dependency', 'rate_limited']);

export interface Rejection {
	code: string;
	detail: string;
}

/** Reads a `rejected` frame's body (the type was already read). */
export function readRejectedFrame(decoder: decoding.Decoder): Rejection {
	const code = decoding.readVarString(decoder);
	return { code, detail: decoding.readVarString(decoder) };
}
