/**
 * Compacted room history in DynamoDB (or the embedded dynalite, which speaks the same API).
 * One item per run of up to HISTORY_ITEM_MESSAGES consecutive messages: partition key `room_id`,
 * sort key `k` (the history key of the run's first position), the run itself as the JSON string
 * `b` (`[{m, e?, d?}, …]`, one element per position). A compaction step of a hundred messages is
 * then a handful of items in one request, where one item per message cost a request per 25
 * messages and the marshalling of every field. Items of the earlier form (one message as the map
 * `m`) are still read. Reads are strongly consistent, because the relay removes messages from the
 * live document right after sealing them here and a reader must then find them.
 *
 * Runs are cut at every multiple of HISTORY_ITEM_MESSAGES, at gaps in the positions written and
 * at the first position of each call, so a write redone from the same position puts the same keys
 * again; a run whose JSON would pass HISTORY_ITEM_BYTES_MAX is stored one message per item. Each
 * item records the compaction step it was written for (`w`, the history position that step began
 * at). Where items overlap (a redo that ended sooner than an attempt before it, after a crash; a
 * run over single items), a position is read from the item of the latest step, and within one
 * step from the item that starts earliest (which was written over the others' first key).
 * Positions below the room's watermark are then those the committed step wrote. See
 * docs/protocol.md ("History, compaction and epochs").
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
import { historyKey, historyPosition, type HistoryEntry, type HistoryPage, type HistoryStore } from './history-store';

/** Consecutive messages one item holds at most; runs are cut at its multiples. */
export const HISTORY_ITEM_MESSAGES = 32;
/** A run's JSON above this is stored a message per item (DynamoDB's item limit is 400 KB). */
export const HISTORY_ITEM_BYTES_MAX = 300_000;
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
	/** A run's JSON above this many bytes is stored a message per item (default HISTORY_ITEM_BYTES_MAX). */
	itemBytesMax?: number;
}

export interface PutOptions {
	/** Once it aborts, no further request is sent and the one in flight is abandoned (it rejects). */
	signal?: AbortSignal;
	/** The history position the compaction step began at (default: the first position written). */
	step?: number;
}

type WriteRequest = NonNullable<BatchWriteCommandInput['RequestItems']>[string][number];
type Key = NonNullable<QueryCommandInput['ExclusiveStartKey']>;

export class DynamoHistoryStore implements HistoryStore {
	readonly kind = 'dynamodb' as const;
	readonly table: string;
	private readonly itemBytesMax: number;
	private readonly client: DynamoDBClient;
	private readonly documents: DynamoDBDocumentClient;
	private closed = false;

	constructor(options: DynamoHistoryOptions) {
		this.table = options.table;
		this.itemBytesMax = options.itemBytesMax ?? HISTORY_ITEM_BYTES_MAX;
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

	async putEntries(roomId: string, entries: HistoryEntry[], options: PutOptions = {}): Promise<void> {
		this.assertOpen();
		// One key written twice in a call: the last entry for it wins.
		const byPosition = new Map<number, HistoryEntry>();
		for (const entry of entries) {
			const position = historyPosition(entry.key);
			const problem = checkStoredMessage(entry.message, entry.deletion !== undefined);
			if (problem !== null) throw new Error(`history entry ${roomId}/${entry.key}: ${problem}`);
			byPosition.set(position, entry);
		}
		if (byPosition.size === 0) return;
		const step = options.step ?? Math.min(...byPosition.keys());
		if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`not a compaction step: ${step}`);
		const requests: WriteRequest[] = [];
		for (const run of runsOf(byPosition)) {
			const body = JSON.stringify(run.map(storedForm));
			if (Buffer.byteLength(body) <= this.itemBytesMax) {
				requests.push({ PutRequest: { Item: { room_id: roomId, k: run[0].key, w: step, b: body } } });
			} else {
				for (const entry of run) {
					requests.push({ PutRequest: { Item: { room_id: roomId, k: entry.key, w: step, b: JSON.stringify([storedForm(entry)]) } } });
				}
			}
		}
		await this.batchWrite(requests, options.signal);
	}

	async pageBefore(roomId: string, beforeKey: string | null, limit: number): Promise<HistoryPage> {
		this.assertOpen();
		requireLimit(limit);
		// No key sorts before the empty string, and DynamoDB rejects it as a key value.
		if (beforeKey === '') return { entries: [], nextBeforeKey: null };
		const end = beforeKey === null ? Infinity : historyPosition(beforeKey);
		// Newest item first; one read later starts earlier, so it wins unless its step is older.
		const found = new Map<number, { entry: HistoryEntry; step: number }>();
		let start: Key | undefined;
		let itemsWanted = Math.ceil(limit / HISTORY_ITEM_MESSAGES) + 1;
		for (;;) {
			const page = await this.documents.send(
				new QueryCommand({
					TableName: this.table,
					KeyConditionExpression: beforeKey === null ? '#r = :r' : '#r = :r AND #k < :before',
					ExpressionAttributeNames: beforeKey === null ? ROOM_NAME : ROOM_AND_KEY_NAMES,
					ExpressionAttributeValues: beforeKey === null ? { ':r': roomId } : { ':r': roomId, ':before': beforeKey },
					ScanIndexForward: false,
					Limit: itemsWanted,
					ConsistentRead: true,
					ExclusiveStartKey: start
				})
			);
			let lowestStart = Infinity;
			for (const item of page.Items ?? []) {
				const { step, entries } = readItem(roomId, item);
				lowestStart = historyPosition(entries[0].key);
				entries.forEach((entry, i) => {
					const position = lowestStart + i;
					if (position >= end) return;
					const held = found.get(position);
					if (held === undefined || step >= held.step) found.set(position, { entry, step });
				});
			}
			start = page.LastEvaluatedKey;
			if (start === undefined) break;
			// Settled once `limit` positions are found and no older item can reach the oldest of them.
			if (found.size > limit && lowestStart + HISTORY_ITEM_MESSAGES <= newestPositions(found, limit).at(-1)!) break;
			// Items smaller than runs (large messages, or the earlier form): read more per request.
			itemsWanted = limit + 1;
		}
		const positions = newestPositions(found, limit).reverse();
		const entries = positions.map((position) => found.get(position)!.entry);
		return { entries, nextBeforeKey: found.size > limit ? entries[0].key : null };
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

/** Positions sorted by key, cut into runs at multiples of HISTORY_ITEM_MESSAGES and at gaps. */
function runsOf(byPosition: Map<number, HistoryEntry>): HistoryEntry[][] {
	const runs: HistoryEntry[][] = [];
	let previous = -1;
	for (const position of [...byPosition.keys()].sort((a, b) => a - b)) {
		const entry = byPosition.get(position)!;
		if (runs.length > 0 && position === previous + 1 && position % HISTORY_ITEM_MESSAGES !== 0) runs.at(-1)!.push(entry);
		else runs.push([entry]);
		previous = position;
	}
	return runs;
}

function storedForm({ message, edit, deletion }: HistoryEntry): StoredEntry {
	return { m: message, ...(edit ? { e: edit } : {}), ...(deletion ? { d: deletion } : {}) };
}

interface StoredEntry {
	m: unknown;
	e?: unknown;
	d?: unknown;
}

/** The `count` highest positions found, highest first. */
function newestPositions(found: Map<number, unknown>, count: number): number[] {
	return [...found.keys()].sort((a, b) => b - a).slice(0, count);
}

/**
 * An item's entries and the step it was written for (-1 for the earlier one-message form: any
 * later write wins over it). Stored items are checked on the way out too: a corrupt item is
 * named, never passed on.
 */
function readItem(roomId: string, item: Record<string, unknown>): { step: number; entries: HistoryEntry[] } {
	const key = readKey(roomId, item);
	const first = historyPosition(key);
	let stored: StoredEntry[];
	if (typeof item.b === 'string') {
		let parsed: unknown;
		try {
			parsed = JSON.parse(item.b);
		} catch {
			throw new Error(`history item ${roomId}/${key} is not JSON`);
		}
		if (!Array.isArray(parsed) || parsed.length === 0 || parsed.length > HISTORY_ITEM_MESSAGES) {
			throw new Error(`history item ${roomId}/${key} holds no run of messages`);
		}
		stored = parsed as StoredEntry[];
	} else {
		stored = [{ m: item.m, e: item.e, d: item.d }];
	}
	const step = typeof item.w === 'number' ? item.w : -1;
	return { step, entries: stored.map((s, i) => toEntry(roomId, historyKey(first + i), s)) };
}

function toEntry(roomId: string, key: string, stored: StoredEntry): HistoryEntry {
	const message: unknown = stored?.m;
	const deletion = stored?.d as MessageDeletion | undefined;
	const edit = stored?.e as MessageEdit | undefined;
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
