import { redirect } from '@sveltejs/kit';
import type { LayoutServerLoad } from './$types';

const PUBLIC_PATHS = new Set(['/login', '/signup']);

/** Signed-out visitors go to /login (keeping where they wanted to go); signed-in ones skip it. */
export const load: LayoutServerLoad = async ({ locals, url }) => {
	const signedIn = locals.user !== null;
	if (!signedIn && !PUBLIC_PATHS.has(url.pathname)) {
		const next = url.pathname === '/' ? '' : `?next=${encodeURIComponent(url.pathname + url.search)}`;
		redirect(303, `/login${next}`);
	}
	if (signedIn && PUBLIC_PATHS.has(url.pathname)) redirect(303, '/');
	return { user: locals.user };
};
