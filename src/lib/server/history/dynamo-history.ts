/**
 * Compacted room history in DynamoDB (or the embedded dynalite, which speaks the same API).
 * One item per run of up to HISTORY_ITEM_MESSAGES consecutive messages: partition key `room_id`,
 * sort key `k`, the run itself as the JSON string `b` (`[{m, e?, d?}, …]`, one element per
 * position). A compaction step of a hundred messages is then a handful of items in one request,
 * where one item per message cost a request per 25 messages and the marshalling of every field.
 * Reads are strongly consistent, because the relay removes messages from the live document right
 * after sealing them here and a reader must then find them.
 *
 * `k` is the history key of the run's first position, a dot, and the write's order (its step,
 * fence and attempt, twelve digits each): writes of different attempts never replace each other's
 * items, so an attempt abandoned (its request timed out) but applied after the redo cannot cut
 * the redo's runs short. Where items overlap, a position is read from the item of the latest
 * order; positions below the room's watermark are then those the committed step wrote. Runs are
 * cut at every multiple of HISTORY_ITEM_MESSAGES, at gaps in the positions written and at the
 * first position of each call; a run whose JSON would pass HISTORY_ITEM_BYTES_MAX is stored one
 * message per item. Items of earlier forms are still read, below any later write: `k` the bare
 * history key, with `w` (the step) and `b`, or one message as the map `m`. See docs/protocol.md
 * ("History, compaction and epochs").
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
import {
	HISTORY_ITEM_MESSAGES,
	HISTORY_KEY_DIGITS,
	historyKey,
	historyPosition,
	type HistoryEntry,
	type HistoryPage,
	type HistoryStore,
	type PutOptions,
	type WriteOrder
} from './history-store';

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
		const version = orderVersion(options.order ?? { step: Math.min(...byPosition.keys()), fence: 0, attempt: 0 });
		const requests: WriteRequest[] = [];
		const put = (first: HistoryEntry, body: string): void => {
			requests.push({ PutRequest: { Item: { room_id: roomId, k: `${first.key}.${version}`, b: body } } });
		};
		for (const run of runsOf(byPosition)) {
			const body = JSON.stringify(run.map(storedForm));
			if (Buffer.byteLength(body) <= this.itemBytesMax) put(run[0], body);
			else for (const entry of run) put(entry, JSON.stringify([storedForm(entry)]));
		}
		await this.batchWrite(requests, options.signal);
	}

	async pageBefore(roomId: string, beforeKey: string | null, limit: number): Promise<HistoryPage> {
		this.assertOpen();
		requireLimit(limit);
		// No key sorts before the empty string, and DynamoDB rejects it as a key value.
		if (beforeKey === '') return { entries: [], nextBeforeKey: null };
		const end = beforeKey === null ? Infinity : historyPosition(beforeKey);
		// Newest item first; of items in the same order, the one read later starts earlier and wins.
		const found = new Map<number, { entry: HistoryEntry; version: string }>();
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
				const { version, entries } = readItem(roomId, item);
				lowestStart = historyPosition(entries[0].key);
				entries.forEach((entry, i) => {
					const position = lowestStart + i;
					if (position >= end) return;
					const held = found.get(position);
					if (held === undefined || version >= held.version) found.set(position, { entry, version });
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

/** Digits of each part of a write's order in an item's key. */
const ORDER_DIGITS = 12;
const ITEM_KEY = new RegExp(`^(\\d{${HISTORY_KEY_DIGITS}})(?:\\.(\\d{${3 * ORDER_DIGITS}}))?$`);

/** A write's order as a string that sorts as the orders do (DynamoDB and JavaScript compare code units). */
function orderVersion({ step, fence, attempt }: WriteOrder): string {
	const parts = [step, fence, attempt];
	if (!parts.every((part) => Number.isSafeInteger(part) && part >= 0 && part < 10 ** ORDER_DIGITS)) {
		throw new RangeError(`not a write order: ${step}/${fence}/${attempt}`);
	}
	return parts.map(orderDigits).join('');
}

function orderDigits(part: number): string {
	return part.toString().padStart(ORDER_DIGITS, '0');
}

/**
 * An item's entries and the order of the write that stored it, as a string that sorts below every
 * later write's: the step alone for the form without the order in the key, empty for the
 * one-message form. Stored items are checked on the way out too: a corrupt item is named, never
 * passed on.
 */
function readItem(roomId: string, item: Record<string, unknown>): { version: string; entries: HistoryEntry[] } {
	const itemKey = readKey(roomId, item);
	const parts = ITEM_KEY.exec(itemKey);
	if (parts === null) throw new Error(`history item in room ${roomId} has a malformed key: ${itemKey}`);
	const key = parts[1];
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
	const version = parts[2] ?? (typeof item.w === 'number' ? orderDigits(item.w) : '');
	return { version, entries: stored.map((s, i) => toEntry(roomId, historyKey(first + i), s)) };
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
