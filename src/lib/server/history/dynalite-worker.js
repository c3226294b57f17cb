// The embedded DynamoDB (dynalite over LevelDB) on a thread of its own: its request handling and
// LevelDB calls would otherwise run on the relay's event loop, and a compaction sealing hundreds
// of messages into history would hold up every socket meanwhile. Plain JavaScript, so the thread
// starts the same under `node --import tsx` and vitest.
//
// workerData: {dir, port, host, tableMs}. Messages out: {ready: true, port} once listening, or
// {error}; after 'close' in, {closed: true} once the server and its database are closed.
import { parentPort, workerData } from 'node:worker_threads';
import dynalite from 'dynalite';
import { lowerThreadPriority } from '../background-thread.js';

// Sealing history is background work: under contention the event loop's deliveries go first.
lowerThreadPriority();

const { dir, port, host, tableMs } = workerData;
const server = dynalite({ path: dir, createTableMs: tableMs, deleteTableMs: tableMs, updateTableMs: tableMs });

server.once('error', (error) => parentPort.postMessage({ error: error instanceof Error ? error.message : String(error) }));
server.listen(port, host, () => {
	const address = server.address();
	if (address === null || typeof address === 'string') {
		parentPort.postMessage({ error: `dynalite is not listening on a TCP port (address: ${String(address)})` });
		return;
	}
	parentPort.postMessage({ ready: true, port: address.port });
});

parentPort.on('message', (message) => {
	if (message !== 'close') return;
	// dynalite's close waits for pending LevelDB work, then closes the database. Clients keep
	// connections alive; close would otherwise wait for them to time out.
	server.close((error) => {
		parentPort.postMessage(error ? { error: error.message } : { closed: true });
		parentPort.close();
	});
	server.closeAllConnections?.();
});
