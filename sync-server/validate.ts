/**
 * Decides whether one client update may enter a room. Yjs lets any writer change anything, so
 * the relay decodes every update and admits it only when each part is something the sender may
 * do (CONTRACT.md, "The room document"):
 *  - append plain-JSON messages to `messages` whose `author` is the sender, with fresh ULID ids;
 *  - write (and overwrite) the sender's own key of `reads` and `delivered`;
 *  - edit own messages (`edits`), delete own messages or, as a room admin, anyone's (`deletions`);
 *  - repeat deletions the room already has (a client's sync step 2 carries its whole delete set).
 * Nothing else: no other root types, no nested types, no removing messages, no other keys.
 * The cost is proportional to the update, not to the document.
 */
import * as Y from 'yjs';
import { checkUpdateShape, ShapeError } from './update-shape';
import {
	checkDeletion,
	checkEdit,
	checkMessage,
	DELETIONS_KEY,
	EDITS_KEY,
	isUlid,
	MESSAGES_KEY,
	PER_USER_KEYS,
	READS_KEY,
	type ChatMessage,
	type MessageProblem
} from '../src/lib/shared/schema';

export type UpdateProblem =
	| 'malformed'
	| 'gc_or_skip'
	| 'missing_dependency'
	| 'unknown_parent'
	| 'nested_type'
	| 'foreign_client_id'
	| 'bad_content'
	| 'duplicate_id'
	| 'other_users_key'
	| 'forbidden_delete'
	| 'unknown_message'
	| 'unsupported_content'
	| 'not_your_message'
	| MessageProblem;

export interface Rejection {
	problem: UpdateProblem;
	detail: string;
}

export interface RoomIndex {
	/** Message id → author, for every message the live document holds. */
	messageAuthors: Map<string, string>;
	/** Ids of messages compaction moved into history: taken, and no longer editable here. */
	sealedIds: Set<string>;
	/** Yjs client id → the account that first used it in this room. */
	clientOwners: Map<number, string>;
	/** Whether an account may delete others' messages (room admins). */
	isAdmin(userId: string): boolean;
}

/** What an admitted update adds, filled in by validateUpdate. */
export interface Admitted {
	messages: ChatMessage[];
	clientIds: number[];
	readId: string | null;
	/** False when the update holds nothing the room lacks (a resync repeating known state). */
	changes: boolean;
	/** Client id → the clock after its last struct in the update (for durable acknowledgements). */
	clocks: Map<number, number>;
	/**
	 * Some struct of the update is (partly) in the room already. Such an update is not forwarded
	 * as sent: its repeated items may refer to items only the relay has.
	 */
	repeats: boolean;
}

export function emptyAdmitted(): Admitted {
	return { messages: [], clientIds: [], readId: null, changes: false, clocks: new Map(), repeats: false };
}

interface Place {
	root: string | null;
	key: string | null;
}

type DecodedStruct = Y.Item | Y.GC | Y.Skip;
type DecodedDeleteSet = { clients: Map<number, Array<{ clock: number; len: number }>> };

/** Whether the delete set deletes every clock of [clock, clock + len) of `client`. */
function coversRange(ds: DecodedDeleteSet, client: number, clock: number, len: number): boolean {
	let at = clock;
	const end = clock + len;
	const ranges = [...(ds.clients.get(client) ?? [])].sort((a, b) => a.clock - b.clock);
	for (const range of ranges) {
		if (range.clock > at) break;
		at = Math.max(at, range.clock + range.len);
		if (at >= end) return true;
	}
	return at >= end;
}

type PlaceResult = Place | 'nested' | 'unknown';

/** Longest chain of origins followed inside one update (real chains are a few links long). */
const ORIGIN_CHAIN_MAX = 10_000;

/**
 * Where an item lives: its root type and map key, as Yjs's integrate decides — from its parent,
 * else from its left origin. A right origin, when given, must exist and live in the same place:
 * Yjs would otherwise park the item as pending forever, or link it into another list.
 */
function placeOf(
	item: Y.Item,
	doc: Y.Doc,
	pending: Map<number, DecodedStruct[]>,
	memo: Map<Y.Item, PlaceResult> = new Map(),
	depth = 0
): PlaceResult {
	const known = memo.get(item);
	if (known !== undefined) return known;
	if (depth > ORIGIN_CHAIN_MAX) return 'unknown';
	memo.set(item, 'unknown'); // a cycle of origins resolves to nothing
	let result: PlaceResult | undefined;
	const parent = item.parent as unknown;
	if (parent instanceof Y.AbstractType) {
		result = parent._item !== null ? 'nested' : { root: rootName(doc, parent), key: item.parentSub };
	} else if (typeof parent === 'string') {
		result = { root: parent, key: item.parentSub };
	} else if (parent !== null) {
		result = 'nested'; // a parent given by id: an item of a nested type
	} else {
		for (const id of [item.origin, item.rightOrigin]) {
			if (id === null) continue;
			const target = findStruct(doc, pending, id);
			const place: PlaceResult = target instanceof Y.Item ? placeOf(target, doc, pending, memo, depth + 1) : 'unknown';
			if (typeof place === 'string') {
				result = place;
				break;
			}
			if (result === undefined) result = place;
			else if (typeof result !== 'string' && (result.root !== place.root || result.key !== place.key)) {
				result = 'unknown';
				break;
			}
		}
	}
	const resolved = result ?? 'unknown';
	memo.set(item, resolved);
	return resolved;
}

function dependenciesExist(item: Y.Item, doc: Y.Doc, pending: Map<number, DecodedStruct[]>): boolean {
	for (const id of [item.origin, item.rightOrigin, item.parent as unknown]) {
		if (id instanceof Y.ID && findStruct(doc, pending, id) === null) return false;
	}
	return true;
}

function rootName(doc: Y.Doc, type: Y.AbstractType<unknown>): string | null {
	// Root types are few (the schema has two), so a scan is cheaper than keeping a reverse map.
	for (const [name, candidate] of doc.share) if (candidate === type) return name;
	return null;
}

function findStruct(doc: Y.Doc, pending: Map<number, DecodedStruct[]>, id: Y.ID): DecodedStruct | null {
	if (id.clock < Y.getState(doc.store, id.client)) {
		return Y.getItem(doc.store, id) as DecodedStruct;
	}
	for (const struct of pending.get(id.client) ?? []) {
		if (struct.id.clock <= id.clock && id.clock < struct.id.clock + struct.length) return struct;
	}
	return null;
}

/**
 * Checks `update` (v1 encoding) from `userId` against the room's current state. Returns null when
 * the whole update is allowed; any disallowed part rejects all of it.
 * On success, returns via `admitted` the message ids and client ids the update adds.
 */
export function validateUpdate(
	doc: Y.Doc,
	index: RoomIndex,
	userId: string,
	update: Uint8Array,
	now: number,
	admitted: Admitted
): Rejection | null {
	let decoded: { structs: DecodedStruct[]; ds: DecodedDeleteSet };
	try {
		checkUpdateShape(update);
	} catch (error) {
		if (error instanceof ShapeError) {
			return {
				problem: error.problem === 'content_kind' ? 'unsupported_content' : 'malformed',
				detail: `${error.problem}: ${error.message}`
			};
		}
		throw error;
	}
	try {
		decoded = Y.decodeUpdate(update) as unknown as typeof decoded;
	} catch (error) {
		return { problem: 'malformed', detail: error instanceof Error ? error.message : 'undecodable update' };
	}
	// First pass: every struct of the update, so origins may point anywhere inside it (a client
	// relaying another tab's offline messages sends several clients' structs in any order).
	const pending = new Map<number, DecodedStruct[]>();
	const places = new Map<Y.Item, PlaceResult>();
	for (const struct of decoded.structs) {
		const list = pending.get(struct.id.client) ?? [];
		list.push(struct);
		pending.set(struct.id.client, list);
		const end = struct.id.clock + struct.length;
		if (end > (admitted.clocks.get(struct.id.client) ?? 0)) admitted.clocks.set(struct.id.client, end);
	}
	const nextClock = new Map<number, number>();
	const newIds = new Set<string>();
	const newMessages: ChatMessage[] = [];
	for (const struct of decoded.structs) {
		const client = struct.id.client;
		const owner = index.clientOwners.get(client);
		if (owner !== undefined && owner !== userId) {
			return { problem: 'foreign_client_id', detail: `client id ${client} belongs to another account` };
		}
		if (!(struct instanceof Y.Item)) {
			return { problem: 'gc_or_skip', detail: 'clients may not send garbage-collected or skipped ranges' };
		}
		const expected = nextClock.get(client) ?? Y.getState(doc.store, client);
		if (struct.id.clock > expected) {
			return { problem: 'missing_dependency', detail: `client ${client} jumps from clock ${expected} to ${struct.id.clock}` };
		}
		const end = struct.id.clock + struct.length;
		nextClock.set(client, Math.max(expected, end));
		if (struct.id.clock < expected) admitted.repeats = true;
		if (end <= expected) {
			// Already in the room, so Yjs will not integrate it — but it still resolves its origins
			// first, and one it cannot find parks the rest of the update as pending.
			if (!dependenciesExist(struct, doc, pending)) {
				return { problem: 'missing_dependency', detail: `a repeated item of client ${client} refers to unknown items` };
			}
			continue;
		}
		const offset = expected - struct.id.clock;
		const rejection = checkItem(struct, offset, doc, pending, places, decoded.ds, index, userId, now, newIds, newMessages, admitted);
		if (rejection) return rejection;
		admitted.changes = true;
		if (!admitted.clientIds.includes(client)) admitted.clientIds.push(client);
	}
	for (const [client, ranges] of decoded.ds.clients) {
		for (const range of ranges) {
			if (range.len < 1) return { problem: 'malformed', detail: 'an empty delete range' };
			const outcome = checkDeleteRange(doc, pending, index, userId, client, range.clock, range.len);
			if (outcome === 'new') admitted.changes = true;
			else if (outcome !== 'known') return outcome;
		}
	}
	admitted.messages.push(...newMessages);
	return null;
}

function checkItem(
	item: Y.Item,
	offset: number,
	doc: Y.Doc,
	pending: Map<number, DecodedStruct[]>,
	places: Map<Y.Item, PlaceResult>,
	ds: DecodedDeleteSet,
	index: RoomIndex,
	userId: string,
	now: number,
	newIds: Set<string>,
	newMessages: ChatMessage[],
	admitted: Admitted
): Rejection | null {
	const place = placeOf(item, doc, pending, places);
	if (place === 'nested') return { problem: 'nested_type', detail: 'nested shared types are not part of the schema' };
	if (place === 'unknown' || place.root === null) {
		return { problem: 'unknown_parent', detail: 'the item attaches to nothing the room knows' };
	}
	const content = item.content;
	if (place.root === MESSAGES_KEY) {
		if (place.key !== null) return { problem: 'bad_content', detail: 'messages is an array, not a map' };
		if (content instanceof Y.ContentDeleted && coversRange(ds, item.id.client, item.id.clock + offset, item.length - offset)) {
			// A tombstone: an own item the relay refused earlier and told this client to delete.
			// It carries nothing, and it keeps the client's clocks contiguous so its later
			// messages can be admitted.
			return null;
		}
		if (!(content instanceof Y.ContentAny)) {
			return { problem: 'bad_content', detail: 'messages holds plain JSON objects only' };
		}
		for (const value of content.arr.slice(offset)) {
			const problem = checkMessage(value, now);
			if (problem) return { problem, detail: `message rejected: ${problem}` };
			const message = value as { id: string; author: string };
			if (message.author !== userId) {
				return { problem: 'bad_author', detail: 'a message must carry its sender as author' };
			}
			if (index.messageAuthors.has(message.id) || index.sealedIds.has(message.id) || newIds.has(message.id)) {
				return { problem: 'duplicate_id', detail: `message id ${message.id} is already used` };
			}
			newIds.add(message.id);
			newMessages.push(value as ChatMessage);
		}
		return null;
	}
	if (PER_USER_KEYS.includes(place.root)) {
		if (place.key !== userId) return { problem: 'other_users_key', detail: `${place.root}: only your own key` };
		if (content instanceof Y.ContentDeleted) return null; // an own value overwritten before it was sent
		if (!(content instanceof Y.ContentAny) || content.arr.length !== 1 || !isUlid(content.arr[0])) {
			return { problem: 'bad_content', detail: `${place.root} values are message ids` };
		}
		if (place.root === READS_KEY) admitted.readId = content.arr[0] as string;
		return null;
	}
	if (place.root === EDITS_KEY || place.root === DELETIONS_KEY) {
		const permission = mayChangeMessage(place.root, place.key, index, userId, newMessages);
		if (permission) return permission;
		if (content instanceof Y.ContentDeleted) return null; // an own value overwritten before it was sent
		if (!(content instanceof Y.ContentAny) || content.arr.length !== 1) {
			return { problem: 'bad_content', detail: `${place.root} values are single objects` };
		}
		const problem = place.root === EDITS_KEY ? checkEdit(content.arr[0], now) : checkDeletion(content.arr[0], userId, now);
		return problem ? { problem, detail: `${place.root} value rejected: ${problem}` } : null;
	}
	return { problem: 'unknown_parent', detail: `"${place.root}" is not part of the room schema` };
}

/** Edits are the author's; deletions the author's or a room admin's. */
function mayChangeMessage(
	root: string,
	messageId: string | null,
	index: RoomIndex,
	userId: string,
	newMessages: ChatMessage[]
): Rejection | null {
	const author = messageId === null ? undefined : (index.messageAuthors.get(messageId) ?? newMessages.find((m) => m.id === messageId)?.author);
	if (author === undefined) return { problem: 'unknown_message', detail: `${root}: no such message in this room` };
	if (author === userId) return null;
	if (root === DELETIONS_KEY && index.isAdmin(userId)) return null;
	return { problem: 'not_your_message', detail: root === EDITS_KEY ? 'only the author edits a message' : 'only the author or an admin deletes a message' };
}

/** Whether the sender may replace (and so delete) the value at `place`. */
function mayRetire(place: PlaceResult, index: RoomIndex, userId: string): boolean {
	if (place === 'nested' || place === 'unknown' || place.root === null) return false;
	if (PER_USER_KEYS.includes(place.root)) return place.key === userId;
	if (place.root === EDITS_KEY || place.root === DELETIONS_KEY) {
		return mayChangeMessage(place.root, place.key, index, userId, []) === null;
	}
	return false;
}

/**
 * A deletion is allowed when the room already has it ('known'), or when it retires an own `reads`
 * value ('new').
 */
function checkDeleteRange(
	doc: Y.Doc,
	pending: Map<number, DecodedStruct[]>,
	index: RoomIndex,
	userId: string,
	client: number,
	clock: number,
	len: number
): Rejection | 'known' | 'new' {
	const end = clock + len;
	let at = clock;
	let outcome: 'known' | 'new' = 'known';
	while (at < end) {
		const id = Y.createID(client, at);
		const struct = findStruct(doc, pending, id);
		if (struct === null) return { problem: 'forbidden_delete', detail: 'deletes something the room does not have' };
		const inRoom = at < Y.getState(doc.store, client);
		if (struct instanceof Y.Item) {
			const alreadyDeleted = inRoom && struct.deleted;
			const newTombstone = !inRoom && struct.content instanceof Y.ContentDeleted;
			if (newTombstone) outcome = 'new';
			else if (!alreadyDeleted) {
				const place = placeOf(struct, doc, pending);
				if (!mayRetire(place, index, userId)) return { problem: 'forbidden_delete', detail: 'only the relay removes messages' };
				outcome = 'new';
			}
		} else if (!inRoom) {
			return { problem: 'forbidden_delete', detail: 'deletes something the room does not have' };
		}
		at = struct.id.clock + struct.length;
	}
	return outcome;
}
