/**
 * What the web app's request handlers need, created once by the composition root (boot.ts) and
 * handed to the SvelteKit bundle through a global slot: the bundle and the relay run in one
 * process and must share one embedded database.
 */
import type { Bus } from './bus/bus';
import type { Config } from './config';
import type { Database } from './db/database';
import type { HistoryStore } from './history/history-store';
import type { PresenceStore } from './presence/presence';
import type { PurgeJob } from './purge';
import type { RelayTokenSigner } from './relay-token';

export interface Services {
	config: Config;
	db: Database;
	bus: Bus;
	presence: PresenceStore;
	history: HistoryStore;
	tokens: RelayTokenSigner;
	/** Erases deleted rooms' history in the background. */
	purge: PurgeJob;
	/** The relay URL browsers and bots must use (PUBLIC_RELAY_URL, or the bound relay port). */
	relayUrl: string;
}

const SLOT = Symbol.for('tunnel-chat.services');
type Slot = { [SLOT]?: Services | Promise<Services> };

export function setServices(services: Services | Promise<Services> | undefined): void {
	(globalThis as Slot)[SLOT] = services;
}

export async function getServices(): Promise<Services> {
	const services = (globalThis as Slot)[SLOT];
	if (!services) throw new Error('services are not started: run the app through src/main.ts');
	return services;
}
