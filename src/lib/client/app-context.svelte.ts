/** What the signed-in shell shares with the pages inside it. */
import { getContext, setContext } from 'svelte';
import type { User } from '$lib/shared/api-types';
import type { RoomsStore } from './rooms.svelte';

export type AppDialog = 'new-chat' | 'new-group' | null;

export interface AppContext {
	readonly user: User;
	readonly rooms: RoomsStore;
	openDialog(dialog: Exclude<AppDialog, null>): void;
	/** Sends the visitor to sign in again, coming back here afterwards. */
	signInAgain(): void;
}

const KEY = Symbol('app');

export function setAppContext(context: AppContext): void {
	setContext(KEY, context);
}

export function getAppContext(): AppContext {
	const context = getContext<AppContext | undefined>(KEY);
	if (!context) throw new Error('getAppContext() is only available inside the signed-in shell');
	return context;
}

/** A clock for relative times ("5 min ago"); call during component setup. */
export function useNow(intervalMs = 30_000): { readonly current: number } {
	let now = $state(Date.now());
	$effect(() => {
		const timer = setInterval(() => (now = Date.now()), intervalMs);
		return () => clearInterval(timer);
	});
	return {
		get current() {
			return now;
		}
	};
}
