/** The PGlite thread runs at a lower CPU priority than the relay's event loop; nothing else does. */
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKGROUND_NICE } from '../../src/lib/server/background-thread.js';
import { openPglite } from '../../src/lib/server/db/pglite';
import type { Database } from '../../src/lib/server/db/database';

/** thread id → nice value, for every thread of this process (Linux: field 19 of /proc/…/stat). */
function niceByThread(): Map<number, number> {
	const nice = new Map<number, number>();
	for (const tid of readdirSync('/proc/self/task')) {
		const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
		nice.set(Number(tid), Number(fields[16]));
	}
	return nice;
}

describe('background threads', () => {
	let db: Database | null = null;

	afterAll(async () => {
		await db?.close();
	});

	it('lower the PGlite thread\'s priority and leave the event loop\'s alone', async () => {
		expect(process.platform).toBe('linux'); // the only platform the relay ships on
		const before = niceByThread();
		db = await openPglite(null);
		expect(await db.query<{ one: number }>('select 1 as one')).toEqual([{ one: 1 }]);
		const after = niceByThread();
		const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === BACKGROUND_NICE);
		expect(lowered).toHaveLength(1);
		expect(after.get(process.pid)).toBe(before.get(process.pid));
		expect(after.get(process.pid)).not.toBe(BACKGROUND_NICE);
	});
});
