import { redirect } from '@sveltejs/kit';
import { resolveSignedInUser } from '$lib/client/session';
import type { LayoutLoad } from './$types';

const PUBLIC_PATHS = new Set(['/login', '/signup']);

/**
 * Signed-out visitors go to /login (keeping where they wanted to go); signed-in ones skip it.
 *
 * A universal load, not a server one: during SSR it runs on the server (the redirect happens
 * before any HTML is sent), and in the browser it also runs when the service worker served the
 * app shell offline, where a `+layout.server.ts` would have no server to answer its data request
 * (docs/architecture.md, "Offline"). The path is read untracked so moving between rooms does
 * not ask the network who is signed in; sign-in and sign-out re-run it with `invalidateAll`.
 */
export const load: LayoutLoad = async ({ fetch, url, untrack }) => {
	const { pathname, search } = untrack(() => ({ pathname: url.pathname, search: url.search }));
	const user = await resolveSignedInUser(fetch);
	if (!user && !PUBLIC_PATHS.has(pathname)) {
		const next = pathname === '/' ? '' : `?next=${encodeURIComponent(pathname + search)}`;
		redirect(303, `/login${next}`);
	}
	if (user && PUBLIC_PATHS.has(pathname)) redirect(303, '/');
	return { user };
};
