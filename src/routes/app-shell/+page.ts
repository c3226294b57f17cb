import { redirect } from '@sveltejs/kit';
import type { PageLoad } from './$types';

/**
 * The app shell the service worker keeps for offline navigation (docs/architecture.md,
 * "Offline"). Rendered without SSR, its HTML holds no user data and boots the client router at
 * whatever URL it is served for, so one cached copy opens every page. Visited directly, it has
 * nothing to show.
 */
export const ssr = false;

export const load: PageLoad = () => {
	redirect(307, '/');
};
