/**
 * The promise validation makes to the relay: whatever it admits, Yjs integrates cleanly — no
 * exception, no pending structs or deletions left behind. Checked on mutated real updates, with
 * and without the room already holding what they refer to.
 */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { ulid } from 'ulid';
import { emptyAdmitted, validateUpdate, type RoomIndex } from '../../sync-server/validate';
import { prng } from '../helpers/prng';

const AUTHOR = 'fuzzer';
const CASES = 60_000;


const message = (text: string) => ({ id: ulid(), author: AUTHOR, ts: Date.now(), kind: 'text', text });

function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
	const out = Array.from(bytes);
	for (let edits = 1 + Math.floor(random() * 4); edits > 0; edits--) {
		const at = Math.floor(random() * (out.length + 1));
		const kind = Math.floor(random() * 5);
		if (kind === 0) out[at % out.length] = Math.floor(random() * 256);
		else if (kind === 1) out[at % out.length] = [0, 0x7f, 0x80, 0xff][Math.floor(random() * 4)];
		else if (kind === 2) out.splice(at, 0, Math.floor(random() * 256));
		else if (kind === 3) out.splice(at, 1 + Math.floor(random() * 4));
		else out.length = Math.min(out.length, at);
	}
	return new Uint8Array(out);
}

describe('validation admits only what Yjs integrates cleanly', () => {
	it(`holds for ${CASES.toLocaleString('en')} mutated updates`, { timeout: 120_000 }, () => {
		const base = new Y.Doc();
		base.getArray('messages').push([message('base 1'), message('base 2')]);
		base.getMap('reads').set(AUTHOR, ulid());
		const baseState = Y.encodeStateAsUpdate(base);
		const updates: Uint8Array[] = [];
		const writer = new Y.Doc();
		Y.applyUpdate(writer, baseState);
		writer.on('update', (u: Uint8Array) => updates.push(u));
		writer.getArray('messages').insert(1, [message('middle')]);
		writer.getArray('messages').push([message('end'), message('end 2')]);
		writer.getMap('reads').set(AUTHOR, ulid());
		writer.getMap('reads').set(AUTHOR, ulid());
		writer.getMap('edits').set(base.getArray<{ id: string }>('messages').get(0).id, { text: 'edited', ts: Date.now() });
		updates.push(Y.encodeStateAsUpdate(writer), Y.encodeStateAsUpdate(writer, Y.encodeStateVector(base)));

		const random = prng(20261123);
		let admitted = 0;
		const broken: string[] = [];
		const log = console.error;
		for (let i = 0; i < CASES; i++) {
			const room = new Y.Doc();
			if (random() < 0.6) Y.applyUpdate(room, baseState);
			const index: RoomIndex = { messageAuthors: new Map(), sealedIds: new Set(), clientOwners: new Map(), isAdmin: () => false };
			for (const m of room.getArray<{ id: string; author: string }>('messages')) index.messageAuthors.set(m.id, m.author);
			const update = mutate(updates[Math.floor(random() * updates.length)], random);
			if (validateUpdate(room, index, AUTHOR, update, Date.now(), emptyAdmitted()) !== null) continue;
			admitted++;
			let failed = false;
			console.error = () => (failed = true);
			try {
				Y.applyUpdate(room, update);
			} catch {
				failed = true;
			} finally {
				console.error = log;
			}
			if (failed || room.store.pendingStructs !== null || room.store.pendingDs !== null) broken.push(Buffer.from(update).toString('hex'));
		}
		expect(admitted).toBeGreaterThan(100); // the mutations do exercise the admitting path
		expect(broken).toEqual([]);
	});
});
