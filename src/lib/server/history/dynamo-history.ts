/**
 * Compacted room history in DynamoDB (or the embedded dynalite, which speaks the same API).
 * One item per message: partition key `room_id`, sort key `k` (the order-preserving key), the
 * message itself as the map `m`. Reads are strongly consistent, because the relay removes
 * messages from the live document right after sealing them here and a reader must then find them.
 */
import {
	CreateTableCommand,
	DescribeTableCommand,
	DynamoDBClient,
	ResourceInUseException,
	ResourceNotFoundException
} from '@aws-sdk/client-dynamodb';
import {
	BatchWriteCommand,
	DynamoDBDocumentClient,
	QueryCommand,
	type BatchWriteCommandInput,
	type QueryCommandInput
} from '@aws-sdk/lib-dynamodb';
import { checkEdit, checkMessage, type ChatMessage, type MessageDeletion, type MessageEdit } from '../../shared/schema';
import type { HistoryEntry, HistoryPage, HistoryStore } from './history-store';

/** BatchWriteItem accepts at most 25 requests per call (DynamoDB API reference). */
export const BATCH_WRITE_MAX_ITEMS = 25;
/** Calls per chunk before unprocessed items are reported as a failure. */
export const BATCH_WRITE_MAX_ATTEMPTS = 8;
/** First backoff after unprocessed items; doubles per attempt, with full jitter. */
export const BATCH_RETRY_BASE_DELAY_MS = 50;
export const BATCH_RETRY_MAX_DELAY_MS = 2_000;
/** How long ensureTable() waits for a new table to become ACTIVE. */
export const TABLE_ACTIVE_TIMEOUT_MS = 120_000;
/** First pause between table status checks, doubling up to the max. The SDK's own waiter sleeps
 * at least a second, which dynalite (ACTIVE within milliseconds) would pay on every fresh start. */
export const TABLE_POLL_INITIAL_MS = 20;
export const TABLE_POLL_MAX_MS = 2_000;
/** The embedded dynalite checks signatures' shape only; any static pair satisfies it. */
export const EMBEDDED_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** Messages were checked against the sender's clock when written; stored ones never become "future". */
const NO_CLOCK_CHECK = Number.MAX_SAFE_INTEGER;

/** Placeholders for the key attributes; DynamoDB rejects a request naming one it does not use. */
const ROOM_NAME = { '#r': 'room_id' } as const;
const ROOM_AND_KEY_NAMES = { '#r': 'room_id', '#k': 'k' } as const;

export interface DynamoCredentials {
	accessKeyId: string;
	secretAccessKey: string;
	sessionToken?: string;
}

export interface DynamoHistoryOptions {
	endpoint: string;
	region: string;
	table: string;
	/** Omit for the embedded dynalite, which gets EMBEDDED_CREDENTIALS. */
	credentials?: DynamoCredentials;
	/** The SDK's attempts per request (its default: 3). Callers with their own backoff may lower it. */
	maxAttempts?: number;
}

type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];
type Key = NonNullable<QueryCommandInput['ExclusiveStartKey']>;

export class DynamoHistoryStore implements HistoryStore {
	readonly kind = 'dynamodb' as const;
	readonly table: string;
	private readonly client: DynamoDBClient;
	private readonly documents: DynamoDBDocumentClient;
	private closed = false;

	constructor(options: DynamoHistoryOptions) {
		this.table = options.table;
		this.client = new DynamoDBClient({
			endpoint: options.endpoint,
			region: options.region,
			credentials: options.credentials ?? EMBEDDED_CREDENTIALS,
			...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {})
		});
		this.documents = DynamoDBDocumentClient.from(this.client);
	}

	/** Creates the table when missing and waits until it is ACTIVE; safe to race another process. */
	async ensureTable(): Promise<void> {
		const status = await this.tableStatus();
		if (status === 'ACTIVE') return;
		if (status === null) {
			try {
				await this.client.send(
					new CreateTableCommand({
						TableName: this.table,
						AttributeDefinitions: [
							{ AttributeName: 'room_id', AttributeType: 'S' },
							{ AttributeName: 'k', AttributeType: 'S' }
						],
						KeySchema: [
							{ AttributeName: 'room_id', KeyType: 'HASH' },
							{ AttributeName: 'k', KeyType: 'RANGE' }
						],
						BillingMode: 'PAY_PER_REQUEST'
					})
				);
			} catch (error) {
				// Another process created it between our describe and create: wait for theirs.
				if (!(error instanceof ResourceInUseException)) throw error;
			}
		}
		await this.waitUntilActive();
	}

	async putEntries(roomId: string, entries: HistoryEntry[], options: { signal?: AbortSignal } = {}): Promise<void> {
		this.assertOpen();
		// BatchWriteItem rejects a request naming one key twice; the last entry for a key wins.
		const byKey = new Map<string, Record<string, unknown>>();
		for (const entry of entries) {
			requireKey(entry.key);
			const problem = checkStoredMessage(entry.message, entry.deletion !== undefined);
			if (problem !== null) throw new Error(`history entry ${roomId}/${entry.key}: ${problem}`);
			const item: Record<string, unknown> = { room_id: roomId, k: entry.key, m: entry.message };
			if (entry.edit) item.e = entry.edit;
			if (entry.deletion) item.d = entry.deletion;
			byKey.set(entry.key, item);
		}
		const requests: WriteRequest[] = [...byKey.values()].map((Item) => ({ PutRequest: { Item } }));
		await this.batchWrite(requests, options.signal);
	}

	async pageBefore(roomId: string, beforeKey: string | null, limit: number): Promise<HistoryPage> {
		this.assertOpen();
		requireLimit(limit);
		// No key sorts before the empty string, and DynamoDB rejects it as a key value.
		if (beforeKey === '') return { entries: [], nextBeforeKey: null };
		const items = await this.queryNewestFirst(roomId, beforeKey, limit, false);
		const entries = items.map((item) => toEntry(roomId, item)).reverse();
		if (entries.length < limit) return { entries, nextBeforeKey: null };
		const oldestKey = entries[0].key;
		// A full page may have been the last: one key-only item tells, so null means "first message".
		const older = await this.queryNewestFirst(roomId, oldestKey, 1, true);
		return { entries, nextBeforeKey: older.length > 0 ? oldestKey : null };
	}

	async purgeBatch(roomId: string, limit: number): Promise<number> {
		this.assertOpen();
		requireLimit(limit);
		const keys: string[] = [];
		let start: Key | undefined;
		do {
			const page = await this.documents.send(
				new QueryCommand({
					TableName: this.table,
					KeyConditionExpression: '#r = :r',
					ExpressionAttributeNames: ROOM_AND_KEY_NAMES,
					ExpressionAttributeValues: { ':r': roomId },
					ProjectionExpression: '#k',
					Limit: limit - keys.length,
					ConsistentRead: true,
					ExclusiveStartKey: start
				})
			);
			for (const item of page.Items ?? []) keys.push(readKey(roomId, item));
			start = page.LastEvaluatedKey;
		} while (start !== undefined && keys.length < limit);
		await this.batchWrite(keys.map((k) => ({ DeleteRequest: { Key: { room_id: roomId, k } } })));
		return keys.length;
	}

	async ping(): Promise<void> {
		this.assertOpen();
		await this.client.send(new DescribeTableCommand({ TableName: this.table }));
	}

	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		// The document client shares (and does not own) the base client's sockets.
		this.client.destroy();
	}

	/** The table's status, or null when it does not exist. */
	private async tableStatus(): Promise<string | null> {
		try {
			const described = await this.client.send(new DescribeTableCommand({ TableName: this.table }));
			return described.Table?.TableStatus ?? null;
		} catch (error) {
			if (error instanceof ResourceNotFoundException) return null;
			throw error;
		}
	}

	private async waitUntilActive(): Promise<void> {
		const deadline = Date.now() + TABLE_ACTIVE_TIMEOUT_MS;
		let delayMs = TABLE_POLL_INITIAL_MS;
		// A just-created table may still read as missing for a moment, so null means "not yet" here.
		for (let status = await this.tableStatus(); status !== 'ACTIVE'; status = await this.tableStatus()) {
			if (Date.now() + delayMs > deadline) {
				throw new Error(`table ${this.table} not ACTIVE after ${TABLE_ACTIVE_TIMEOUT_MS} ms (status ${status})`);
			}
			await pause(delayMs);
			delayMs = Math.min(delayMs * 2, TABLE_POLL_MAX_MS);
		}
	}

	/** Up to `limit` items with key < beforeKey (all keys when null), newest first. */
	private async queryNewestFirst(
		roomId: string,
		beforeKey: string | null,
		limit: number,
		keysOnly: boolean
	): Promise<Record<string, unknown>[]> {
		const items: Record<string, unknown>[] = [];
		const namesKey = beforeKey !== null || keysOnly;
		let start: Key | undefined;
		do {
			// A page stops at 1 MB even below Limit, so keep going until the limit is met.
			const page = await this.documents.send(
				new QueryCommand({
					TableName: this.table,
					KeyConditionExpression: beforeKey === null ? '#r = :r' : '#r = :r AND #k < :before',
					ExpressionAttributeNames: namesKey ? ROOM_AND_KEY_NAMES : ROOM_NAME,
					ExpressionAttributeValues:
						beforeKey === null ? { ':r': roomId } : { ':r': roomId, ':before': beforeKey },
					ProjectionExpression: keysOnly ? '#k' : undefined,
					ScanIndexForward: false,
					Limit: limit - items.length,
					ConsistentRead: true,
					ExclusiveStartKey: start
				})
			);
			items.push(...(page.Items ?? []));
			start = page.LastEvaluatedKey;
		} while (start !== undefined && items.length < limit);
		return items;
	}

	/** Writes in chunks of 25, retrying what DynamoDB left unprocessed (throttling) with backoff. */
	private async batchWrite(requests: WriteRequest[], signal?: AbortSignal): Promise<void> {
		for (let offset = 0; offset < requests.length; offset += BATCH_WRITE_MAX_ITEMS) {
			let pending = requests.slice(offset, offset + BATCH_WRITE_MAX_ITEMS);
			for (let attempt = 1; ; attempt++) {
				signal?.throwIfAborted();
				const result = await this.documents.send(
					new BatchWriteCommand({ RequestItems: { [this.table]: pending } }),
					{ abortSignal: signal }
				);
				const unprocessed = result.UnprocessedItems?.[this.table] ?? [];
				if (unprocessed.length === 0) break;
				if (attempt >= BATCH_WRITE_MAX_ATTEMPTS) {
					throw new Error(
						`${unprocessed.length} of ${pending.length} writes to ${this.table} still unprocessed after ${attempt} attempts`
					);
				}
				pending = unprocessed;
				await pause(backoffMs(attempt));
			}
		}
	}

	private assertOpen(): void {
		if (this.closed) throw new Error(`DynamoHistoryStore for ${this.table} is closed`);
	}
}

function requireKey(key: unknown): asserts key is string {
	if (typeof key !== 'string' || key.length === 0) throw new RangeError('history key must be a non-empty string');
}

function requireLimit(limit: number): void {
	if (!Number.isSafeInteger(limit) || limit <= 0) {
		throw new RangeError(`limit must be a positive integer, got ${limit}`);
	}
}

function readKey(roomId: string, item: Record<string, unknown>): string {
	const key = item.k;
	if (typeof key !== 'string') throw new Error(`history item in room ${roomId} has no string key`);
	return key;
}

/** Stored items are checked on the way out too: a corrupt item is named, never passed on. */
function toEntry(roomId: string, item: Record<string, unknown>): HistoryEntry {
	const key = readKey(roomId, item);
	const message: unknown = item.m;
	const deletion = item.d as MessageDeletion | undefined;
	const edit = item.e as MessageEdit | undefined;
	const problem = checkStoredMessage(message, deletion !== undefined);
	if (problem !== null) throw new Error(`history item ${roomId}/${key} is not a valid message: ${problem}`);
	if (edit !== undefined && checkEdit(edit, NO_CLOCK_CHECK) !== null) throw new Error(`history item ${roomId}/${key} has a bad edit`);
	return { key, message: message as ChatMessage, ...(edit ? { edit } : {}), ...(deletion ? { deletion } : {}) };
}

/** A deleted message is stored with its text erased; everything else is checked as sent. */
function checkStoredMessage(message: unknown, deleted: boolean): string | null {
	if (deleted && typeof message === 'object' && message !== null && (message as ChatMessage).text === '') {
		return checkMessage({ ...(message as ChatMessage), text: '-' }, NO_CLOCK_CHECK);
	}
	return checkMessage(message, NO_CLOCK_CHECK);
}

/** Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): spreads retrying writers. */
function backoffMs(attempt: number): number {
	const ceiling = Math.min(BATCH_RETRY_MAX_DELAY_MS, BATCH_RETRY_BASE_DELAY_MS * 2 ** (attempt - 1));
	return Math.random() * ceiling;
}

function pause(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
