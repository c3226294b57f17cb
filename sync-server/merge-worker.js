// Merges Yjs updates on a thread of its own: merging a room's stored rows is the relay's largest
// single piece of CPU work (milliseconds for a few hundred updates, growing faster than their
// count), and on the relay's event loop it would hold up every socket meanwhile.
// Plain JavaScript, so the thread starts the same under `node --import tsx`, vitest and the build.
//
// Messages in: {id, updates: Uint8Array[]}. Messages out: {id, merged} or {id, error}.
import { parentPort } from 'node:worker_threads';
import * as Y from 'yjs';
import { lowerThreadPriority } from '../src/lib/server/background-thread.js';

// A merge only saves space: it runs on whatever CPU the relay's own thread leaves.
lowerThreadPriority();

parentPort.on('message', ({ id, updates }) => {
	try {
		const merged = Y.mergeUpdates(updates);
		parentPort.postMessage({ id, merged }, [merged.buffer]);
	} catch (error) {
		parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
	}
});
