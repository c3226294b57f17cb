/**
 * Who is online: a user is online while at least one relay connection of theirs is open on any
 * instance. Instances renew their claims; a crashed instance's claims expire after PRESENCE_TTL_MS.
 */
export const PRESENCE_TTL_MS = 30_000;
export const PRESENCE_RENEW_MS = 10_000;

export interface PresenceStore {
	readonly kind: 'memory' | 'redis';
	/** Records that this instance holds `count` (>= 0) open connections of the user. */
	setConnections(userId: string, count: number): Promise<void>;
	/** The subset of `userIds` online on any instance. */
	onlineUsers(userIds: string[]): Promise<Set<string>>;
	close(): Promise<void>;
}
