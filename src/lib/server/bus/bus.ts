/**
 * Cross-instance messaging. The in-process bus serves one machine; Redis links several relays.
 * Delivery is at most once (Redis pub/sub): it speeds things up, and nothing relies on it for
 * catch-up — a client that missed a message gets it from the durable store on its next sync.
 */
export type BusHandler = (payload: Uint8Array) => void;

export interface Bus {
	readonly kind: 'memory' | 'redis';
	/** Identifies this process on the bus, so handlers can skip their own echoes. */
	readonly instanceId: string;
	publish(channel: string, payload: Uint8Array): Promise<void>;
	/** Resolves once the subscription is active; returns the function that removes it. */
	subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>>;
	close(): Promise<void>;
}
