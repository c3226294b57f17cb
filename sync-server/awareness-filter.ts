/**
 * Awareness you can believe: the relay rewrites each incoming awareness update so that a socket
 * only publishes or removes entries for client ids it owns, `user` is always the socket's
 * account, and no state exceeds AWARENESS_STATE_MAX_BYTES. (Stock awareness lets any sender
 * overwrite or remove anyone's entry.)
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import type { Awareness } from 'y-protocols/awareness';
import type { Connection } from './connection';
import { AWARENESS_STATE_MAX_BYTES } from './protocol';

/** The update to apply, or null when nothing in it is allowed. Throws on malformed bytes. */
export function filterAwarenessUpdate(
	update: Uint8Array,
	conn: Connection,
	awareness: Awareness,
	docClientOwners: Map<number, string>
): Uint8Array | null {
	const decoder = decoding.createDecoder(update);
	const count = decoding.readVarUint(decoder);
	const encoder = encoding.createEncoder();
	const kept: Array<{ client: number; clock: number; state: string }> = [];
	for (let i = 0; i < count; i++) {
		const client = decoding.readVarUint(decoder);
		const clock = decoding.readVarUint(decoder);
		const raw = decoding.readVarString(decoder);
		if (!mayUse(conn, client, awareness, docClientOwners)) continue;
		const state = stampState(raw, conn);
		if (state === undefined) continue;
		conn.awarenessClients.add(client);
		kept.push({ client, clock, state });
	}
	if (kept.length === 0) return null;
	encoding.writeVarUint(encoder, kept.length);
	for (const entry of kept) {
		encoding.writeVarUint(encoder, entry.client);
		encoding.writeVarUint(encoder, entry.clock);
		encoding.writeVarString(encoder, entry.state);
	}
	return encoding.toUint8Array(encoder);
}

function mayUse(conn: Connection, client: number, awareness: Awareness, docClientOwners: Map<number, string>): boolean {
	if (conn.awarenessClients.has(client)) return true;
	const docOwner = docClientOwners.get(client);
	if (docOwner !== undefined && docOwner !== conn.userId) return false;
	// A client id already live in the room belongs to whoever published it first.
	return !awareness.getStates().has(client);
}

/** The state with `user` set from the account; null for a removal; undefined when refused. */
function stampState(raw: string, conn: Connection): string | undefined {
	if (raw.length > AWARENESS_STATE_MAX_BYTES) return undefined;
	let state: unknown;
	try {
		state = JSON.parse(raw);
	} catch {
		return undefined;
	}
	if (state === null) return 'null';
	if (typeof state !== 'object' || Array.isArray(state)) return undefined;
	const stamped = { ...(state as Record<string, unknown>), user: { id: conn.userId, name: conn.identity.userName } };
	return JSON.stringify(stamped);
}
