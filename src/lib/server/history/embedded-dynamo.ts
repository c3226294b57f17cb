/**
 * The embedded DynamoDB: dynalite on loopback, persisted under a directory (LevelDB). The default
 * when DYNAMODB_ENDPOINT is unset; the same DynamoHistoryStore talks to it over HTTP. dynalite
 * runs on a worker thread (dynalite-worker.js), off the relay's event loop.
 */
import { mkdir } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

export interface EmbeddedDynamo {
	/** http://127.0.0.1:<port>, for DynamoHistoryStore's `endpoint`. */
	readonly endpoint: string;
	close(): Promise<void>;
}

/** Table changes complete at once: there is no provisioning to simulate on one machine. */
const TABLE_TRANSITION_MS = 0;
const LOOPBACK_HOST = '127.0.0.1';

interface WorkerReply {
	ready?: boolean;
	port?: number;
	closed?: boolean;
	error?: string;
}

/** Starts dynalite on `port` (any free one when 0; tests restart it on the same one). */
export async function startEmbeddedDynamo(dir: string, port = 0): Promise<EmbeddedDynamo> {
	// LevelDB creates its own directory but not missing parents.
	await mkdir(dir, { recursive: true });
	const worker = new Worker(new URL('./dynalite-worker.js', import.meta.url), {
		workerData: { dir, port, host: LOOPBACK_HOST, tableMs: TABLE_TRANSITION_MS }
	});
	const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
	const listening = await new Promise<number>((resolve, reject) => {
		const onMessage = (reply: WorkerReply): void => {
			if (reply.error) reject(new Error(`the embedded DynamoDB did not start: ${reply.error}`));
			else if (reply.ready) resolve(reply.port!);
			else return;
			worker.off('message', onMessage);
		};
		worker.on('message', onMessage);
		worker.once('error', reject);
		void exited.then(() => reject(new Error('the embedded DynamoDB thread exited while starting')));
	});
	// A failure of the thread after it started shows as refused requests, which the history
	// store reports and retries; the reason is said here.
	worker.on('error', (error) => console.error('[dynamo] the embedded DynamoDB thread failed:', error));
	let closing: Promise<void> | null = null;
	return {
		endpoint: `http://${LOOPBACK_HOST}:${listening}`,
		close(): Promise<void> {
			closing ??= (async () => {
				const closed = new Promise<void>((resolve, reject) => {
					worker.on('message', (reply: WorkerReply) => {
						if (reply.closed) resolve();
						else if (reply.error) reject(new Error(`closing the embedded DynamoDB failed: ${reply.error}`));
					});
					void exited.then(() => resolve());
				});
				worker.postMessage('close');
				await closed;
				// The thread ends once its server is closed; its LevelDB lock is released by then.
				await exited;
			})();
			return closing;
		}
	};
}
