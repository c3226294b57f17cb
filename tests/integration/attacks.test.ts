/**
 * Attacks on a running relay by real clients (stock providers and raw frames over `ws`). Each is
 * refused, and the victim's document, the stored state and the history API stay as they were.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { ulid } from 'ulid';
import { pageMessages } from '../../src/lib/server/messages';
import { DocStore } from '../../sync-server/doc-store';
import { CloseCode, RELAY_MAX_FRAME_BYTES } from '../../sync-server/protocol';
import { RawClient, updateOf } from '../helpers/attacker';
import { chatMessage, RelayHarness, type TestAccount } from '../helpers/relay';
import { waitFor } from '../helpers/wait';

let h: RelayHarness;
let alice: TestAccount; // the attacker, a member of the room
let bob: TestAccount; // the victim
let roomId: string;
let bobDoc: Y.Doc;
let bobAwareness: import('y-protocols/awareness').Awareness;
let original: ReturnType<typeof chatMessage>;

beforeAll(async () => {
	h = await RelayHarness.start();
});

afterAll(async () => {
	await h.close();
});

beforeEach(async () => {
	alice = await h.account();
	bob = await h.account();
	roomId = await h.room([bob, alice]);
	const b = h.provider(bob, roomId);
	bobDoc = b.doc;
	bobAwareness = b.provider.awareness;
	original = chatMessage(bob.id, "bob's original");
	bobDoc.getArray('messages').push([original]);
	bobDoc.getMap('reads').set(bob.id, original.id);
	bobAwareness.setLocalState({ user: { id: bob.id, name: 'bob' }, typing: false });
	await waitFor(async () => (await pageMessages(h.db, h.history, roomId, null, 10)).messages.length === 1, 5000, 'bob stored');
});

function roomJson(doc: Y.Doc) {
	return {
		messages: doc.getArray('messages').toJSON(),
		reads: doc.getMap('reads').toJSON(),
		edits: doc.getMap('edits').toJSON(),
		deletions: doc.getMap('deletions').toJSON()
	};
}

async function snapshot() {
	const stored = new Y.Doc();
	Y.applyUpdate(stored, (await new DocStore(h.db).load(roomId)).state);
	return { bob: roomJson(bobDoc), stored: roomJson(stored), history: await pageMessages(h.db, h.history, roomId, null, 100) };
}

async function attacker(): Promise<RawClient> {
	const client = new RawClient(`${h.url}/${roomId}?token=${h.token(alice, roomId)}&ext=1`);
	await client.opened;
	await waitFor(() => client.doc.getArray('messages').length === 1, 5000, 'attacker synced');
	return client;
}

/** Runs `attack`, waits for the relay's verdict, and proves nothing changed anywhere. */
async function expectRefused(attack: (client: RawClient) => void, problem: string | RegExp): Promise<RawClient> {
	const before = await snapshot();
	const client = await attacker();
	attack(client);
	await waitFor(() => client.rejections.length > 0 || client.closeCode !== null, 5000, 'verdict');
	expect(client.rejections[0]?.code ?? client.closeReason).toMatch(problem);
	expect(await snapshot()).toEqual(before);
	return client;
}

describe('attacks on the room document', () => {
	it('a message with another user as author', async () => {
		const client = await expectRefused(
			(c) => c.sendUpdate(updateOf(c.fork(), (d) => d.getArray('messages').push([chatMessage(bob.id, 'forged')]))),
			'bad_author'
		);
		// Writes in another's name are what a reader holds after the relay lost them: start over.
		expect(client.closeCode).toBe(CloseCode.resync);
	});

	it('a second message reusing an existing id', async () => {
		await expectRefused(
			(c) => c.sendUpdate(updateOf(c.fork(), (d) => d.getArray('messages').push([{ ...chatMessage(alice.id, 'copy'), id: original.id }]))),
			'duplicate_id'
		);
	});

	it("deleting another user's message", async () => {
		await expectRefused((c) => c.sendUpdate(updateOf(c.fork(), (d) => d.getArray('messages').delete(0, 1))), 'forbidden_delete');
	});

	it("rewriting another user's message", async () => {
		await expectRefused(
			(c) =>
				c.sendUpdate(
					updateOf(c.fork(), (d) => {
						d.getArray('messages').delete(0, 1);
						d.getArray('messages').insert(0, [{ ...original, text: 'rewritten' }]);
					})
				),
			/forbidden_delete|bad_author|duplicate_id/
		);
	});

	it("editing another user's message through the edits map", async () => {
		await expectRefused(
			(c) => c.sendUpdate(updateOf(c.fork(), (d) => d.getMap('edits').set(original.id, { text: 'edited', ts: Date.now() }))),
			'not_your_message'
		);
	});

	it("writing another user's reads key", async () => {
		await expectRefused((c) => c.sendUpdate(updateOf(c.fork(), (d) => d.getMap('reads').set(bob.id, ulid()))), 'other_users_key');
	});

	it("reusing another account's Yjs client id", async () => {
		await expectRefused(
			(c) => c.sendUpdate(updateOf(c.fork(bobDoc.clientID), (d) => d.getMap('reads').set(alice.id, original.id))),
			'foreign_client_id'
		);
	});

	it('an oversized message', async () => {
		await expectRefused(
			(c) => c.sendUpdate(updateOf(c.fork(), (d) => d.getArray('messages').push([chatMessage(alice.id, 'x'.repeat(4001))]))),
			'text_too_long'
		);
	});

	it('an oversized frame (closed with 1009)', async () => {
		const client = await expectRefused((c) => c.sendFrame(new Uint8Array(RELAY_MAX_FRAME_BYTES + 1)), /.*/);
		expect(client.closeCode).toBe(CloseCode.tooLarge);
	});

	it('the known malicious updates (yjs issue 687 shapes) and friends', async () => {
		const crafted: Array<[string, Uint8Array]> = [
			['issue 687 v2 run-length bomb', Buffer.from('00010000000001000100010200001602000001fdffffffff7f0000', 'hex')],
			['struct count far beyond the bytes', new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 7, 0, 0x88])],
			['a garbage-collected run of 2^40', new Uint8Array([1, 1, 7, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0])],
			['a deleted run of 2^40', new Uint8Array([1, 1, 7, 0, 0x01, 1, 8, 0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x73, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0])],
			['a skip run', new Uint8Array([1, 1, 7, 0, 10, 0xff, 0xff, 0x7f, 0])],
			['values nested 10,000 deep', new Uint8Array([1, 1, 7, 0, 0x08, 1, 8, ...Buffer.from('messages'), 1, ...new Array(10_000).fill([117, 1]).flat(), 126, 0])],
			['a delete set with a huge range', new Uint8Array([0, 1, 7, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f])]
		];
		for (const [name, bytes] of crafted) {
			const client = await expectRefused((c) => c.sendUpdate(bytes), /malformed|unsupported_content|bad_content|forbidden_delete|unknown_parent/);
			expect(client.closeCode, name).toBeNull(); // refused with an error frame, the socket stays usable
			client.close();
		}
		// The relay is alive and the room still works.
		const legit = h.provider(alice, roomId);
		legit.doc.getArray('messages').push([chatMessage(alice.id, 'still works')]);
		await waitFor(() => bobDoc.getArray<{ text: string }>('messages').toArray().some((m) => m.text === 'still works'), 5000, 'room alive');
	});

	it('a flood of updates is rate limited, then cut off (4429)', async () => {
		const client = await attacker();
		const doc = client.fork();
		for (let i = 0; i < 400 && client.closeCode === null; i++) {
			client.sendUpdate(updateOf(doc, (d) => d.getMap('reads').set(alice.id, ulid())));
		}
		await client.closed;
		expect(client.rejections.some((r) => r.code === 'rate_limited')).toBe(true);
		expect(client.closeCode).toBe(CloseCode.tooManyErrors);
		expect(roomJson(bobDoc).messages).toEqual([original]);
	});
});

describe('after a refusal', () => {
	it("brings the sender's document back in line, and its later messages still get through", async () => {
		const mallory = h.provider(alice, roomId, { ext: '1' });
		await waitFor(() => mallory.provider.synced, 5000, 'synced');
		const before = await snapshot();
		mallory.doc.getArray('messages').push([chatMessage(alice.id, 'x'.repeat(4001))]);
		// The relay deletes the refused item in the sender's copy: it shows what the room shows.
		await waitFor(() => roomJson(mallory.doc).messages.length === 1, 5000, 'refused message reverted');
		expect(roomJson(mallory.doc).messages).toEqual([original]);
		expect(await snapshot()).toEqual(before);
		// Same client, same socket: an honest message afterwards is admitted and reaches bob.
		mallory.doc.getArray('messages').push([chatMessage(alice.id, 'sorry')]);
		await waitFor(() => roomJson(bobDoc).messages.some((m) => (m as { text: string }).text === 'sorry'), 5000, 'later message arrives');
		expect(roomJson(bobDoc).messages.map((m) => (m as { text: string }).text)).toEqual(["bob's original", 'sorry']);
	});
});

describe('attacks on awareness', () => {
	function awarenessUpdate(client: number, clock: number, state: unknown): Uint8Array {
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, 1);
		encoding.writeVarUint(encoder, client);
		encoding.writeVarUint(encoder, clock);
		encoding.writeVarString(encoder, JSON.stringify(state));
		return encoding.toUint8Array(encoder);
	}

	it('claiming to be another user: the relay stamps the real account', async () => {
		const client = await attacker();
		client.sendAwareness(awarenessUpdate(424242, 1, { user: { id: bob.id, name: 'bob' }, typing: true }));
		await waitFor(() => bobAwareness.getStates().has(424242), 5000, 'bob sees the entry');
		expect(bobAwareness.getStates().get(424242)?.user).toEqual({ id: alice.id, name: alice.name });
	});

	it("removing or overwriting another client's entry", async () => {
		const client = await attacker();
		const bobClient = bobDoc.clientID;
		const observer = h.provider(alice, roomId);
		await waitFor(() => observer.provider.awareness.getStates().get(bobClient)?.user?.id === bob.id, 5000, 'observer sees bob');
		const clock = 1000;
		client.sendAwareness(awarenessUpdate(bobClient, clock, null));
		client.sendAwareness(awarenessUpdate(bobClient, clock + 1, { user: { id: bob.id, name: 'bob' }, typing: 'hijacked' }));
		// A marker from the attacker's own entry proves the relay has handled the frames before it.
		client.sendAwareness(awarenessUpdate(777, 1, { marker: true }));
		await waitFor(() => observer.provider.awareness.getStates().get(777)?.marker === true, 5000, 'marker');
		expect(observer.provider.awareness.getStates().get(bobClient)).toMatchObject({ user: { id: bob.id }, typing: false });
	});

	it('a flood of awareness is cut off (4429)', async () => {
		const client = await attacker();
		for (let i = 1; i < 500 && client.closeCode === null; i++) client.sendAwareness(awarenessUpdate(555, i, { typing: i % 2 === 0 }));
		expect(await client.closed).toBe(CloseCode.tooManyErrors);
	});

	it('an oversized awareness state is dropped', async () => {
		const client = await attacker();
		client.sendAwareness(awarenessUpdate(888, 1, { pad: 'x'.repeat(5000) }));
		client.sendAwareness(awarenessUpdate(889, 1, { marker: true }));
		await waitFor(() => bobAwareness.getStates().has(889), 5000, 'marker');
		expect(bobAwareness.getStates().has(888)).toBe(false);
	});
});
