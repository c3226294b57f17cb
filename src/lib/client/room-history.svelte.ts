/**
 * A room's history before its live document (issue 4): what the relay compacted out of the live
 * `messages` array, read page by page from `GET /api/rooms/:id/messages` as the reader scrolls up,
 * kept on the device (HistoryCache) so it also reads offline.
 *
 * The room's order is one sequence: compacted history, then the live log. The pages API walks
 * that whole sequence with opaque cursors; the page just before the live log is asked for by the
 * live log's first message (`beforeId`), and older pages are walked until they meet the device's
 * run ("joining"), once per session before the run is trusted; the run then grows older with the
 * stored cursor. (Should the server no longer hold that message live, the walk starts from the
 * newest page and crosses the live log.)
 * Messages the reader saw leave the live log (compaction, or an epoch switch) are kept here
 * (`retain`), so nothing on screen disappears; when more may have been compacted unseen behind
 * them (the device was away), the run is joined to the live log again, which fetches those.
 *
 * Fields are Svelte state; create one per open room and `destroy()` it on leave.
 */
import { ApiError, getMessagesPage, getMessagesPageBeforeId } from './api';
import { HistoryCache, type HistoryRun } from './history-cache';
import { parseMessagesPage, type HistoryMessage, type ParsedPage } from './history-message';

/** Messages per history request (the API's maximum). */
export const HISTORY_PAGE_LIMIT = 100;
/** Messages read back from the device per step. */
const CACHE_CHUNK = 200;
/** Pages walked past the live log looking for the device's run before it is given up as stale. */
const JOIN_EXTRA_PAGES = 20;

/** Steps one `loadOlder` takes at most looking for something older to show. */
const STEPS_PER_LOAD_MAX = 4;

/** How long joining waits for the live log to sync with the relay. */
const SYNC_WAIT_MS = 15_000;

export interface RoomHistorySource {
	/** The live log now, in the room's order. */
	live(): readonly HistoryMessage[];
	/** True while the live log is in sync with the relay (what is not in it is then history). */
	synced(): boolean;
	/** Resolves the next time the live log is in sync with the relay. */
	whenSynced(): Promise<void>;
}

function notConnected(): ApiError {
	return new ApiError(0, 'network', 'The room is not connected.');
}

export class RoomHistory {
	/** The history shown above the live log, oldest first (may overlap it; see historyThenLive). */
	messages = $state.raw<HistoryMessage[]>([]);
	/** True once nothing older exists: the room's first message is in `messages` or the live log. */
	reachedStart = $state(false);
	/** True while a step of loading older history runs. */
	loading = $state(false);
	/** Why the last step failed (shown to the reader), or null. */
	failed = $state<string | null>(null);

	readonly roomId: string;
	readonly #source: RoomHistorySource;
	readonly #cache: HistoryCache;
	/** The stored run's ends and cursor. */
	#run: HistoryRun | null = null;
	/** The run's messages loaded into memory (a newest part of the stored run). */
	#loaded: HistoryMessage[] = [];
	#loadedMinOrder = Number.POSITIVE_INFINITY;
	/** Messages seen leaving the live log before the run was joined to it this session. */
	#retained: HistoryMessage[] = [];
	#joined = false;
	#queue: Promise<void>;
	#destroyed = false;

	constructor(userId: string, roomId: string, source: RoomHistorySource) {
		this.roomId = roomId;
		this.#source = source;
		this.#cache = HistoryCache.forUser(userId);
		this.#queue = this.#serial(() => this.#loadFromDevice());
	}

	/** True while older messages may exist (on the device or the server). */
	get hasOlder(): boolean {
		return !this.reachedStart;
	}

	/** One step back in time: the next chunk from the device, else the next page from the server. */
	loadOlder(): Promise<void> {
		return this.#serial(() => this.#stepBack());
	}

	/**
	 * Keeps messages that left the live log (compacted) in view at once, and on the device once
	 * the run is known to end where they start (joined). `unseenMayFollow`: messages this device
	 * never held may have been compacted between them and the live log; they are fetched.
	 */
	retain(messages: readonly HistoryMessage[], unseenMayFollow = false): void {
		if (messages.length === 0 || this.#destroyed) return;
		this.#retained = [...this.#retained, ...messages];
		this.#publish();
		void this.#serial(async () => {
			if (this.#joined && unseenMayFollow) this.#joined = false;
			await (this.#joined ? this.#storeRetained() : this.#join());
		}, false);
	}

	/** Drops the room's history from the device (the room was deleted). */
	async forget(): Promise<void> {
		this.destroy();
		await this.#cache.forgetRoom(this.roomId);
	}

	destroy(): void {
		this.#destroyed = true;
	}

	/** Runs steps one at a time; `visible` ones show as loading (and clear the last failure). */
	#serial(step: () => Promise<void>, visible = true): Promise<void> {
		const run = async (): Promise<void> => {
			if (this.#destroyed) return;
			if (visible) {
				this.loading = true;
				this.failed = null;
			}
			try {
				await step();
			} catch (error) {
				if (visible) this.#fail(error);
				else if (!(error instanceof ApiError)) console.error('Could not keep compacted messages', error);
			} finally {
				if (visible) this.loading = false;
			}
		};
		this.#queue = (this.#queue ?? Promise.resolve()).then(run);
		return this.#queue;
	}

	#fail(error: unknown): void {
		if (this.#destroyed) return;
		if (error instanceof ApiError && error.isNetwork) this.failed = 'Older messages load when you are back online.';
		else if (error instanceof ApiError && error.status === 401) this.failed = 'Sign in again to load older messages.';
		else if (error instanceof ApiError && error.status === 404) this.failed = null;
		else {
			console.error('Could not load older messages', error);
			this.failed = 'Could not load older messages.';
		}
	}

	#publish(): void {
		if (this.#destroyed) return;
		this.messages = this.#retained.length === 0 ? this.#loaded : [...this.#loaded, ...this.#retained];
		const run = this.#run;
		this.reachedStart = run !== null && run.reachedStart && this.#loadedMinOrder <= run.minOrder;
	}

	async #loadFromDevice(): Promise<void> {
		const run = await this.#cache.readRun(this.roomId);
		const newest = await this.#cache.readBefore(this.roomId, Number.POSITIVE_INFINITY, CACHE_CHUNK);
		this.#run = run;
		this.#loaded = newest.map((m) => m.message);
		this.#loadedMinOrder = newest[0]?.order ?? run.minOrder;
		this.#publish();
	}

	/**
	 * Steps until something older is shown (or the start is reached): a step can show nothing
	 * new — a join that only met what the device already had, a page another tab stored first —
	 * and the reader at the top must not be left waiting for a scroll that cannot happen.
	 */
	async #stepBack(): Promise<void> {
		for (let steps = 0; steps < STEPS_PER_LOAD_MAX; steps += 1) {
			// Progress is a new first message above the live log (retained ones join at the end).
			const first = this.messages[0]?.id;
			await this.#stepBackOnce();
			if (this.#destroyed || this.reachedStart || this.messages[0]?.id !== first) return;
		}
	}

	async #stepBackOnce(): Promise<void> {
		const run = this.#run;
		if (!run || this.reachedStart) return;
		// Messages that left the live log wait for a join (a background one failed): it goes first,
		// since what it fetches lies between them and the live log, below the device's run.
		if (!this.#joined && this.#retained.length > 0 && navigator.onLine) return this.#join();
		if (this.#loadedMinOrder > run.minOrder) {
			const chunk = await this.#cache.readBefore(this.roomId, this.#loadedMinOrder, CACHE_CHUNK);
			if (chunk.length > 0) {
				this.#loaded = [...chunk.map((m) => m.message), ...this.#loaded];
				this.#loadedMinOrder = chunk[0].order;
				this.#publish();
				return;
			}
			this.#loadedMinOrder = run.minOrder;
		}
		if (!this.#joined) return this.#join();
		await this.#fetchOlderPage(run);
	}

	async #fetchOlderPage(run: HistoryRun): Promise<void> {
		let page;
		try {
			page = parseMessagesPage(await getMessagesPage(this.roomId, run.cursor, HISTORY_PAGE_LIMIT));
		} catch (error) {
			// A cursor from an older server version: start the run again from the live log.
			if (error instanceof ApiError && error.code === 'invalid_cursor') return this.#restart();
			throw error;
		}
		if (this.#destroyed) return;
		const known = new Set(this.#loaded.map((m) => m.id));
		const older = page.messages.filter((m) => !known.has(m.id));
		const after = await this.#cache.prepend(this.roomId, run.cursor, older, page.nextBefore);
		this.#run = after;
		// Another tab stored this page first: read it from the device on the next step.
		if (after.cursor === page.nextBefore && after.minOrder <= this.#loadedMinOrder) {
			this.#loaded = [...older, ...this.#loaded];
			this.#loadedMinOrder = after.minOrder;
		}
		this.#publish();
	}

	/**
	 * Joins the device's run to the live log: reads the page just before the live log's first
	 * message (`beforeId`), then walks older pages until they meet the run's newest messages,
	 * storing what lies between. A run that is not met within a while (the device was away through
	 * a lot of compaction) is replaced. When the server does not know that message as live (it was
	 * compacted meanwhile), the walk starts from the newest page instead and skips the live log.
	 * Retained messages lie between the run and the live log: the walk goes back at least to the
	 * oldest of them, so they and anything compacted unseen around them land in the room's order.
	 */
	async #join(): Promise<void> {
		if (this.#joined) return;
		if (!navigator.onLine) throw notConnected();
		if (!this.#source.synced()) {
			let timer: ReturnType<typeof setTimeout> | undefined;
			const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, SYNC_WAIT_MS)));
			await Promise.race([this.#source.whenSynced(), timeout]);
			clearTimeout(timer);
			if (!this.#source.synced()) throw notConnected();
		}
		if (this.#destroyed) return;
		const live = this.#source.live();
		const liveIds = new Set(live.map((m) => m.id));
		const runIds = new Set(this.#loaded.map((m) => m.id));
		// Retained so far: older than the live log just read. The oldest not yet in the run is how
		// far back the walk has to go, within a page budget that grows with them.
		const retainedBefore = this.#retained.length;
		const mustReach = this.#retained.find((m) => !runIds.has(m.id))?.id ?? null;
		let reached = mustReach === null;
		let first: ParsedPage | null = null;
		if (live.length > 0) {
			try {
				first = parseMessagesPage(await getMessagesPageBeforeId(this.roomId, live[0].id, HISTORY_PAGE_LIMIT));
			} catch (error) {
				if (!(error instanceof ApiError && error.code === 'invalid_cursor')) throw error;
			}
			if (this.#destroyed) return;
		}
		// From the live log's start, every page is history; from the newest page, the walk first
		// crosses the live log.
		const maxPages =
			(first ? JOIN_EXTRA_PAGES : Math.ceil(live.length / HISTORY_PAGE_LIMIT) + JOIN_EXTRA_PAGES) +
			Math.ceil(retainedBefore / HISTORY_PAGE_LIMIT);
		let stretch: HistoryMessage[] = [];
		let cursor: string | null = null;
		let sawLive = first !== null;
		for (let pages = 1; ; pages += 1) {
			const page: ParsedPage = first ?? parseMessagesPage(await getMessagesPage(this.roomId, cursor, HISTORY_PAGE_LIMIT));
			first = null;
			if (this.#destroyed) return;
			const firstLive = page.messages.findIndex((m) => liveIds.has(m.id));
			if (firstLive >= 0) sawLive = true;
			// Before the walk meets the live log, a page holds only what arrived since the sync.
			const older = firstLive >= 0 ? page.messages.slice(0, firstLive) : sawLive || pages > 1 || liveIds.size === 0 ? page.messages : [];
			stretch = [...older, ...stretch];
			reached ||= older.some((m) => m.id === mustReach);
			if (runIds.size > 0) {
				const meet = stretch.findLastIndex((m) => runIds.has(m.id));
				if (meet >= 0) {
					await this.#append(stretch.slice(meet + 1));
					break;
				}
			} else if (stretch.length > 0 && reached) {
				await this.#replace(stretch, page.nextBefore);
				break;
			}
			if (page.nextBefore === null || pages >= maxPages) {
				// Given up short of the oldest retained ones: those older than the stretch leave the
				// screen (the run's cursor leads back to them), so nothing shows out of order.
				if (!reached) {
					const kept = new Set(stretch.map((m) => m.id));
					this.#retained = [...this.#retained.slice(0, retainedBefore).filter((m) => kept.has(m.id)), ...this.#retained.slice(retainedBefore)];
				}
				await this.#replace(stretch, page.nextBefore);
				break;
			}
			cursor = page.nextBefore;
		}
		this.#joined = true;
		await this.#storeRetained();
	}

	/**
	 * Moves the retained messages into the run (they stay on screen throughout). Those a join
	 * already placed are dropped; the rest left the live log after it looked, so they are newer.
	 */
	async #storeRetained(): Promise<void> {
		const retained = this.#retained;
		if (retained.length === 0) return;
		const placed = new Set(this.#loaded.map((m) => m.id));
		await this.#append(retained.filter((m) => !placed.has(m.id)));
		this.#retained = this.#retained.slice(retained.length);
		this.#publish();
	}

	async #append(messages: readonly HistoryMessage[]): Promise<void> {
		if (messages.length > 0) this.#run = await this.#cache.append(this.roomId, messages);
		const known = new Set(this.#loaded.map((m) => m.id));
		const fresh = messages.filter((m) => !known.has(m.id));
		if (fresh.length > 0) {
			this.#loaded = [...this.#loaded, ...fresh];
			if (this.#loadedMinOrder === Number.POSITIVE_INFINITY && this.#run) this.#loadedMinOrder = this.#run.minOrder;
		}
		this.#publish();
	}

	async #replace(messages: HistoryMessage[], cursor: string | null): Promise<void> {
		this.#run = await this.#cache.replace(this.roomId, messages, cursor);
		this.#loaded = messages;
		this.#loadedMinOrder = this.#run.minOrder;
		this.#publish();
	}

	async #restart(): Promise<void> {
		await this.#cache.forgetRoom(this.roomId);
		this.#run = await this.#cache.readRun(this.roomId);
		this.#loaded = [];
		this.#loadedMinOrder = Number.POSITIVE_INFINITY;
		this.#joined = false;
		this.#publish();
	}
}
