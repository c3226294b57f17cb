import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import * as syncProtocol from 'y-protocols/sync';
import { publishControl } from '../../src/lib/server/bus/control';
import { removeMember } from '../../src/lib/server/rooms';
import { pageMessages } from '../../src/lib/server/messages';
import { CloseCode, MessageType, RELAY_MAX_FRAME_BYTES, ROOM_UPDATE_ROWS_MERGE_AT } from '../../sync-server/protocol';
import { RawClient, updateOf } from '../helpers/attacker';
import { chatMessage, RelayHarness, TEST_ORIGIN, upgradeStatus, type TestAccount } from '../helpers/relay';
import { holdsFor, waitFor } from '../helpers/wait';

let h: RelayHarness;

beforeAll(async () => {
	h = await RelayHarness.start();
});

afterAll(async () => {
	await h.close();
});

function texts(doc: Y.Doc): string[] {
	return doc.getArray<{ text: string }>('messages').toArray().map((m) => m.text);
}

async function twoMembers(): Promise<{ alice: TestAccount; bob: TestAccount; roomId: string }> {
	const alice = await h.account();
	const bob = await h.account();
	return { alice, bob, roomId: await h.room([alice, bob]) };
}

function closeEvent(provider: { ws: WebSocket | null } & { on: Function }): Promise<{ code: number; reason: string }> {
	return new Promise((resolve) => {
		(provider as any).on('connection-close', (event: any) => resolve({ code: event?.code, reason: String(event?.reason ?? '') }));
	});
}

describe('relay sync', () => {
	it('lets two stock WebsocketProviders exchange messages in a room', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const a = h.provider(alice, roomId);
		const b = h.provider(bob, roomId);
		a.doc.getArray('messages').push([chatMessage(alice.id, 'hello bob')]);
		await waitFor(() => texts(b.doc).includes('hello bob'), 5000, 'bob receives');
		b.doc.getArray('messages').push([chatMessage(bob.id, 'hi alice')]);
		await waitFor(() => texts(a.doc).includes('hi alice'), 5000, 'alice receives');
		expect(texts(a.doc)).toEqual(texts(b.doc));
	});

	it('stores accepted messages so they survive a relay restart, with the senders gone', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const a = h.provider(alice, roomId);
		a.doc.getArray('messages').push([chatMessage(alice.id, 'kept 1'), chatMessage(alice.id, 'kept 2')]);
		await waitFor(async () => (await pageMessages(h.db, h.history, roomId, null, 10)).messages.length === 2, 5000, 'stored');
		a.provider.destroy();
		await h.restart();
		const b = h.provider(bob, roomId);
		await waitFor(() => texts(b.doc).length === 2, 5000, 'bob loads the history from the store');
		expect(texts(b.doc)).toEqual(['kept 1', 'kept 2']);
	});

	it('stores every update that arrives while an earlier batch is still committing', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const a = h.provider(alice, roomId);
		const b = h.provider(bob, roomId);
		await waitFor(() => a.provider.synced && b.provider.synced, 5000, 'synced');
		// Many separate updates from two clients, sent as fast as the sockets take them.
		for (let i = 0; i < 40; i++) {
			a.doc.getArray('messages').push([chatMessage(alice.id, `a${i}`)]);
			b.doc.getArray('messages').push([chatMessage(bob.id, `b${i}`)]);
		}
		await waitFor(() => texts(a.doc).length === 80 && texts(b.doc).length === 80, 10_000, 'both see all');
		a.provider.destroy();
		b.provider.destroy();
		await h.restart(); // close() flushes; then nothing but the store remains
		const stored = (await pageMessages(h.db, h.history, roomId, null, 100)).messages.map((m) => m.text);
		expect(stored.sort()).toEqual(texts(a.doc).sort());
	});

	it('stamps awareness with the account, whatever the client claims', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const a = h.provider(alice, roomId);
		const b = h.provider(bob, roomId);
		a.provider.awareness.setLocalState({ user: { id: bob.id, name: 'I am Bob' }, typing: true });
		await waitFor(() => b.provider.awareness.getStates().has(a.doc.clientID), 5000, 'bob sees alice');
		const state = b.provider.awareness.getStates().get(a.doc.clientID)!;
		expect(state.user).toEqual({ id: alice.id, name: alice.name });
		expect(state.typing).toBe(true);
	});

	it('does not count the awareness a stock provider merely echoes against its rate', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const senders = [h.provider(alice, roomId), h.provider(alice, roomId), h.provider(alice, roomId)];
		const reader = h.provider(bob, roomId);
		await waitFor(() => reader.provider.synced && senders.every((s) => s.provider.synced), 5000, 'synced');
		let closed = false;
		reader.provider.on('connection-close', () => (closed = true));
		// 75 changes in a burst; a stock provider re-sends every state it receives to the relay.
		for (let i = 1; i <= 25; i++) for (const s of senders) s.provider.awareness.setLocalStateField('typing', i % 2 === 0);
		await waitFor(
			() => senders.every((s) => reader.provider.awareness.getStates().get(s.doc.clientID)?.typing === false),
			5000,
			'reader sees the last states'
		);
		await holdsFor(() => !closed && reader.provider.wsconnected, 500, 'the reader stays connected');
	});

	it('sends durable acknowledgements to clients that opt in, after the commit', async () => {
		const { alice, roomId } = await twoMembers();
		const ws = new WebSocket(`${h.url}/${roomId}?token=${h.token(alice, roomId)}&ext=1`);
		const durable: Array<Map<number, number>> = [];
		ws.on('message', (data: Buffer) => {
			const decoder = decoding.createDecoder(new Uint8Array(data));
			if (decoding.readVarUint(decoder) !== MessageType.durable) return;
			const sv = new Map<number, number>();
			const n = decoding.readVarUint(decoder);
			for (let i = 0; i < n; i++) sv.set(decoding.readVarUint(decoder), decoding.readVarUint(decoder));
			durable.push(sv);
		});
		await new Promise((r) => ws.once('open', r));
		const doc = new Y.Doc();
		doc.getArray('messages').push([chatMessage(alice.id, 'ack me')]);
		const encoder = encoding.createEncoder();
		encoding.writeVarUint(encoder, MessageType.sync);
		syncProtocol.writeUpdate(encoder, Y.encodeStateAsUpdate(doc));
		ws.send(encoding.toUint8Array(encoder));
		await waitFor(() => durable.some((sv) => (sv.get(doc.clientID) ?? 0) >= 1), 5000, 'durable ack');
		// By the time the ack arrived, the message is in PostgreSQL.
		expect((await pageMessages(h.db, h.history, roomId, null, 10)).messages.map((m) => m.text)).toEqual(['ack me']);
		ws.close();
	});
});

describe('relay forwarding', () => {
	/** The Yjs updates a raw client receives after its sync, in order. */
	function forwardedUpdates(client: RawClient): Uint8Array[] {
		const updates: Uint8Array[] = [];
		client.ws.on('message', (data: Buffer) => {
			const decoder = decoding.createDecoder(new Uint8Array(data));
			if (decoding.readVarUint(decoder) !== MessageType.sync) return;
			if (decoding.readVarUint(decoder) !== syncProtocol.messageYjsUpdate) return;
			updates.push(decoding.readVarUint8Array(decoder));
		});
		return updates;
	}

	it('forwards a client\'s new update as sent, and of a resync only what the room lacked', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const sender = new RawClient(`${h.url}/${roomId}?token=${h.token(alice, roomId)}`);
		const receiver = new RawClient(`${h.url}/${roomId}?token=${h.token(bob, roomId)}`);
		await Promise.all([sender.opened, receiver.opened]);
		await Promise.all([sender.settled(), receiver.settled()]);
		const received = forwardedUpdates(receiver);
		const doc = sender.fork(4242);
		const first = updateOf(doc, (d) => d.getArray('messages').push([chatMessage(alice.id, 'first')]));
		sender.sendUpdate(first);
		await waitFor(() => received.length === 1, 5000, 'the first update forwarded');
		expect(Buffer.from(received[0]).equals(Buffer.from(first))).toBe(true);

		// A resync repeats the first message (Yjs merged both into one item) and adds the second.
		doc.getArray('messages').push([chatMessage(alice.id, 'second')]);
		const resync = Y.encodeStateAsUpdate(doc);
		expect(Y.decodeUpdate(resync).structs).toHaveLength(1);
		sender.sendUpdate(resync);
		await waitFor(() => received.length === 2, 5000, 'the resync forwarded');
		const forwarded = Y.decodeUpdate(received[1]).structs;
		expect(forwarded.map((s) => [s.id.client, s.id.clock, s.length])).toEqual([[4242, 1, 1]]);
		expect(texts(receiver.doc)).toEqual(['first', 'second']);
		expect(receiver.doc.store.pendingStructs).toBeNull();

		// A fresh update sent as a sync step 2 goes on as an update message, not as a step 2.
		const third = updateOf(doc, (d) => d.getArray('messages').push([chatMessage(alice.id, 'third')]));
		const step2 = encoding.createEncoder();
		encoding.writeVarUint(step2, MessageType.sync);
		syncProtocol.writeSyncStep2(step2, doc, Y.encodeStateVector(receiver.doc));
		sender.sendFrame(encoding.toUint8Array(step2));
		await waitFor(() => received.length === 3, 5000, 'the step 2 forwarded as an update');
		expect(Buffer.from(received[2]).equals(Buffer.from(third))).toBe(true);
		expect(texts(receiver.doc)).toEqual(['first', 'second', 'third']);
		sender.close();
		receiver.close();
	});
});

describe('relay authorization', () => {
	it('refuses an upgrade without credentials (401), from a non-member (404) and from a foreign origin (403)', async () => {
		const { alice, roomId } = await twoMembers();
		const outsider = await h.account();
		expect((await upgradeStatus(`${h.url}/${roomId}`)).status).toBe(401);
		const refused = await upgradeStatus(`${h.url}/${roomId}?token=${h.token(outsider, roomId)}`);
		expect(refused.status).toBe(404);
		expect(JSON.parse(refused.body).error.code).toBe('room_not_found');
		const foreign = await upgradeStatus(`${h.url}/${roomId}?token=${h.token(alice, roomId)}`, { origin: 'http://evil.test' });
		expect(foreign.status).toBe(403);
		expect((await upgradeStatus(`${h.url}/${roomId}?token=${h.token(alice, roomId)}`, { origin: TEST_ORIGIN })).status).toBe(101);
	});

	it('refuses tampered, expired and other-room tokens', async () => {
		const { alice, roomId } = await twoMembers();
		const otherRoom = await h.room([alice]);
		const token = h.token(alice, roomId);
		const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
		expect((await upgradeStatus(`${h.url}/${roomId}?token=${tampered}`)).status).toBe(401);
		expect((await upgradeStatus(`${h.url}/${roomId}?token=${h.token(alice, roomId, -1)}`)).status).toBe(401);
		expect((await upgradeStatus(`${h.url}/${otherRoom}?token=${token}`)).status).toBe(401);
	});

	it('accepts the session cookie instead of a token', async () => {
		const { alice, roomId } = await twoMembers();
		expect((await upgradeStatus(`${h.url}/${roomId}`, { cookie: `session=${alice.sessionToken}` })).status).toBe(101);
		expect((await upgradeStatus(`${h.url}/${roomId}`, { cookie: 'session=forged' })).status).toBe(401);
	});

	it('cuts a removed member off within a second', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const b = h.provider(bob, roomId);
		await waitFor(() => b.provider.wsconnected, 5000, 'bob connected');
		const closed = closeEvent(b.provider as any);
		const removedAt = Date.now();
		await removeMember(h.db, roomId, bob.id);
		await publishControl(h.bus, { type: 'member-removed', roomId, userId: bob.id });
		const event = await closed;
		expect(event.code).toBe(CloseCode.forbidden);
		expect(Date.now() - removedAt).toBeLessThan(1000);
		// Reconnecting is refused: he is no longer a member.
		expect((await upgradeStatus(`${h.url}/${roomId}?token=${h.token(bob, roomId)}`)).status).toBe(404);
		expect(alice.id).not.toBe(bob.id);
	});

	it('closes a signed-out session\'s sockets', async () => {
		const { alice, roomId } = await twoMembers();
		const a = h.provider(alice, roomId);
		await waitFor(() => a.provider.wsconnected, 5000, 'connected');
		const closed = closeEvent(a.provider as any);
		await publishControl(h.bus, { type: 'session-revoked', sessionId: alice.sessionId });
		expect((await closed).code).toBe(CloseCode.unauthorized);
	});
});

describe('relay refusals', () => {
	it('refuses a message written as another author: no other client and no store sees it', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const a = h.provider(alice, roomId);
		const b = h.provider(bob, roomId);
		await waitFor(() => a.provider.synced && b.provider.synced, 5000, 'synced');
		const closed = closeEvent(a.provider as any);
		a.doc.getArray('messages').push([chatMessage(bob.id, 'forged')]);
		const event = await closed;
		// Writes in another's name: what a reader holds after the relay lost them, so start over.
		expect(event.code).toBe(CloseCode.resync);
		expect(event.reason).toContain('bad_author');
		// A legitimate message afterwards proves bob's copy is live, and that the forgery never reached it.
		const c = h.provider(alice, roomId);
		await waitFor(() => c.provider.synced, 5000, 'fresh client synced');
		expect(texts(c.doc)).toEqual([]);
		expect((await pageMessages(h.db, h.history, roomId, null, 10)).messages).toEqual([]);
		expect(texts(b.doc)).toEqual([]);
		a.provider.destroy();
	});

	it('closes a stock client that sends a message the room refuses with 4422 and the reason', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const a = h.provider(alice, roomId);
		const b = h.provider(bob, roomId);
		await waitFor(() => a.provider.synced && b.provider.synced, 5000, 'synced');
		const closed = closeEvent(a.provider as any);
		a.doc.getArray('messages').push([chatMessage(alice.id, 'x'.repeat(4001))]);
		const event = await closed;
		expect(event.code).toBe(CloseCode.rejectedUpdate);
		expect(event.reason).toContain('text_too_long');
		a.provider.destroy();
		expect((await pageMessages(h.db, h.history, roomId, null, 10)).messages).toEqual([]);
		expect(texts(b.doc)).toEqual([]);
	});

	it('closes a socket that sends a frame above the size limit (1009)', async () => {
		const { alice, roomId } = await twoMembers();
		const ws = new WebSocket(`${h.url}/${roomId}?token=${h.token(alice, roomId)}`);
		await new Promise((r) => ws.once('open', r));
		const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
		ws.send(new Uint8Array(RELAY_MAX_FRAME_BYTES + 1));
		expect(await code).toBe(CloseCode.tooLarge);
	});

	it('closes a socket that sends garbage, and keeps serving the room', async () => {
		const { alice, bob, roomId } = await twoMembers();
		const ws = new WebSocket(`${h.url}/${roomId}?token=${h.token(alice, roomId)}`);
		await new Promise((r) => ws.once('open', r));
		const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
		ws.send(new Uint8Array([0, 9, 9, 9]));
		expect(await code).toBe(CloseCode.malformed);
		const a = h.provider(alice, roomId);
		const b = h.provider(bob, roomId);
		a.doc.getArray('messages').push([chatMessage(alice.id, 'still here')]);
		await waitFor(() => texts(b.doc).includes('still here'), 5000, 'room still works');
	});
});

describe('relay keepalive', () => {
	const PING_MS = 900;
	let k: RelayHarness;

	beforeAll(async () => {
		k = await RelayHarness.start({ pingIntervalMs: PING_MS });
	});

	afterAll(async () => {
		await k?.close();
	});

	it('pings each socket once an interval, the sockets in turns over it, and drops one that stops answering', async () => {
		const alice = await k.account();
		const roomId = await k.room([alice]);
		const url = `${k.url}/${roomId}?token=${k.token(alice, roomId)}`;
		const open = (autoPong: boolean) =>
			new Promise<WebSocket>((resolve, reject) => {
				const ws = new WebSocket(url, { autoPong });
				ws.once('open', () => resolve(ws));
				ws.once('error', reject);
			});
		const live = await Promise.all(Array.from({ length: 10 }, () => open(true)));
		const pings = live.map(() => [] as number[]);
		live.forEach((ws, i) => ws.on('ping', () => pings[i].push(performance.now())));
		const silent = await open(false);
		const silentClosed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
		try {
			// Pinged, no pong, terminated at its next turn: no close frame (1006 on this side).
			expect(await silentClosed).toBe(1006);
			await waitFor(() => pings.every((p) => p.length >= 2), 10_000, 'every live socket pinged twice');
			expect(live.every((ws) => ws.readyState === WebSocket.OPEN)).toBe(true);
			// Ten sockets in ten turns: not all at once, though each once per interval.
			const firsts = pings.map((p) => p[0]);
			expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(PING_MS / 5);
			for (const [first, second] of pings) expect(second - first).toBeGreaterThan(PING_MS / 2);
		} finally {
			for (const ws of [...live, silent]) ws.terminate();
		}
	});
});

describe('stored rows', () => {
	let fast: RelayHarness;

	beforeAll(async () => {
		fast = await RelayHarness.start({ limits: { updatesBurst: 10_000, updatesPerSecond: 10_000 } });
	});

	afterAll(async () => {
		await fast.close();
	});

	it('merges a room\'s rows once there are enough of them, however few commits held them', async () => {
		const alice = await fast.account();
		const roomId = await fast.room([alice]);
		const a = fast.provider(alice, roomId);
		await waitFor(() => a.provider.synced, 5000, 'synced');
		// Sent at once: the relay commits them in a few group commits of many rows each.
		const count = ROOM_UPDATE_ROWS_MERGE_AT * 2 + 50;
		for (let i = 0; i < count; i++) a.doc.getArray('messages').push([chatMessage(alice.id, `burst ${i}`)]);
		const rows = async () =>
			(await fast.db.query<{ n: number }>('select count(*)::int as n from room_updates where room_id = $1', [roomId]))[0].n;
		const stored = async () => (await pageMessages(fast.db, fast.history, roomId, null, count)).messages.length;
		await waitFor(async () => (await stored()) === count, 10_000, 'every message stored');
		await waitFor(async () => (await rows()) < ROOM_UPDATE_ROWS_MERGE_AT, 10_000, 'rows merged');
		const page = await pageMessages(fast.db, fast.history, roomId, null, count);
		expect(page.messages.map((m) => m.text)).toEqual(Array.from({ length: count }, (_, i) => `burst ${i}`));
	});
});
