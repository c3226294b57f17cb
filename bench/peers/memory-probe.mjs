/**
 * Preloaded into a server under test for scenario 4 (`node --expose-gc --import <this file> …`),
 * changing nothing else: on the IPC message `{ type: 'memory' }` it runs full garbage
 * collections and answers with the process's memory afterwards. Sampling memory right after a
 * full GC removes garbage from both samples of a before/after pair, so the difference is what the
 * connections (or rooms) keep alive, not when V8 last happened to collect.
 *
 * Plain JavaScript: worker threads inherit the preload and may start before a TypeScript loader.
 * Worker threads (no IPC channel) collect their own heaps when the main thread asks over a
 * BroadcastChannel; their memory counts in RSS (heapKiB is the main thread's only).
 */
import { isMainThread } from 'node:worker_threads';

const gc = globalThis.gc;
/** Worker threads (PGlite's) collect too when asked: their isolates' garbage (PGlite's large startup buffers) is otherwise freed at no fixed time, tens of seconds later. */
const CHANNEL = 'bench-memory-probe';

if (!isMainThread && gc) {
	const channel = new BroadcastChannel(CHANNEL);
	channel.onmessage = (event) => {
		if (event.data !== 'gc') return;
		gc();
		setImmediate(() => {
			gc();
			channel.postMessage('collected');
		});
	};
	channel.unref();
}

if (isMainThread && process.send && gc) {
	const channel = new BroadcastChannel(CHANNEL);
	channel.unref();
	process.on('message', (message) => {
		if (message?.type !== 'memory') return;
		// Workers first (their answers, or 300 ms without one, end the wait), then this thread.
		let quiet;
		const done = () => {
			channel.onmessage = null;
			// Twice: weak callbacks and finalizers of the first collection free more in the second.
			gc();
			setImmediate(() => {
				gc();
				const m = process.memoryUsage();
				// heapKiB: JS heap in use + external (Buffers, ArrayBuffers) after the collection.
				process.send({ type: 'memory', rssKiB: Math.round(m.rss / 1024), heapKiB: Math.round((m.heapUsed + m.external) / 1024) });
			});
		};
		channel.onmessage = () => {
			clearTimeout(quiet);
			quiet = setTimeout(done, 50);
		};
		quiet = setTimeout(done, 300);
		channel.postMessage('gc');
	});
	// The channel must not keep a server alive that would otherwise exit (e.g. after SIGTERM).
	process.channel?.unref();
}
