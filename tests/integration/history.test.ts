import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { historyKey, type HistoryEntry } from '../../src/lib/server/history/history-store';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore, EMBEDDED_CREDENTIALS } from '../../src/lib/server/history/dynamo-history';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../src/lib/server/history/embedded-dynamo';
import { describeHistoryConformance } from '../conformance/history.conformance';

const REGION = 'us-east-1';
const TABLE = 'chat_history_test';

function entry(index: number): HistoryEntry {
	return {
		key: historyKey(index),
		message: { id: ulid(), author: 'user-1', ts: index, kind: 'text', text: `message ${index}` }
	};
}

describe('DynamoHistoryStore on embedded dynalite', () => {
	let dir: string;
	let dynamo: EmbeddedDynamo;

	beforeAll(async () => {
		dir = await mkdtemp(path.join(tmpdir(), 'history-'));
		dynamo = await startEmbeddedDynamo(dir);
	});

	afterAll(async () => {
		await dynamo?.close();
		await rm(dir, { recursive: true, force: true });
	});

	describeHistoryConformance('dynalite', async () => {
		const store = new DynamoHistoryStore({ endpoint: dynamo.endpoint, region: REGION, table: TABLE });
		await store.ensureTable();
		return store;
	});

	describe('stored form', () => {
		function open(itemBytesMax?: number): DynamoHistoryStore {
			return new DynamoHistoryStore({ endpoint: dynamo.endpoint, region: REGION, table: TABLE, itemBytesMax });
		}

		function texts(entries: HistoryEntry[]): string[] {
			return entries.map((e) => e.message.text);
		}

		it('keeps several messages to an item, and a message to an item when a run is too large', async () => {
			const [runs, singles] = [open(), open(200)];
			const [roomA, roomB] = [`runs-${ulid()}`, `singles-${ulid()}`];
			try {
				const entries = Array.from({ length: 40 }, (_, i) => entry(i));
				await runs.putEntries(roomA, entries);
				await singles.putEntries(roomB, entries);
				// Positions 0–31 and 32–39 are two items; above the budget, one per message.
				expect(await runs.purgeBatch(roomA, 100)).toBe(2);
				expect(await singles.purgeBatch(roomB, 100)).toBe(40);
			} finally {
				await Promise.all([runs.close(), singles.close()]);
			}
		});

		it('reads a run written over single items, and single items over a run, as the later write', async () => {
			const [runs, singles] = [open(), open(200)];
			const roomId = `mixed-${ulid()}`;
			try {
				const relabel = (label: string) => Array.from({ length: 40 }, (_, i) => ({ ...entry(i), message: { ...entry(i).message, text: `${label} ${i}` } }));
				await singles.putEntries(roomId, relabel('single'));
				await runs.putEntries(roomId, relabel('run'));
				expect(texts((await runs.pageBefore(roomId, null, 100)).entries)).toEqual(texts(relabel('run')));
				await singles.putEntries(roomId, relabel('again'));
				expect(texts((await runs.pageBefore(roomId, null, 100)).entries)).toEqual(texts(relabel('again')));
				expect(texts((await runs.pageBefore(roomId, historyKey(20), 5)).entries)).toEqual(texts(relabel('again').slice(15, 20)));
			} finally {
				await Promise.all([runs.close(), singles.close()]);
			}
		});

		it('reads items of the earlier forms beside runs, below any later write', async () => {
			const store = open();
			const client = DynamoDBDocumentClient.from(
				new DynamoDBClient({ endpoint: dynamo.endpoint, region: REGION, credentials: EMBEDDED_CREDENTIALS })
			);
			const roomId = `earlier-${ulid()}`;
			try {
				// One message per item as the map `m`; then runs keyed by their first position alone,
				// with the step as `w`.
				const earlier = Array.from({ length: 5 }, (_, i) => entry(i));
				for (const { key, message } of earlier) {
					await client.send(new PutCommand({ TableName: TABLE, Item: { room_id: roomId, k: key, m: message } }));
				}
				const runs = Array.from({ length: 10 }, (_, i) => entry(5 + i));
				const stored = (entries: HistoryEntry[]) => JSON.stringify(entries.map((e) => ({ m: e.message })));
				await client.send(new PutCommand({ TableName: TABLE, Item: { room_id: roomId, k: runs[0].key, w: 5, b: stored(runs) } }));
				const later = Array.from({ length: 40 }, (_, i) => entry(10 + i));
				await store.putEntries(roomId, later, { order: { step: 10, fence: 1, attempt: 1 } });
				const all = [...earlier, ...runs.slice(0, 5), ...later];
				expect((await store.pageBefore(roomId, null, 100)).entries).toEqual(all);
				expect((await store.pageBefore(roomId, historyKey(7), 4)).entries).toEqual(all.slice(3, 7));
				// The same step written again in the current form is read over the earlier one.
				const again = runs.map((e) => ({ ...e, message: { ...e.message, text: `again ${e.key}` } }));
				await store.putEntries(roomId, again, { order: { step: 5, fence: 0, attempt: 0 } });
				expect(texts((await store.pageBefore(roomId, historyKey(10), 100)).entries)).toEqual(texts([...earlier, ...again.slice(0, 5)]));
			} finally {
				client.destroy();
				await store.close();
			}
		});
	});

	describe('table setup', () => {
		it('creates a missing table once, even when two callers race', async () => {
			const table = `race_${Date.now()}`;
			const first = new DynamoHistoryStore({ endpoint: dynamo.endpoint, region: REGION, table });
			const second = new DynamoHistoryStore({ endpoint: dynamo.endpoint, region: REGION, table });
			try {
				await expect(first.ping()).rejects.toThrow();
				await Promise.all([first.ensureTable(), second.ensureTable()]);
				await first.ensureTable();
				await expect(second.ping()).resolves.toBeUndefined();
			} finally {
				await Promise.all([first.close(), second.close()]);
			}
		});

		it('refuses work after close, and closes idempotently', async () => {
			const store = new DynamoHistoryStore({ endpoint: dynamo.endpoint, region: REGION, table: TABLE });
			await store.close();
			await store.close();
			await expect(store.pageBefore('room', null, 10)).rejects.toThrow(/closed/);
		});
	});
});

describe('startEmbeddedDynamo', () => {
	it('keeps what was written across a restart on the same directory', async () => {
		const dir = await mkdtemp(path.join(tmpdir(), 'dynalite-restart-'));
		try {
			const first = await startEmbeddedDynamo(dir);
			const writer = new DynamoHistoryStore({ endpoint: first.endpoint, region: REGION, table: TABLE });
			await writer.ensureTable();
			const written = [entry(1), entry(2)];
			await writer.putEntries('room', written);
			await writer.close();
			await Promise.all([first.close(), first.close()]);
			await first.close();

			const second = await startEmbeddedDynamo(dir);
			const reader = new DynamoHistoryStore({ endpoint: second.endpoint, region: REGION, table: TABLE });
			try {
				const page = await reader.pageBefore('room', null, 10);
				expect(page.entries).toEqual(written);
			} finally {
				await reader.close();
				await second.close();
			}
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});

// Registered only when a real endpoint is configured, so a run without it reports fewer tests
// instead of a silent pass or a skip that reads like coverage.
const endpoint = process.env.DYNAMODB_ENDPOINT;
if (endpoint) {
	const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
	const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
	describe('DynamoHistoryStore on DYNAMODB_ENDPOINT', () => {
		describeHistoryConformance(endpoint, async () => {
			const store = new DynamoHistoryStore({
				endpoint,
				region: process.env.AWS_REGION || REGION,
				// A table of its own: the tests write rooms there and must never share the app's table.
				table: TABLE,
				credentials:
					accessKeyId && secretAccessKey
						? { accessKeyId, secretAccessKey, sessionToken: process.env.AWS_SESSION_TOKEN }
						: undefined
			});
			await store.ensureTable();
			return store;
		});
	});
}
