import adapter from '@sveltejs/adapter-node';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	kit: {
		adapter: adapter({ out: 'build', precompress: true }),
		// hooks.server.ts checks Origin / Sec-Fetch-Site on every state-changing request (JSON
		// included) and answers in the API's JSON error shape; SvelteKit's own check covers form
		// posts only and answers in plain text, so it is handed over to the hook.
		csrf: { trustedOrigins: ['*'] },
		// The service worker serves one cached app shell for every page when offline
		// (docs/architecture.md, "Offline"); its asset URLs must not depend on the page's depth.
		paths: { relative: false },
		csp: {
			mode: 'hash',
			directives: {
				'default-src': ['self'],
				'script-src': ['self'],
				'style-src': ['self', 'unsafe-inline'],
				'img-src': ['self', 'data:', 'blob:'],
				'connect-src': ['self', 'ws:', 'wss:'],
				'manifest-src': ['self'],
				'worker-src': ['self'],
				'object-src': ['none'],
				'base-uri': ['self'],
				'form-action': ['self'],
				'frame-ancestors': ['none']
			}
		}
	}
};

export default config;
