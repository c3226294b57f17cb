import { sveltekit } from '@sveltejs/kit/vite';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * `npm run dev`: starts the stores and the relay inside Vite's dev server, as src/main.ts does
 * for `npm start`, so the app's routes find their services.
 */
function chatServicesInDev(): Plugin {
	return {
		name: 'chat-services-in-dev',
		apply: 'serve',
		async configureServer(server) {
			if (process.env.VITEST) return;
			// As in src/main.ts: the pinned AWS SDK supports Node 20; its warning concerns 2027 releases.
			process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
			const { readConfig, withBoundAppPort } = await server.ssrLoadModule('/src/lib/server/config.ts');
			const { startChat } = await server.ssrLoadModule('/src/lib/server/boot.ts');
			const { setServices } = await server.ssrLoadModule('/src/lib/server/services.ts');
			const config = withBoundAppPort(readConfig(), server.config.server.port ?? 5173);
			const chat = await startChat(config);
			setServices(chat.services);
			server.httpServer?.once('close', () => void chat.close());
			console.log(`Relay: ${chat.services.relayUrl}`);
		}
	};
}

export default defineConfig({
	plugins: [sveltekit(), chatServicesInDev()],
	test: {
		environment: 'node',
		testTimeout: 30_000,
		hookTimeout: 60_000,
		// Integration and browser tests start real servers; two cores gain nothing from more workers.
		maxWorkers: 2,
		fileParallelism: true,
		projects: [
			{
				extends: true,
				test: { name: 'suite', include: ['tests/**/*.test.ts'], exclude: ['tests/**/*.alone.test.ts'] }
			},
			{
				// Timing-sensitive tests (the relay fuzz run measures its longest frame and another
				// room's latency) run after the rest, one file at a time, with the cores to themselves.
				extends: true,
				test: { name: 'alone', include: ['tests/**/*.alone.test.ts'], sequence: { groupOrder: 1 }, fileParallelism: false }
			}
		]
	}
});
