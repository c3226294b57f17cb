// The embedded PostgreSQL (PGlite) on a thread of its own: its WebAssembly and file writes would
// otherwise run on the relay's event loop and hold up every socket while a commit is written.
// Plain JavaScript, so the thread starts the same under `node --import tsx`, vitest and the build.
//
// Messages in: {id, op: 'query' | 'begin' | 'commit' | 'rollback' | 'close', tx?, sql?, params?}.
// Messages out: {id, rows} or {id, error: {message, code}}. While a transaction holds the
// connection, statements that are not part of it wait their turn.
import { parentPort, workerData } from 'node:worker_threads';
import { Buffer } from 'node:buffer';
import { PGlite } from '@electric-sql/pglite';
import { lowerThreadPriority } from '../background-thread.js';

const BYTEA = 17;

/**
 * bytea in and out as hex through Node's native codec. PGlite's own does it a byte at a time in
 * JavaScript (an array of numbers, then of two-character strings, joined): every stored update
 * goes through it, and a room's merged state (hundreds of KB) made it the PGlite thread's largest
 * cost and most of its garbage.
 */
const byteaCodec = {
	serializers: {
		[BYTEA]: (value) => {
			if (!(value instanceof Uint8Array)) throw new Error('Invalid input for bytea type');
			return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
		}
	},
	parsers: {
		// Its own exact-size buffer (not a view into Node's shared pool), which is what is copied
		// when the row is posted back to the relay's thread.
		[BYTEA]: (text) => {
			const bytes = new Uint8Array((text.length - 2) >>> 1);
			Buffer.from(bytes.buffer).write(text.slice(2), 'hex');
			return bytes;
		}
	}
};

// Commits wait a little when the cores are contended; deliveries on the relay's thread do not.
lowerThreadPriority();

const pg = workerData.dir ? new PGlite(workerData.dir, byteaCodec) : new PGlite(byteaCodec);
/** The transaction holding the connection, or null. */
let active = null;
/** Messages waiting for the active transaction to end, in arrival order. */
const waiting = [];

function reply(id, body) {
	parentPort.postMessage({ id, ...body });
}

function fail(id, error) {
	reply(id, { error: { message: error instanceof Error ? error.message : String(error), code: error?.code } });
}

async function run(message) {
	const { id, op } = message;
	try {
		if (op === 'begin') {
			try {
				await pg.query('begin');
			} catch (error) {
				// No transaction opened: give the connection back before reporting.
				active = null;
				drain();
				throw error;
			}
			reply(id, { rows: [] });
		} else if (op === 'commit' || op === 'rollback') {
			try {
				await pg.query(op);
			} finally {
				active = null;
				drain();
			}
			reply(id, { rows: [] });
		} else if (op === 'query') {
			const result = await pg.query(message.sql, message.params ?? []);
			reply(id, { rows: result.rows });
		} else if (op === 'close') {
			await pg.close();
			reply(id, { rows: [] });
			parentPort.close();
		}
	} catch (error) {
		fail(id, error);
	}
}

function dispatch(message) {
	if (active !== null && message.tx !== active) {
		waiting.push(message);
		return;
	}
	// Taken at once, so what arrives while BEGIN runs already waits.
	if (message.op === 'begin') active = message.tx;
	void run(message);
}

function drain() {
	while (waiting.length > 0 && active === null) dispatch(waiting.shift());
}

await pg.waitReady;
parentPort.on('message', dispatch);
parentPort.postMessage({ ready: true });
