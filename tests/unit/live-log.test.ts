/**
 * The live log's rule for what left it (issue 4): the relay compacts the oldest messages, and the
 * web app keeps them on screen; when the log now starts with a message the device never held,
 * more may have been compacted unseen in between, and the history API has to fill that in.
 */
import { describe, expect, it } from 'vitest';
import { compactedPrefix } from '../../src/lib/client/live-log';
import type { ChatMessage } from '../../src/lib/shared/schema';

function log(...ids: string[]): ChatMessage[] {
	return ids.map((id) => ({ id, author: id === 'mine' ? 'me' : 'bob', ts: 1, kind: 'text', text: id }));
}

const ids = (messages: ChatMessage[]) => messages.map((m) => m.id);
const nothingUnconfirmed = () => false;

describe('compactedPrefix', () => {
	it('reports the oldest messages that left, with nothing unseen when the log still starts with one it held', () => {
		const result = compactedPrefix(log('a', 'b', 'c', 'd'), log('c', 'd', 'e'), nothingUnconfirmed);
		expect(ids(result.messages)).toEqual(['a', 'b']);
		expect(result.unseenMayFollow).toBe(false);
	});

	it('says unseen messages may follow when everything it held left and the log starts with a new one', () => {
		// Away (offline, or moving to a new epoch): x..y arrived and were compacted meanwhile.
		const result = compactedPrefix(log('a', 'b'), log('z'), nothingUnconfirmed);
		expect(ids(result.messages)).toEqual(['a', 'b']);
		expect(result.unseenMayFollow).toBe(true);
	});

	it('says unseen messages may follow when the log emptied', () => {
		const result = compactedPrefix(log('a', 'b'), [], nothingUnconfirmed);
		expect(ids(result.messages)).toEqual(['a', 'b']);
		expect(result.unseenMayFollow).toBe(true);
	});

	it('reports nothing for a log that only grew, or was empty before', () => {
		expect(compactedPrefix(log('a'), log('a', 'b'), nothingUnconfirmed)).toEqual({ messages: [], unseenMayFollow: false });
		expect(compactedPrefix([], log('a', 'b'), nothingUnconfirmed)).toEqual({ messages: [], unseenMayFollow: false });
	});

	it('looks past the viewer\'s pending message that landed first (written offline among the oldest)', () => {
		// Away: z and unseen x1..xk were compacted; "mine", written offline after z, sorts before xk+1.
		const pending = (m: ChatMessage) => m.id === 'mine';
		const result = compactedPrefix(log('y', 'z', 'mine'), log('mine', 'x9'), nothingUnconfirmed, pending);
		expect(ids(result.messages)).toEqual(['y', 'z']);
		expect(result.unseenMayFollow).toBe(true);
		// The same, but the next settled message is one the device held: nothing unseen.
		expect(compactedPrefix(log('y', 'z', 'mine', 'w'), log('mine', 'w'), nothingUnconfirmed, pending).unseenMayFollow).toBe(false);
	});

	it('leaves out the viewer\'s own messages the relay refused (their removal undoes the write)', () => {
		const result = compactedPrefix(log('mine', 'b', 'c'), log('c'), (m) => m.id === 'mine');
		expect(ids(result.messages)).toEqual(['b']);
		expect(result.unseenMayFollow).toBe(false);
	});
});
