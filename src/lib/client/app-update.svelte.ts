/**
 * "New version available — Reload": watches the service worker registration (SvelteKit registers
 * `service-worker.js` itself) for a new worker that has installed and waits behind the running
 * one. Reloading asks it to take over (`skipWaiting`), then reloads the page once it controls it,
 * so the page and the worker always come from the same build.
 */

/** Also look for a new version this often while the app stays open. */
const UPDATE_CHECK_INTERVAL_MS = 30 * 60_000;

export const SKIP_WAITING_MESSAGE = 'skip-waiting';

export class AppUpdate {
	/** True when a new version is installed and waiting. */
	available = $state(false);

	#registration: ServiceWorkerRegistration | null = null;
	#reloading = false;
	#stopped = false;

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
		void container.ready.then((registration) => {
			if (this.#stopped) return;
			this.#registration = registration;
			if (registration.waiting && container.controller) this.available = true;
			registration.addEventListener('updatefound', () => this.#track(registration.installing));
			this.#track(registration.installing);
		});
		return () => {
			this.#stopped = true;
			clearInterval(timer);
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

	#track(worker: ServiceWorker | null): void {
		if (!worker) return;
		worker.addEventListener('statechange', () => {
			// With no controller this is the first install, not an update.
			if (worker.state === 'installed' && navigator.serviceWorker.controller && !this.#stopped) this.available = true;
		});
	}
}
