import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { ulid } from 'ulid';
import { emptyAdmitted, validateUpdate, type RoomIndex } from '../../sync-server/validate';
import { MESSAGE_TEXT_MAX_CHARS, MESSAGE_TS_MAX_SKEW_MS } from '../../src/lib/shared/schema';

const ALICE = 'alice-id';
const BOB = 'bob-id';

function message(author: string, text = 'hi', overrides: Record<string, unknown> = {}) {
	return { id: ulid(), author, ts: Date.now(), kind: 'text', text, ...overrides };
}

/** A relay-side room and a way to make client updates against its current state. */
function setup() {
	const server = new Y.Doc();
	const admins = new Set<string>();
	const index: RoomIndex = { messageAuthors: new Map(), sealedIds: new Set(), clientOwners: new Map(), isAdmin: (id) => admins.has(id) };
	const client = (): Y.Doc => {
		const doc = new Y.Doc();
		Y.applyUpdate(doc, Y.encodeStateAsUpdate(server));
		return doc;
	};
	/** Runs `change` on a client copy and returns the update it produced. */
	const updateFrom = (doc: Y.Doc, change: (doc: Y.Doc) => void): Uint8Array => {
		const before = Y.encodeStateVector(doc);
		let captured: Uint8Array | null = null;
		const onUpdate = (u: Uint8Array) => (captured = captured ? Y.mergeUpdates([captured, u]) : u);
		doc.on('update', onUpdate);
		change(doc);
		doc.off('update', onUpdate);
		return captured ?? Y.encodeStateAsUpdate(doc, before);
	};
	const admit = (userId: string, update: Uint8Array) => {
		const admitted = emptyAdmitted();
		const rejection = validateUpdate(server, index, userId, update, Date.now(), admitted);
		if (!rejection) {
			for (const c of admitted.clientIds) index.clientOwners.set(c, userId);
			for (const m of admitted.messages) index.messageAuthors.set(m.id, m.author);
			Y.applyUpdate(server, update);
		}
		return { rejection, admitted };
	};
	return { server, index, admins, client, updateFrom, admit };
}

describe('update validation', () => {
	it('admits a message appended by its author', () => {
		const { client, updateFrom, admit, server } = setup();
		const doc = client();
		const m = message(ALICE, 'hello');
		const { rejection, admitted } = admit(ALICE, updateFrom(doc, (d) => d.getArray('messages').push([m])));
		expect(rejection).toBeNull();
		expect(admitted.messages.map((x) => x.id)).toEqual([m.id]);
		expect(server.getArray('messages').toJSON()).toEqual([m]);
	});

	it('refuses a message written as another author', () => {
		const { client, updateFrom, admit, server } = setup();
		const { rejection } = admit(ALICE, updateFrom(client(), (d) => d.getArray('messages').push([message(BOB)])));
		expect(rejection?.problem).toBe('bad_author');
		expect(server.getArray('messages').length).toBe(0);
	});

	it('refuses a second message reusing an existing id', () => {
		const { client, updateFrom, admit } = setup();
		const first = message(ALICE);
		expect(admit(ALICE, updateFrom(client(), (d) => d.getArray('messages').push([first]))).rejection).toBeNull();
		const copy = { ...message(ALICE), id: first.id };
		expect(admit(ALICE, updateFrom(client(), (d) => d.getArray('messages').push([copy]))).rejection?.problem).toBe('duplicate_id');
	});

	it('refuses the same id twice within one update', () => {
		const { client, updateFrom, admit } = setup();
		const m = message(ALICE);
		const { rejection } = admit(ALICE, updateFrom(client(), (d) => d.getArray('messages').push([m, { ...m }])));
		expect(rejection?.problem).toBe('duplicate_id');
	});

	it('refuses deleting or rewriting another user\'s message', () => {
		const { client, updateFrom, admit, server } = setup();
		expect(admit(BOB, updateFrom(client(), (d) => d.getArray('messages').push([message(BOB, 'original')]))).rejection).toBeNull();
		const deletion = updateFrom(client(), (d) => d.getArray('messages').delete(0, 1));
		expect(admit(ALICE, deletion).rejection?.problem).toBe('forbidden_delete');
		const rewrite = updateFrom(client(), (d) => {
			d.getArray('messages').delete(0, 1);
			d.getArray('messages').insert(0, [message(ALICE, 'rewritten')]);
		});
		expect(admit(ALICE, rewrite).rejection).not.toBeNull();
		expect((server.getArray('messages').get(0) as { text: string }).text).toBe('original');
	});

	it('refuses deleting even one\'s own message (only the relay removes entries)', () => {
		const { client, updateFrom, admit } = setup();
		admit(ALICE, updateFrom(client(), (d) => d.getArray('messages').push([message(ALICE)])));
		expect(admit(ALICE, updateFrom(client(), (d) => d.getArray('messages').delete(0, 1))).rejection?.problem).toBe('forbidden_delete');
	});

	it('admits writing and overwriting one\'s own reads key, offline overwrites included', () => {
		const { client, updateFrom, admit, server } = setup();
		const doc = client();
		const first = ulid();
		const second = ulid();
		expect(admit(ALICE, updateFrom(doc, (d) => d.getMap('reads').set(ALICE, first))).rejection).toBeNull();
		// Two overwrites before syncing: the update carries a deleted own value and a delete set.
		const offline = updateFrom(doc, (d) => {
			d.getMap('reads').set(ALICE, ulid());
			d.getMap('reads').set(ALICE, second);
		});
		const { rejection, admitted } = admit(ALICE, offline);
		expect(rejection).toBeNull();
		expect(admitted.readId).toBe(second);
		expect(server.getMap('reads').get(ALICE)).toBe(second);
	});

	it('refuses writing another user\'s reads key', () => {
		const { client, updateFrom, admit, server } = setup();
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('reads').set(BOB, ulid()))).rejection?.problem).toBe('other_users_key');
		expect(server.getMap('reads').has(BOB)).toBe(false);
	});

	it('refuses overwriting another user\'s reads value', () => {
		const { client, updateFrom, admit } = setup();
		admit(BOB, updateFrom(client(), (d) => d.getMap('reads').set(BOB, ulid())));
		// Alice's client deletes Bob's value by writing his key: the update holds her item and a delete of his.
		const { rejection } = admit(ALICE, updateFrom(client(), (d) => d.getMap('reads').set(BOB, ulid())));
		expect(rejection?.problem).toBe('other_users_key');
	});

	it('treats delivered like reads: own key only, message ids only', () => {
		const { client, updateFrom, admit, server } = setup();
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('delivered').set(ALICE, ulid()))).rejection).toBeNull();
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('delivered').set(BOB, ulid()))).rejection?.problem).toBe('other_users_key');
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('delivered').set(ALICE, 42))).rejection?.problem).toBe('bad_content');
		expect(server.getMap('delivered').has(BOB)).toBe(false);
	});

	it('lets authors edit their own messages and nobody else\'s', () => {
		const { client, updateFrom, admit, server } = setup();
		const mine = message(ALICE, 'typo');
		admit(ALICE, updateFrom(client(), (d) => d.getArray('messages').push([mine])));
		const edit = { text: 'fixed', ts: Date.now() };
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('edits').set(mine.id, edit))).rejection).toBeNull();
		expect(admit(BOB, updateFrom(client(), (d) => d.getMap('edits').set(mine.id, { text: 'hijacked', ts: Date.now() }))).rejection?.problem).toBe(
			'not_your_message'
		);
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('edits').set(ulid(), edit))).rejection?.problem).toBe('unknown_message');
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('edits').set(mine.id, { text: '', ts: 1 }))).rejection?.problem).toBe('bad_text');
		expect(server.getMap('edits').get(mine.id)).toEqual(edit);
	});

	it('lets authors and admins delete messages, and nobody else', () => {
		const { client, updateFrom, admit, admins, server } = setup();
		const bobs = message(BOB, 'spam');
		admit(BOB, updateFrom(client(), (d) => d.getArray('messages').push([bobs])));
		const asAlice = updateFrom(client(), (d) => d.getMap('deletions').set(bobs.id, { by: ALICE, ts: Date.now() }));
		expect(admit(ALICE, asAlice).rejection?.problem).toBe('not_your_message');
		expect(server.getMap('deletions').has(bobs.id)).toBe(false);
		admins.add(ALICE);
		expect(admit(ALICE, asAlice).rejection).toBeNull();
		expect(server.getMap('deletions').get(bobs.id)).toMatchObject({ by: ALICE });
		const forgedBy = updateFrom(client(), (d) => d.getMap('deletions').set(bobs.id, { by: ALICE, ts: Date.now() }));
		expect(admit(BOB, forgedBy).rejection?.problem).toBe('bad_author');
	});

	it('refuses root types outside the schema and nested types', () => {
		const { client, updateFrom, admit } = setup();
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('admin').set('x', 1))).rejection?.problem).toBe('unknown_parent');
		expect(admit(ALICE, updateFrom(client(), (d) => d.getText('messages2').insert(0, 'x'))).rejection?.problem).toBe('unsupported_content');
		expect(admit(ALICE, updateFrom(client(), (d) => d.getMap('other').set('x', ulid()))).rejection?.problem).toBe('unknown_parent');
		const nested = updateFrom(client(), (d) => d.getArray('messages').push([new Y.Map()]));
		expect(admit(ALICE, nested).rejection?.problem).toBe('unsupported_content');
	});

	it('refuses malformed messages: text too long, future ts, bad id, unknown kind, extra fields', () => {
		const { client, updateFrom, admit } = setup();
		const cases: Array<[Record<string, unknown>, string]> = [
			[{ text: 'x'.repeat(MESSAGE_TEXT_MAX_CHARS + 1) }, 'text_too_long'],
			[{ ts: Date.now() + MESSAGE_TS_MAX_SKEW_MS + 60_000 }, 'ts_in_future'],
			[{ id: 'not-a-ulid' }, 'bad_id'],
			[{ kind: 'html' }, 'bad_kind'],
			[{ text: '   ' }, 'bad_text'],
			[{ extra: true }, 'extra_fields']
		];
		for (const [overrides, problem] of cases) {
			const update = updateFrom(client(), (d) => d.getArray('messages').push([message(ALICE, 'ok', overrides)]));
			expect(admit(ALICE, update).rejection?.problem, JSON.stringify(overrides)).toBe(problem);
		}
	});

	it('binds a Yjs client id to the first account that used it', () => {
		const { client, updateFrom, admit } = setup();
		const doc = client();
		admit(ALICE, updateFrom(doc, (d) => d.getArray('messages').push([message(ALICE)])));
		// Bob sends an update under Alice's client id.
		const bobDoc = client();
		bobDoc.clientID = doc.clientID;
		const forged = updateFrom(bobDoc, (d) => d.getMap('reads').set(BOB, ulid()));
		expect(admit(BOB, forged).rejection?.problem).toBe('foreign_client_id');
	});

	it('refuses an update whose dependencies the room lacks (it would never become visible)', () => {
		const { client, updateFrom, admit } = setup();
		const doc = client();
		updateFrom(doc, (d) => d.getArray('messages').push([message(ALICE, 'first')]));
		const second = updateFrom(doc, (d) => d.getArray('messages').push([message(ALICE, 'second')]));
		expect(admit(ALICE, second).rejection?.problem).toBe('missing_dependency');
	});

	it('admits a resync that repeats known state, reporting no changes', () => {
		const { client, updateFrom, admit } = setup();
		const doc = client();
		admit(ALICE, updateFrom(doc, (d) => d.getArray('messages').push([message(ALICE)])));
		const { rejection, admitted } = admit(ALICE, Y.encodeStateAsUpdate(doc));
		expect(rejection).toBeNull();
		expect(admitted.changes).toBe(false);
	});

	it('tells a fresh update from one that repeats structs the room has', () => {
		const { client, updateFrom, admit } = setup();
		const doc = client();
		const fresh = admit(ALICE, updateFrom(doc, (d) => d.getArray('messages').push([message(ALICE, 'first')])));
		expect(fresh.rejection).toBeNull();
		expect(fresh.admitted.repeats).toBe(false);
		updateFrom(doc, (d) => d.getArray('messages').push([message(ALICE, 'second')]));
		const resync = admit(ALICE, Y.encodeStateAsUpdate(doc));
		expect(resync.rejection).toBeNull();
		expect(resync.admitted).toMatchObject({ changes: true, repeats: true });
	});

	it('admits an update whose items point at items later in the same update (another tab\'s offline messages)', () => {
		const { client, updateFrom, admit, server } = setup();
		const tabA = client();
		const tabB = client();
		// Give tab B the larger client id so its items are encoded first, before tab A's they follow.
		tabA.clientID = 1000;
		tabB.clientID = 2000;
		updateFrom(tabA, (d) => d.getArray('messages').push([message(ALICE, 'from tab A')]));
		Y.applyUpdate(tabB, Y.encodeStateAsUpdate(tabA));
		updateFrom(tabB, (d) => d.getArray('messages').push([message(ALICE, 'from tab B')]));
		const { rejection } = admit(ALICE, Y.encodeStateAsUpdate(tabB, Y.encodeStateVector(server)));
		expect(rejection).toBeNull();
		expect(server.getArray<{ text: string }>('messages').toArray().map((m) => m.text)).toEqual(['from tab A', 'from tab B']);
	});

	it('refuses an item whose origin is itself', () => {
		const { admit } = setup();
		// Hand-built v1 update: 1 client, 1 struct, client 7 clock 0, info = origin + ContentAny,
		// origin (7, 0) — the item itself — then one string value, and an empty delete set.
		const update = new Uint8Array([1, 1, 7, 0, 0x88, 7, 0, 1, 119, 1, 120, 0]);
		expect(admit(ALICE, update).rejection?.problem).toBe('unknown_parent');
	});

	it('refuses v2-encoded updates', () => {
		const { admit } = setup();
		const doc = new Y.Doc();
		doc.getArray('messages').push([message(ALICE)]);
		expect(admit(ALICE, Y.encodeStateAsUpdateV2(doc)).rejection?.problem).toMatch(/malformed|unsupported_content/);
	});

	it('refuses undecodable bytes', () => {
		const { admit } = setup();
		expect(admit(ALICE, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])).rejection?.problem).toBe('malformed');
	});
});
