// Lowers the calling thread's CPU priority: for the threads that do background work (PGlite's
// commits, merges of stored rows) beside the relay's event loop. Under contention for the cores
// the scheduler then runs the event loop first, so a commit or merge in progress delays the
// durable acknowledgement rather than the delivery of messages; on idle cores it changes nothing.
// Linux keeps a nice value per thread, addressed by the thread's own id, which /proc/thread-self
// names. Plain JavaScript, imported by the worker scripts. Elsewhere it does nothing.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Nice value of background threads: about a tenth of a normal thread's share when cores are contended. */
export const BACKGROUND_NICE = 10;

/** Does nothing where threads cannot be told apart (not Linux). */
export function lowerThreadPriority() {
	let tid;
	try {
		tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
	} catch {
		return;
	}
	if (Number.isInteger(tid) && tid > 0) setPriority(tid, BACKGROUND_NICE);
}
