/**
 * "Sent" means durable: the relay reports an update durable only after PostgreSQL committed it,
 * so a message it acknowledged survives the relay being killed with SIGKILL right after the
 * acknowledgement. Checked with a fresh client after a restart, the sender gone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as decoding from 'lib0/decoding';
import * as Y from 'yjs';
import { MessageType } from '../../sync-server/protocol';
import { ApiClient } from '../helpers/api';
import { RawClient } from '../helpers/attacker';
import { chatMessage } from '../helpers/relay';
import { startServer, type TestServer } from '../helpers/server';
import { waitFor } from '../helpers/wait';

const ROUNDS = 3;
const MESSAGES_PER_ROUND = 5;
let server: TestServer | null = null;

afterAll(async () => {
	await server?.stop();
	await server?.cleanup();
});

/** Resolves when a `durable` frame covers `clock` of `client`. */
function durableCovers(client: RawClient, clientId: number, clock: number): Promise<void> {
	return new Promise((resolve) => {
		client.ws.on('message', (data: Buffer) => {
			const decoder = decoding.createDecoder(new Uint8Array(data));
			if (decoding.readVarUint(decoder) !== MessageType.durable) return;
			const entries = decoding.readVarUint(decoder);
			for (let i = 0; i < entries; i++) {
				const id = decoding.readVarUint(decoder);
				const next = decoding.readVarUint(decoder);
				if (id === clientId && next > clock) resolve();
			}
		});
	});
}

describe('durable acknowledgements', () => {
	it(`keeps every acknowledged message when the server is SIGKILLed right after the ack (${ROUNDS} rounds)`, { timeout: 120_000 }, async () => {
		server = await startServer();
		const dataDir = server.dataDir;
		const alice = new ApiClient(server.baseUrl);
		await alice.signup();
		const bob = new ApiClient(server.baseUrl);
		await bob.signup();
		const room = await alice.openDirect(bob.user!.username);
		const acknowledged: string[] = [];

		for (let round = 0; round < ROUNDS; round++) {
			const { serverUrl, params } = await alice.descriptor(room.id);
			const client = new RawClient(`${serverUrl}/${room.id}?token=${params.token}&ext=1`);
			await client.opened;
			// Append after what the room holds, as a real client does.
			await waitFor(() => client.doc.getArray('messages').length === acknowledged.length, 10_000, 'synced');
			const doc = client.doc;
			let acked: Promise<void> = Promise.resolve();
			for (let i = 0; i < MESSAGES_PER_ROUND; i++) {
				const message = chatMessage(alice.user!.id, `round ${round} message ${i}`);
				const before = Y.encodeStateVector(doc);
				doc.getArray('messages').push([message]);
				const clock = Y.getState(doc.store, doc.clientID) - 1;
				acked = durableCovers(client, doc.clientID, clock);
				client.sendUpdate(Y.encodeStateAsUpdate(doc, before));
				acknowledged.push(message.text);
			}
			await acked; // the last message's ack covers all earlier ones of this client
			server.process.kill('SIGKILL'); // the next instant: no flush, no goodbye
			await server.kill();
			client.close();
			server = await startServer({ dataDir });
			alice.baseUrl = server.baseUrl;
			bob.baseUrl = server.baseUrl;
		}

		// A fresh client (bob, who never had these messages) reads them from the servers.
		const stored = await bob.request('GET', `/api/rooms/${room.id}/messages?limit=100`);
		expect(stored.status).toBe(200);
		expect(stored.body.messages.map((m: { text: string }) => m.text)).toEqual(acknowledged);
	});
});
