/**
 * The relay's `durable` clocks for one room, kept on the device so that a reload with no network
 * still shows which of the viewer's messages were stored — and never shows one as stored that the
 * relay has not confirmed. Clocks only grow, so merging is a per-client maximum; tabs of the same
 * account merge into one entry.
 */
import { durableKey, readJson, writeJson } from './device-store';

export type DurableClocks = ReadonlyMap<number, number>;

function isClockPair(value: unknown): value is [number, number] {
	return Array.isArray(value) && value.length === 2 && value.every((n) => Number.isSafeInteger(n) && n >= 0);
}

export function readDurableClocks(userId: string, roomId: string): Map<number, number> {
	const stored = readJson(durableKey(userId, roomId));
	return new Map(Array.isArray(stored) ? stored.filter(isClockPair) : []);
}

/** Per-client maximum of two clock maps; returns `a` itself when `b` adds nothing. */
export function mergeClocks(a: DurableClocks, b: DurableClocks): DurableClocks {
	let merged: Map<number, number> | null = null;
	for (const [client, clock] of b) {
		if ((a.get(client) ?? 0) >= clock) continue;
		merged ??= new Map(a);
		merged.set(client, clock);
	}
	return merged ?? a;
}

/**
 * Stores the clocks of the client ids in `clients` (the ones the viewer's messages were written
 * with: the relay's full vector names every writer of the room, which the device need not keep).
 */
export function saveDurableClocks(userId: string, roomId: string, clocks: DurableClocks, clients: Iterable<number>): void {
	const stored = readDurableClocks(userId, roomId);
	let changed = false;
	for (const client of clients) {
		const clock = clocks.get(client);
		if (clock === undefined || (stored.get(client) ?? 0) >= clock) continue;
		stored.set(client, clock);
		changed = true;
	}
	if (changed) writeJson(durableKey(userId, roomId), [...stored]);
}
