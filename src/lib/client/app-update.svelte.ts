/**
 * "New version available — Reload": watches the service worker registration (SvelteKit registers
 * `service-worker.js` itself) for a new worker that has installed and waits behind the running
 * one. Reloading asks it to take over (`skipWaiting`), then reloads the page once it controls it,
 * so the page and the worker always come from the same build.
 */

/** Also look for a new version this often while the app stays open. */
const UPDATE_CHECK_INTERVAL_MS = 30 * 60_000;
/**
 * A first install fails as a whole when one file fails to precache (the network dropped, the
 * server was busy), and the browser would try again only at the next navigation: the page tries
 * again itself after this long, doubling up to INSTALL_RETRY_MAX_MS.
 */
const INSTALL_RETRY_MIN_MS = 5_000;
const INSTALL_RETRY_MAX_MS = 5 * 60_000;
/** Where SvelteKit serves the worker (registered by its own start-up script, on `load`). */
const SERVICE_WORKER_URL = '/service-worker.js';

export const SKIP_WAITING_MESSAGE = 'skip-waiting';
/** Asks the active worker to control this page (src/service-worker.ts). */
export const CLAIM_MESSAGE = 'claim';

export class AppUpdate {
	/** True when a new version is installed and waiting. */
	available = $state(false);

	#registration: ServiceWorkerRegistration | null = null;
	#reloading = false;
	#stopped = false;
	#installRetry: ReturnType<typeof setTimeout> | null = null;

	/** Starts watching; returns the stop function. */
	start(): () => void {
		if (!('serviceWorker' in navigator)) return () => {};
		const container = navigator.serviceWorker;
		const onControllerChange = (): void => {
			// Only a reload the user asked for; a first install also changes the controller.
			if (this.#reloading) location.reload();
		};
		container.addEventListener('controllerchange', onControllerChange);
		const timer = setInterval(() => {
			// Offline this fails; the next interval (or the next navigation) tries again.
			this.#registration?.update().catch((error: unknown) => console.warn('Checking for a new version failed', error));
		}, UPDATE_CHECK_INTERVAL_MS);
		this.#retryFailedInstall(container, INSTALL_RETRY_MIN_MS);
		void container.ready.then((registration) => {
			if (this.#stopped) return;
			this.#registration = registration;
			// A page whose navigation began before the first install activated stays uncontrolled
			// (offline it would not reload) until the next navigation, unless the worker claims it.
			if (!container.controller) registration.active?.postMessage({ type: CLAIM_MESSAGE });
			if (registration.waiting && container.controller) this.available = true;
			registration.addEventListener('updatefound', () => this.#track(registration.installing));
			this.#track(registration.installing);
		});
		return () => {
			this.#stopped = true;
			clearInterval(timer);
			if (this.#installRetry) clearTimeout(this.#installRetry);
			container.removeEventListener('controllerchange', onControllerChange);
		};
	}

	/** Activates the waiting worker and reloads into the new version. */
	reload(): void {
		const waiting = this.#registration?.waiting;
		if (!waiting) return location.reload();
		this.#reloading = true;
		waiting.postMessage({ type: SKIP_WAITING_MESSAGE });
	}

	/** Until a worker is active: registers again whenever the install under way fails. */
	#retryFailedInstall(container: ServiceWorkerContainer, delayMs: number): void {
		this.#installRetry = setTimeout(async () => {
			this.#installRetry = null;
			if (this.#stopped) return;
			try {
				const current = await container.getRegistration();
				if (current?.active) return;
				const pending = current?.installing ?? current?.waiting;
				if (pending && (await settledState(pending)) !== 'redundant') return;
				// Nothing on its way (never registered, or its install failed): register again.
				const registration = await container.register(SERVICE_WORKER_URL, { type: import.meta.env.DEV ? 'module' : 'classic' });
				const next = registration.installing ?? registration.waiting ?? registration.active;
				if (next && (await settledState(next)) !== 'redundant') return;
			} catch (error) {
				console.warn('Installing the offline app failed; trying again', error);
			}
			if (!this.#stopped) this.#retryFailedInstall(container, Math.min(delayMs * 2, INSTALL_RETRY_MAX_MS));
		}, delayMs);
	}

	#track(worker: ServiceWorker | null): void {
		if (!worker) return;
		worker.addEventListener('statechange', () => {
			// With no controller this is the first install, not an update.
			if (worker.state === 'installed' && navigator.serviceWorker.controller && !this.#stopped) this.available = true;
		});
	}
}

/** Resolves with the worker's state once it is past installing: 'installed', 'activated', or 'redundant'. */
function settledState(worker: ServiceWorker): Promise<ServiceWorkerState> {
	return new Promise((resolve) => {
		const check = (): void => {
			if (worker.state === 'installing') return;
			worker.removeEventListener('statechange', check);
			resolve(worker.state);
		};
		worker.addEventListener('statechange', check);
		check();
	});
}
