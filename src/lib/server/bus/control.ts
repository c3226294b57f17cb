/**
 * Control events between the web app and every relay instance, over the bus: membership and
 * session changes that must close sockets at once, wherever they are.
 */
import type { Bus } from './bus';

export const CONTROL_CHANNEL = 'control';

export type ControlEvent =
	| { type: 'member-removed'; roomId: string; userId: string }
	| { type: 'session-revoked'; sessionId: string }
	/** A room rolled over to `epoch`: instances holding an older one drop it. */
	| { type: 'room-moved'; roomId: string; epoch: number }
	/** An admin deleted the room: every socket of it closes with 4404. */
	| { type: 'room-deleted'; roomId: string };

export async function publishControl(bus: Bus, event: ControlEvent): Promise<void> {
	await bus.publish(CONTROL_CHANNEL, new TextEncoder().encode(JSON.stringify(event)));
}

export function parseControl(payload: Uint8Array): ControlEvent | null {
	try {
		const value = JSON.parse(new TextDecoder().decode(payload)) as ControlEvent;
		if (value.type === 'member-removed' && typeof value.roomId === 'string' && typeof value.userId === 'string') return value;
		if (value.type === 'session-revoked' && typeof value.sessionId === 'string') return value;
		if (value.type === 'room-moved' && typeof value.roomId === 'string' && Number.isSafeInteger(value.epoch)) return value;
		if (value.type === 'room-deleted' && typeof value.roomId === 'string') return value;
	} catch {
		return null;
	}
	return null;
}
