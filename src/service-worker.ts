/// <reference types="@sveltejs/kit" />
/// <reference no-default-lib="true"/>
/// <reference lib="esnext" />
/// <reference lib="webworker" />
/**
 * The app's service worker (docs/architecture.md, "Offline"):
 *
 * - precaches this build's files, the static files and the app shell (`/app-shell`, a page
 *   rendered without SSR: HTML with no user data that boots the client router at any URL);
 * - serves precached files from the cache;
 * - page navigations go to the network first (pages are rendered per user and never cached);
 *   when the network fails, is too slow, or the server answers 5xx, the cached shell is served
 *   and the app boots from the device's data;
 * - never touches `/api/*` or anything not precached (the app keeps its own data in IndexedDB
 *   and localStorage, per account, so sign-out can remove it);
 * - a new version installs and waits until the page asks it to take over ("New version
 *   available — Reload", `skip-waiting`), so a page never runs against another build's worker.
 */
import { build, files, version } from '$service-worker';

const sw = self as unknown as ServiceWorkerGlobalScope;

const CACHE_NAME = `tunnel-${version}`;
/** The page rendered without SSR that boots the client at whatever URL it is served for. */
const SHELL_PATH = '/app-shell';
/** A navigation that has not answered by then gets the shell (a train in a tunnel: "lie-fi"). */
const NAVIGATION_TIMEOUT_MS = 4_000;
/** Posted by the page (src/lib/client/app-update.svelte.ts) to activate a waiting worker. */
const SKIP_WAITING_MESSAGE = 'skip-waiting';
/**
 * Posted by a page this worker does not control yet: one whose navigation started before the
 * first install finished activating, which the claim on activation does not reach.
 */
const CLAIM_MESSAGE = 'claim';

const PRECACHED_PATHS = new Set([...build, ...files]);

sw.addEventListener('install', (event) => {
	event.waitUntil(
		caches.open(CACHE_NAME).then((cache) => cache.addAll([...PRECACHED_PATHS, SHELL_PATH]))
	);
});

sw.addEventListener('activate', (event) => {
	event.waitUntil(
		(async () => {
			for (const key of await caches.keys()) {
				if (key !== CACHE_NAME) await caches.delete(key);
			}
			// Control the page that installed this first version at once, so it works offline
			// without a reload. (Updates wait for the page: see `skip-waiting`.)
			await sw.clients.claim();
		})()
	);
});

sw.addEventListener('message', (event) => {
	const type = (event.data as { type?: unknown } | null)?.type;
	if (type === SKIP_WAITING_MESSAGE) void sw.skipWaiting();
	else if (type === CLAIM_MESSAGE) event.waitUntil(sw.clients.claim());
});

sw.addEventListener('fetch', (event) => {
	const { request } = event;
	if (request.method !== 'GET') return;
	const url = new URL(request.url);
	if (url.origin !== sw.location.origin || url.pathname.startsWith('/api/')) return;
	if (request.mode === 'navigate') {
		event.respondWith(navigate(request));
	} else if (PRECACHED_PATHS.has(url.pathname)) {
		event.respondWith(fromCache(request));
	}
});

async function fromCache(request: Request): Promise<Response> {
	const cache = await caches.open(CACHE_NAME);
	return (await cache.match(request)) ?? fetch(request);
}

async function navigate(request: Request): Promise<Response> {
	const abort = new AbortController();
	const timer = setTimeout(() => abort.abort(), NAVIGATION_TIMEOUT_MS);
	// null: no network, or too slow.
	const response = await fetch(request, { signal: abort.signal }).then(
		(answer) => answer,
		() => null
	);
	clearTimeout(timer);
	if (response && response.status < 500) return response;
	const shell = await (await caches.open(CACHE_NAME)).match(SHELL_PATH);
	return shell ?? response ?? Response.error();
}
