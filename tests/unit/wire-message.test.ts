import { createRequire } from 'node:module';
import * as encoding from 'lib0/encoding';
import { describe, expect, it } from 'vitest';
import * as syncProtocol from 'y-protocols/sync';
import { WireMessage } from '../../sync-server/connection';
import { MessageType } from '../../sync-server/protocol';
import { updateMessage } from '../../sync-server/room';

/** ws's own framing (exported by the package, not by its type definitions). */
const { Sender } = createRequire(import.meta.url)('ws') as {
	Sender: { frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
};

const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 255);

describe('messages framed once for many sockets', () => {
	it('are the frame ws would write, at every length encoding', () => {
		for (const n of [0, 1, 125, 126, 127, 65_535, 65_536, 70_000]) {
			const message = bytes(n);
			const ws = Buffer.concat(Sender.frame(Buffer.from(message), { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false }));
			const ours = WireMessage.of(message);
			expect(ours.wire.equals(ws), `length ${n}`).toBe(true);
			expect(ours.message.equals(message)).toBe(true);
		}
	});

	it('hold the sync update message y-protocols would encode', () => {
		for (const n of [0, 1, 127, 128, 16_383, 16_384, 2_097_152]) {
			const update = bytes(n);
			const encoder = encoding.createEncoder();
			encoding.writeVarUint(encoder, MessageType.sync);
			syncProtocol.writeUpdate(encoder, update);
			expect(updateMessage(update).message.equals(encoding.toUint8Array(encoder)), `update of ${n} bytes`).toBe(true);
		}
	});
});
