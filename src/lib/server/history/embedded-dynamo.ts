/**
 * The embedded DynamoDB: dynalite on loopback, persisted under a directory (LevelDB). The default
 * when DYNAMODB_ENDPOINT is unset; the same DynamoHistoryStore talks to it over HTTP.
 */
import { mkdir } from 'node:fs/promises';
import dynalite from 'dynalite';

export interface EmbeddedDynamo {
	/** http://127.0.0.1:<port>, for DynamoHistoryStore's `endpoint`. */
	readonly endpoint: string;
	close(): Promise<void>;
}

/** Table changes complete at once: there is no provisioning to simulate on one machine. */
const TABLE_TRANSITION_MS = 0;
const LOOPBACK_HOST = '127.0.0.1';

/** Starts dynalite on `port` (any free one when 0; tests restart it on the same one). */
export async function startEmbeddedDynamo(dir: string, port = 0): Promise<EmbeddedDynamo> {
	// LevelDB creates its own directory but not missing parents.
	await mkdir(dir, { recursive: true });
	const server = dynalite({
		path: dir,
		createTableMs: TABLE_TRANSITION_MS,
		deleteTableMs: TABLE_TRANSITION_MS,
		updateTableMs: TABLE_TRANSITION_MS
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, LOOPBACK_HOST, () => {
			server.off('error', reject);
			resolve();
		});
	});
	const address = server.address();
	if (address === null || typeof address === 'string') {
		throw new Error(`dynalite is not listening on a TCP port (address: ${String(address)})`);
	}
	let closing: Promise<void> | null = null;
	return {
		endpoint: `http://${LOOPBACK_HOST}:${address.port}`,
		close(): Promise<void> {
			// dynalite's close waits for pending LevelDB work, then closes the database.
			closing ??= new Promise<void>((resolve, reject) => {
				server.close((error?: Error) => (error ? reject(error) : resolve()));
				// Clients keep connections alive; close would otherwise wait for them to time out.
				(server as { closeAllConnections?: () => void }).closeAllConnections?.();
			});
			return closing;
		}
	};
}
