/**
 * The device's copy of the history pages a room has fetched (issue 4: older history reads
 * offline), per account, in one IndexedDB database (`historyDatabaseName`), wiped by sign-out.
 *
 * Per room it keeps one *run*: a contiguous stretch of the room's order that ends just before
 * (or inside) the live document, oldest first, plus the cursor that fetches the page before it.
 * Each message has an integer `order`; a run only grows at its ends (older pages below the
 * smallest order, compacted messages above the largest), so reading it back in key order
 * restores the room's order. Tabs of one account share the database; writes re-read the run's
 * ends inside their transaction, so two tabs adding the same page store it once.
 */
import { historyDatabaseName, registerRoomDatabase } from './device-store';
import type { HistoryMessage } from './history-message';

const DATABASE_VERSION = 1;
const MESSAGES_STORE = 'messages';
const RUNS_STORE = 'runs';
/** How many of a run's newest messages an append checks for ids it already holds. */
const APPEND_DEDUPE_WINDOW = 1_000;

export interface HistoryRun {
	room: string;
	/** Smallest and largest order stored (empty run: min > max). */
	minOrder: number;
	maxOrder: number;
	/** Cursor of the page before the run's oldest message; null once the run reaches the room's first. */
	cursor: string | null;
	reachedStart: boolean;
}

interface StoredMessage {
	room: string;
	order: number;
	message: HistoryMessage;
}

export interface OrderedMessage {
	order: number;
	message: HistoryMessage;
}

function promised<T>(request: IDBRequest<T>): Promise<T> {
	return new Promise((resolve, reject) => {
		request.onsuccess = () => resolve(request.result);
		request.onerror = () => reject(request.error);
	});
}

function completed(transaction: IDBTransaction): Promise<void> {
	return new Promise((resolve, reject) => {
		transaction.oncomplete = () => resolve();
		transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
		transaction.onerror = () => reject(transaction.error);
	});
}

/** The newest `limit` messages of `room` below `beforeOrder`, oldest first. */
async function readDescending(store: IDBObjectStore, room: string, beforeOrder: number, limit: number): Promise<OrderedMessage[]> {
	const range = IDBKeyRange.bound([room, -Infinity], [room, beforeOrder], false, true);
	const out: OrderedMessage[] = [];
	await new Promise<void>((resolve, reject) => {
		const request = store.openCursor(range, 'prev');
		request.onerror = () => reject(request.error);
		request.onsuccess = () => {
			const cursor = request.result;
			if (!cursor || out.length >= limit) return resolve();
			const value = cursor.value as StoredMessage;
			out.push({ order: value.order, message: value.message });
			cursor.continue();
		};
	});
	return out.reverse();
}

function emptyRun(room: string): HistoryRun {
	return { room, minOrder: 0, maxOrder: -1, cursor: null, reachedStart: false };
}

export class HistoryCache {
	static #open = new Map<string, HistoryCache>();

	/** The account's cache in this tab (one connection, shared by its rooms). */
	static forUser(userId: string): HistoryCache {
		let cache = HistoryCache.#open.get(userId);
		if (!cache) {
			cache = new HistoryCache(userId);
			HistoryCache.#open.set(userId, cache);
		}
		return cache;
	}

	/** Closes every open cache of this tab, so sign-out can delete the databases. */
	static closeAll(): void {
		for (const cache of HistoryCache.#open.values()) cache.close();
		HistoryCache.#open.clear();
	}

	readonly #userId: string;
	#db: Promise<IDBDatabase> | null = null;

	private constructor(userId: string) {
		this.#userId = userId;
	}

	/** The run's ends and cursor, or an empty run. */
	async readRun(room: string): Promise<HistoryRun> {
		const db = await this.#database();
		const run = (await promised(db.transaction(RUNS_STORE).objectStore(RUNS_STORE).get(room))) as HistoryRun | undefined;
		return run ?? emptyRun(room);
	}

	/** Up to `limit` messages just below `beforeOrder` (Infinity: the newest), oldest first. */
	async readBefore(room: string, beforeOrder: number, limit: number): Promise<OrderedMessage[]> {
		const db = await this.#database();
		return readDescending(db.transaction(MESSAGES_STORE).objectStore(MESSAGES_STORE), room, beforeOrder, limit);
	}

	/**
	 * Stores a page older than the run, fetched with `fetchedWith` (the run's cursor then). Skipped
	 * when another tab moved the cursor first (it stored the same page). Returns the run after.
	 */
	async prepend(room: string, fetchedWith: string | null, messages: readonly HistoryMessage[], cursor: string | null): Promise<HistoryRun> {
		return this.#write(room, async (run, store) => {
			if (run.maxOrder >= run.minOrder && run.cursor !== fetchedWith) return run;
			const base = run.maxOrder >= run.minOrder ? run.minOrder - messages.length : 0;
			messages.forEach((message, i) => store.put({ room, order: base + i, message } satisfies StoredMessage));
			const empty = run.maxOrder < run.minOrder;
			return {
				room,
				minOrder: messages.length > 0 || !empty ? base : run.minOrder,
				maxOrder: empty ? base + messages.length - 1 : run.maxOrder,
				cursor,
				reachedStart: cursor === null
			};
		});
	}

	/** Stores messages newer than the run (compacted out of the live document), skipping known ids. */
	async append(room: string, messages: readonly HistoryMessage[]): Promise<HistoryRun> {
		return this.#write(room, async (run, store) => {
			const known = new Set((await readDescending(store, room, Infinity, APPEND_DEDUPE_WINDOW)).map((m) => m.message.id));
			let order = run.maxOrder;
			for (const message of messages) {
				if (known.has(message.id)) continue;
				known.add(message.id);
				order += 1;
				store.put({ room, order, message } satisfies StoredMessage);
			}
			if (order === run.maxOrder) return run;
			return { ...run, minOrder: run.maxOrder < run.minOrder ? run.maxOrder + 1 : run.minOrder, maxOrder: order };
		});
	}

	/** Replaces the room's run (the old one could not be joined to the live document). */
	async replace(room: string, messages: readonly HistoryMessage[], cursor: string | null): Promise<HistoryRun> {
		return this.#write(room, async (_run, store) => {
			store.delete(IDBKeyRange.bound([room, -Infinity], [room, Infinity]));
			messages.forEach((message, order) => store.put({ room, order, message } satisfies StoredMessage));
			return { room, minOrder: 0, maxOrder: messages.length - 1, cursor, reachedStart: cursor === null };
		});
	}

	/** Drops everything kept for the room (deleted). */
	async forgetRoom(room: string): Promise<void> {
		const db = await this.#database();
		const transaction = db.transaction([MESSAGES_STORE, RUNS_STORE], 'readwrite');
		transaction.objectStore(MESSAGES_STORE).delete(IDBKeyRange.bound([room, -Infinity], [room, Infinity]));
		transaction.objectStore(RUNS_STORE).delete(room);
		await completed(transaction);
	}

	close(): void {
		const db = this.#db;
		this.#db = null;
		void db?.then((d) => d.close()).catch(() => undefined);
	}

	async #write(room: string, change: (run: HistoryRun, store: IDBObjectStore) => Promise<HistoryRun>): Promise<HistoryRun> {
		const db = await this.#database();
		const transaction = db.transaction([MESSAGES_STORE, RUNS_STORE], 'readwrite');
		const runs = transaction.objectStore(RUNS_STORE);
		const before = ((await promised(runs.get(room))) as HistoryRun | undefined) ?? emptyRun(room);
		const after = await change(before, transaction.objectStore(MESSAGES_STORE));
		if (after !== before) runs.put(after);
		await completed(transaction);
		return after;
	}

	#database(): Promise<IDBDatabase> {
		this.#db ??= new Promise<IDBDatabase>((resolve, reject) => {
			const name = historyDatabaseName(this.#userId);
			registerRoomDatabase(this.#userId, name);
			const request = indexedDB.open(name, DATABASE_VERSION);
			request.onupgradeneeded = () => {
				const db = request.result;
				if (!db.objectStoreNames.contains(MESSAGES_STORE)) db.createObjectStore(MESSAGES_STORE, { keyPath: ['room', 'order'] });
				if (!db.objectStoreNames.contains(RUNS_STORE)) db.createObjectStore(RUNS_STORE, { keyPath: 'room' });
			};
			request.onerror = () => reject(request.error);
			request.onsuccess = () => {
				const db = request.result;
				// Another tab signing out deletes this database: let it.
				db.onversionchange = () => {
					db.close();
					if (HistoryCache.#open.get(this.#userId) === this) HistoryCache.#open.delete(this.#userId);
					this.#db = null;
				};
				resolve(db);
			};
		});
		return this.#db;
	}
}
