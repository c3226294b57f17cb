/**
 * Who is signed in, for the root layout's load. On the server (SSR) it asks `/api/me` through
 * SvelteKit's internal fetch, so signed-out visitors are redirected before any HTML is sent. In
 * the browser the same load runs without a server behind it when the service worker served the
 * app shell offline: then the device's last known account stands in until the network answers.
 */
import { browser } from '$app/environment';
import { error } from '@sveltejs/kit';
import type { User } from '$lib/shared/api-types';
import { cacheUser, forgetCachedUser, readCachedUser } from './device-store';

/**
 * With a known account on the device, a slow network may delay opening the app this long at most;
 * a session that has really ended is caught by the next API call (401 → sign in again).
 */
const ME_NETWORK_WAIT_MS = 2_500;

type Fetch = typeof fetch;

function parseUser(body: unknown): User | null {
	const user = (body as { user?: unknown } | null)?.user;
	if (typeof user !== 'object' || user === null) return null;
	const u = user as Record<string, unknown>;
	if (typeof u.id !== 'string' || typeof u.username !== 'string' || typeof u.displayName !== 'string') return null;
	return { id: u.id, username: u.username, displayName: u.displayName };
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => resolve('timeout'), ms);
		work.then(
			(value) => {
				clearTimeout(timer);
				resolve(value);
			},
			(reason: unknown) => {
				clearTimeout(timer);
				reject(reason);
			}
		);
	});
}

/** The signed-in user, or null when signed out (or unknown and unreachable). */
export async function resolveSignedInUser(fetchFn: Fetch): Promise<User | null> {
	const cached = browser ? readCachedUser() : null;
	let response: Response | 'timeout';
	try {
		const request = fetchFn('/api/me', { headers: { accept: 'application/json' } });
		response = cached ? await withDeadline(request, ME_NETWORK_WAIT_MS) : await request;
	} catch (reason) {
		// No network (offline, or the service worker's shell with the server gone).
		if (!browser) throw reason;
		return cached;
	}
	if (response === 'timeout') return cached;
	// Read in every case: SvelteKit inlines a server-side answer into the page only once its body
	// was read, and hydration then reuses it instead of asking again.
	const body: unknown = await response.json().catch(() => null);
	if (response.status === 401) {
		if (browser) forgetCachedUser();
		return null;
	}
	if (!response.ok) {
		if (browser) return cached;
		error(response.status === 503 ? 503 : 500, { code: 'session_unavailable', message: 'Could not check the session' });
	}
	const user = parseUser(body);
	if (!user) error(500, { code: 'session_unavailable', message: 'Unexpected answer from /api/me' });
	if (browser) cacheUser(user);
	return user;
}
