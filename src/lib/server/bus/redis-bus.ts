/**
 * The Redis bus: links relay instances when REDIS_URL is set. Two connections, because a Redis
 * connection in subscriber mode can issue no other commands. Payloads travel as raw bytes
 * (`messageBuffer`), never through a string, so any byte sequence arrives intact.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Bus, BusHandler } from './bus';
import type { BusErrorReporter } from './memory-bus';
import { quitConnection } from '../redis-connection';

export interface RedisBusOptions {
	url: string;
	instanceId?: string;
	/** Where connection errors and throwing handlers are reported. */
	onError?: BusErrorReporter;
}

interface Subscription {
	readonly handler: BusHandler;
}

interface ChannelEntry {
	readonly subscriptions: Set<Subscription>;
	/** Settles when Redis has confirmed the SUBSCRIBE for this channel. */
	readonly ready: Promise<void>;
}

function logBusError(error: unknown, context: string): void {
	console.error(`[bus] ${context}:`, error);
}

export class RedisBus implements Bus {
	readonly kind = 'redis' as const;
	readonly instanceId: string;
	private readonly publisher: Redis;
	private readonly subscriber: Redis;
	private readonly reportError: BusErrorReporter;
	private readonly channels = new Map<string, ChannelEntry>();
	private readonly subscriberReady: Promise<void>;
	private closing: Promise<void> | null = null;

	constructor(options: RedisBusOptions) {
		this.instanceId = options.instanceId ?? randomUUID();
		this.reportError = options.onError ?? logBusError;
		this.publisher = new Redis(options.url, { connectionName: `bus-pub-${this.instanceId}` });
		this.subscriber = new Redis(options.url, { connectionName: `bus-sub-${this.instanceId}`, disableClientInfo: true });
		// The first SUBSCRIBE waits for the connection to be ready: sent while ioredis is still
		// naming the connection and running its ready check, it put the connection in subscriber
		// mode under them, Redis refused those commands, and the subscription could be lost
		// (ioredis issue 2037).
		this.subscriberReady = new Promise<void>((resolve) => {
			if (this.subscriber.status === 'ready') resolve();
			else this.subscriber.once('ready', () => resolve());
		});
		// Without a listener ioredis prints "Unhandled error event"; it keeps reconnecting either way.
		this.publisher.on('error', (error: unknown) => this.reportError(error, 'publisher connection'));
		this.subscriber.on('error', (error: unknown) => this.reportError(error, 'subscriber connection'));
		this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) =>
			this.dispatch(channel.toString(), message)
		);
	}

	async publish(channel: string, payload: Uint8Array): Promise<void> {
		this.assertOpen();
		// A copy: while offline, ioredis queues the command holding its arguments, and the caller
		// may reuse its buffer as soon as this returns.
		await this.publisher.publish(channel, Buffer.from(payload));
	}

	async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
		this.assertOpen();
		const subscription: Subscription = { handler };
		let entry = this.channels.get(channel);
		if (entry === undefined) {
			const ready = this.subscriberReady.then(() => this.subscriber.subscribe(channel)).then(() => undefined);
			entry = { subscriptions: new Set(), ready };
			this.channels.set(channel, entry);
		}
		entry.subscriptions.add(subscription);
		try {
			await entry.ready;
		} catch (error) {
			this.forget(channel, entry, subscription);
			throw error;
		}
		const subscribed = entry;
		return async () => {
			if (this.forget(channel, subscribed, subscription) && this.closing === null) {
				await this.subscriber.unsubscribe(channel);
			}
		};
	}

	close(): Promise<void> {
		this.closing ??= this.shutdown();
		return this.closing;
	}

	private async shutdown(): Promise<void> {
		this.channels.clear();
		await Promise.all([
			quitConnection(this.publisher, this.reportError),
			quitConnection(this.subscriber, this.reportError)
		]);
	}

	/** Removes one subscription; true when it was the channel's last, so Redis should unsubscribe. */
	private forget(channel: string, entry: ChannelEntry, subscription: Subscription): boolean {
		if (!entry.subscriptions.delete(subscription)) return false;
		if (entry.subscriptions.size > 0 || this.channels.get(channel) !== entry) return false;
		this.channels.delete(channel);
		return true;
	}

	private dispatch(channel: string, message: Buffer): void {
		const entry = this.channels.get(channel);
		if (entry === undefined) return;
		for (const subscription of [...entry.subscriptions]) {
			// Each handler owns its bytes: ioredis hands out slices of its read buffer.
			const bytes = new Uint8Array(message);
			try {
				subscription.handler(bytes);
			} catch (error) {
				this.reportError(error, `handler for channel "${channel}" threw`);
			}
		}
	}

	private assertOpen(): void {
		if (this.closing !== null) throw new Error(`RedisBus ${this.instanceId} is closed`);
	}
}

