/**
 * The PGlite thread and the embedded DynamoDB's thread run at a lower CPU priority than the
 * relay's event loop; nothing else does.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKGROUND_NICE } from '../../src/lib/server/background-thread.js';
import { openPglite } from '../../src/lib/server/db/pglite';
import type { Database } from '../../src/lib/server/db/database';
import { DynamoHistoryStore } from '../../src/lib/server/history/dynamo-history';
import { startEmbeddedDynamo } from '../../src/lib/server/history/embedded-dynamo';

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

	it('run the embedded DynamoDB on a thread of its own, at the lower priority, and it answers', async () => {
		const dir = await mkdtemp(path.join(tmpdir(), 'dynamo-thread-'));
		const before = niceByThread();
		const dynamo = await startEmbeddedDynamo(dir);
		try {
			const after = niceByThread();
			expect([...after].filter(([tid, nice]) => !before.has(tid) && nice === BACKGROUND_NICE)).toHaveLength(1);
			expect(after.get(process.pid)).toBe(before.get(process.pid));
			const history = new DynamoHistoryStore({ endpoint: dynamo.endpoint, region: 'local', table: 'thread-test' });
			await history.ensureTable();
			const entry = { key: '000000000000', message: { id: '01J00000000000000000000000', author: 'u1', ts: 1, kind: 'text' as const, text: 'hello' } };
			await history.putEntries('r1', [entry]);
			expect((await history.pageBefore('r1', null, 10)).entries.map((e) => e.message.text)).toEqual(['hello']);
			await history.close();
		} finally {
			await dynamo.close();
			await rm(dir, { recursive: true, force: true });
		}
	});
});
