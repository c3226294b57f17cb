import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../src/lib/server/history/history-store';
import { DynamoHistoryStore } from '../../src/lib/server/history/dynamo-history';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../src/lib/server/history/embedded-dynamo';
import { describeHistoryConformance } from '../conformance/history.conformance';

const REGION = 'us-east-1';
const TABLE = 'chat_history_test';

function entry(index: number): HistoryEntry {
	return {
		key: String(index).padStart(8, '0'),
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
