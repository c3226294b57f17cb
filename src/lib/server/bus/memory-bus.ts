/**
 * The in-process bus: the embedded default when REDIS_URL is unset. Several MemoryBus instances
 * may share one hub, standing for several relays on one Redis (the conformance suite does this).
 * It mirrors Redis where callers could notice: delivery is asynchronous, each handler gets its own
 * copy of the bytes, and nothing reaches a handler once its unsubscribe has been called.
 */
import { randomUUID } from 'node:crypto';
import type { Bus, BusHandler } from './bus';

export type BusErrorReporter = (error: unknown, context: string) => void;

interface Subscription {
	readonly handler: BusHandler;
	readonly reportError: BusErrorReporter;
	active: boolean;
}

/** The shared state several MemoryBus instances publish into: subscriptions by channel. */
export interface MemoryBusHub {
	readonly channels: Map<string, Set<Subscription>>;
}

export function createMemoryBusHub(): MemoryBusHub {
	return { channels: new Map() };
}

export interface MemoryBusOptions {
	instanceId?: string;
	/** Where a throwing handler is reported; a handler's failure never reaches the publisher. */
	onError?: BusErrorReporter;
}

function logBusError(error: unknown, context: string): void {
	console.error(`[bus] ${context}:`, error);
}

export class MemoryBus implements Bus {
	readonly kind = 'memory' as const;
	readonly instanceId: string;
	private readonly hub: MemoryBusHub;
	private readonly reportError: BusErrorReporter;
	private readonly own = new Map<Subscription, string>();
	private closed = false;

	constructor(hub: MemoryBusHub = createMemoryBusHub(), options: MemoryBusOptions = {}) {
		this.hub = hub;
		this.instanceId = options.instanceId ?? randomUUID();
		this.reportError = options.onError ?? logBusError;
	}

	async publish(channel: string, payload: Uint8Array): Promise<void> {
		this.assertOpen();
		const subscribers = this.hub.channels.get(channel);
		if (subscribers === undefined || subscribers.size === 0) return;
		// Snapshot now: like a Redis client, the publisher may reuse its buffer once publish returns.
		const bytes = payload.slice();
		const recipients = [...subscribers];
		queueMicrotask(() => {
			for (const subscription of recipients) deliver(subscription, channel, bytes);
		});
	}

	async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
		this.assertOpen();
		const subscription: Subscription = { handler, reportError: this.reportError, active: true };
		let subscribers = this.hub.channels.get(channel);
		if (subscribers === undefined) {
			subscribers = new Set();
			this.hub.channels.set(channel, subscribers);
		}
		subscribers.add(subscription);
		this.own.set(subscription, channel);
		return async () => this.remove(subscription);
	}

	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		for (const subscription of [...this.own.keys()]) this.remove(subscription);
	}

	private remove(subscription: Subscription): void {
		const channel = this.own.get(subscription);
		if (channel === undefined) return;
		this.own.delete(subscription);
		subscription.active = false;
		const subscribers = this.hub.channels.get(channel);
		if (subscribers === undefined) return;
		subscribers.delete(subscription);
		if (subscribers.size === 0) this.hub.channels.delete(channel);
	}

	private assertOpen(): void {
		if (this.closed) throw new Error(`MemoryBus ${this.instanceId} is closed`);
	}
}

function deliver(subscription: Subscription, channel: string, bytes: Uint8Array): void {
	// Checked at delivery time: an unsubscribe between publish and this microtask wins.
	if (!subscription.active) return;
	try {
		subscription.handler(bytes.slice());
	} catch (error) {
		subscription.reportError(error, `handler for channel "${channel}" threw`);
	}
}
