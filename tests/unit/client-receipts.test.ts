/**
 * The browser's pure rules for issue 3: message statuses from durable clocks and per-user marks,
 * merged acknowledgements, the reconnect backoff, terminal close codes, the extension frames.
 */
import { describe, expect, it } from 'vitest';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import { memberReceipts, ownMessageStatuses, type ItemId, type ReceiptInputs } from '../../src/lib/client/receipts';
import { mergeClocks } from '../../src/lib/client/durable-clocks';
import { RECONNECT_BASE_MS, RECONNECT_MAX_MS, reconnectDelayMs } from '../../src/lib/client/reconnect-policy';
import { readDurableFrame, readRejectedFrame, stopReasonForClose } from '../../src/lib/client/relay-protocol';
import type { ChatMessage } from '../../src/lib/shared/schema';

const ME = 'me';
const BOB = 'bob';
const CAT = 'cat';

function message(id: string, author: string): ChatMessage {
	return { id, author, ts: 1, kind: 'text', text: id };
}

/** m1 (bob), m2 (me), m3 (me), m4 (cat): own messages written by client 7 at clocks 0 and 1. */
function inputs(overrides: Partial<ReceiptInputs> = {}): ReceiptInputs {
	const itemIds = new Map<string, ItemId>([
		['m2', { client: 7, clock: 0 }],
		['m3', { client: 7, clock: 1 }]
	]);
	return {
		messages: [message('m1', BOB), message('m2', ME), message('m3', ME), message('m4', CAT)],
		itemIds,
		durable: new Map(),
		recipientIds: [BOB, CAT],
		delivered: new Map(),
		reads: new Map(),
		...overrides
	};
}

describe('own message statuses', () => {
	it('are pending until a durable clock covers the item, whatever else is known', () => {
		const statuses = ownMessageStatuses(inputs({ reads: new Map([[BOB, 'm4'], [CAT, 'm4']]) }), ME);
		expect([...statuses]).toEqual([
			['m2', 'pending'],
			['m3', 'pending']
		]);
	});

	it('are sent for exactly the clocks below the durable clock of their client id', () => {
		const statuses = ownMessageStatuses(inputs({ durable: new Map([[7, 1]]) }), ME);
		expect(statuses.get('m2')).toBe('sent');
		expect(statuses.get('m3')).toBe('pending');
		expect(ownMessageStatuses(inputs({ durable: new Map([[8, 5]]) }), ME).get('m2')).toBe('pending');
	});

	it('are delivered when every other member\'s delivered (or read) mark is at or after them', () => {
		const durable = new Map([[7, 2]]);
		const partly = ownMessageStatuses(inputs({ durable, delivered: new Map([[BOB, 'm3']]) }), ME);
		expect(partly.get('m2')).toBe('sent');
		const both = ownMessageStatuses(inputs({ durable, delivered: new Map([[BOB, 'm3']]), reads: new Map([[CAT, 'm2']]) }), ME);
		expect(both.get('m2')).toBe('delivered');
		expect(both.get('m3')).toBe('sent');
	});

	it('are read when every other member\'s read mark is at or after them', () => {
		const reads = new Map([[BOB, 'm4'], [CAT, 'm2']]);
		const statuses = ownMessageStatuses(inputs({ durable: new Map([[7, 2]]), reads }), ME);
		expect(statuses.get('m2')).toBe('read');
		expect(statuses.get('m3')).toBe('sent');
		const withDelivery = ownMessageStatuses(inputs({ durable: new Map([[7, 2]]), reads, delivered: new Map([[CAT, 'm4']]) }), ME);
		expect(withDelivery.get('m3')).toBe('delivered');
	});

	it('treat a mark that left the live log as older than all of it, and stay sent with nobody else in the room', () => {
		const durable = new Map([[7, 2]]);
		expect(ownMessageStatuses(inputs({ durable, delivered: new Map([[BOB, 'compacted'], [CAT, 'compacted']]) }), ME).get('m2')).toBe('sent');
		expect(ownMessageStatuses(inputs({ durable, recipientIds: [] }), ME).get('m2')).toBe('sent');
	});

	it('give per-member details', () => {
		const details = memberReceipts(inputs({ durable: new Map([[7, 2]]), delivered: new Map([[CAT, 'm4']]), reads: new Map([[BOB, 'm2']]) }), 'm3');
		expect(details).toEqual([
			{ userId: BOB, delivered: false, read: false },
			{ userId: CAT, delivered: true, read: false }
		]);
	});
});

describe('acknowledgements and connection policy', () => {
	it('merges durable clocks by maximum and keeps the same map when nothing is new', () => {
		const a = new Map([[1, 5], [2, 3]]);
		expect(mergeClocks(a, new Map([[1, 4]]))).toBe(a);
		expect([...mergeClocks(a, new Map([[1, 6], [3, 1]]))]).toEqual([[1, 6], [2, 3], [3, 1]]);
	});

	it('backs off exponentially with jitter from half a second to a 30 s ceiling', () => {
		expect(reconnectDelayMs(1, () => 0)).toBe(RECONNECT_BASE_MS);
		expect(reconnectDelayMs(1, () => 1)).toBe(2 * RECONNECT_BASE_MS);
		expect(reconnectDelayMs(3, () => 0)).toBe(4 * RECONNECT_BASE_MS);
		expect(reconnectDelayMs(50, () => 1)).toBe(RECONNECT_MAX_MS);
		expect(reconnectDelayMs(50, () => 0)).toBe(RECONNECT_MAX_MS / 2);
	});

	it('stops for good on terminal close codes only', () => {
		expect([4401, 4403, 4422, 4429, 1009, 4000].map(stopReasonForClose)).toEqual([
			'signed_out',
			'removed',
			'refused',
			'too_many_errors',
			'too_large',
			'malformed'
		]);
		expect([1000, 1001, 1006, 4500].map(stopReasonForClose)).toEqual([null, null, null, null]);
	});

	it('reads the durable and rejected extension frames', () => {
		const durable = encoding.createEncoder();
		encoding.writeVarUint(durable, 2);
		for (const [client, clock] of [[123456789, 40], [7, 1]]) {
			encoding.writeVarUint(durable, client);
			encoding.writeVarUint(durable, clock);
		}
		expect([...readDurableFrame(decoding.createDecoder(encoding.toUint8Array(durable)))]).toEqual([
			[123456789, 40],
			[7, 1]
		]);
		const rejected = encoding.createEncoder();
		encoding.writeVarString(rejected, 'bad_content');
		encoding.writeVarString(rejected, 'reads values are message ids');
		expect(readRejectedFrame(decoding.createDecoder(encoding.toUint8Array(rejected)))).toEqual({
			code: 'bad_content',
			detail: 'reads values are message ids'
		});
	});
});
