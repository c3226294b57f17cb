/**
 * In-process presence: the embedded default when REDIS_URL is unset. It keeps the Redis design's
 * semantics (claims per instance that expire unless renewed), so one conformance suite covers
 * both, and several instances may share one hub to stand for several relays.
 */
import { randomUUID } from 'node:crypto';
import { PRESENCE_RENEW_MS, PRESENCE_TTL_MS, type PresenceStore } from './presence';

/** Claims by user, then by instance id: the time (ms since the epoch) each claim expires. */
export interface MemoryPresenceHub {
	readonly claims: Map<string, Map<string, number>>;
}

export function createMemoryPresenceHub(): MemoryPresenceHub {
	return { claims: new Map() };
}

export interface MemoryPresenceOptions {
	instanceId?: string;
	/** How long a claim lives without renewal. */
	ttlMs?: number;
	/** How often this instance renews its claims; keep well under ttlMs. */
	renewMs?: number;
}

export class MemoryPresence implements PresenceStore {
	readonly kind = 'memory' as const;
	readonly instanceId: string;
	private readonly hub: MemoryPresenceHub;
	private readonly ttlMs: number;
	private readonly held = new Set<string>();
	private readonly renewTimer: NodeJS.Timeout;
	private closed = false;

	constructor(hub: MemoryPresenceHub = createMemoryPresenceHub(), options: MemoryPresenceOptions = {}) {
		this.hub = hub;
		this.instanceId = options.instanceId ?? randomUUID();
		this.ttlMs = requirePositiveMs(options.ttlMs ?? PRESENCE_TTL_MS, 'ttlMs');
		const renewMs = requirePositiveMs(options.renewMs ?? PRESENCE_RENEW_MS, 'renewMs');
		this.renewTimer = setInterval(() => this.renew(), renewMs);
		// Presence must never keep a process alive that has nothing else to do.
		this.renewTimer.unref();
	}

	async setConnections(userId: string, count: number): Promise<void> {
		requireConnectionCount(count);
		this.assertOpen();
		if (count > 0) {
			this.held.add(userId);
			this.claim(userId, Date.now() + this.ttlMs);
		} else {
			this.held.delete(userId);
			this.release(userId);
		}
	}

	async onlineUsers(userIds: string[]): Promise<Set<string>> {
		this.assertOpen();
		const now = Date.now();
		const online = new Set<string>();
		for (const userId of userIds) if (this.isOnline(userId, now)) online.add(userId);
		return online;
	}

	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		clearInterval(this.renewTimer);
		for (const userId of this.held) this.release(userId);
		this.held.clear();
	}

	private renew(): void {
		const expiresAt = Date.now() + this.ttlMs;
		for (const userId of this.held) this.claim(userId, expiresAt);
	}

	private claim(userId: string, expiresAt: number): void {
		let instances = this.hub.claims.get(userId);
		if (instances === undefined) {
			instances = new Map();
			this.hub.claims.set(userId, instances);
		}
		instances.set(this.instanceId, expiresAt);
	}

	private release(userId: string): void {
		const instances = this.hub.claims.get(userId);
		if (instances === undefined) return;
		instances.delete(this.instanceId);
		if (instances.size === 0) this.hub.claims.delete(userId);
	}

	/** Drops expired claims on the way, as Redis drops expired keys. */
	private isOnline(userId: string, now: number): boolean {
		const instances = this.hub.claims.get(userId);
		if (instances === undefined) return false;
		for (const [instanceId, expiresAt] of instances) {
			if (expiresAt <= now) instances.delete(instanceId);
		}
		if (instances.size === 0) this.hub.claims.delete(userId);
		return instances.size > 0;
	}

	private assertOpen(): void {
		if (this.closed) throw new Error(`MemoryPresence ${this.instanceId} is closed`);
	}
}

export function requireConnectionCount(count: number): void {
	if (!Number.isSafeInteger(count) || count < 0) {
		throw new RangeError(`connection count must be a non-negative integer, got ${count}`);
	}
}

export function requirePositiveMs(value: number, name: string): number {
	if (!Number.isSafeInteger(value) || value <= 0) {
		throw new RangeError(`${name} must be a positive integer of milliseconds, got ${value}`);
	}
	return value;
}
