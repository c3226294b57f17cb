/** Cold start: spawn → first 200 from /api/health, on fresh DATA_DIRs and on an existing one. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startServer } from '../../tests/helpers/server';
import { round, waitHealthy } from './stats';

export interface ColdStartResult {
	freshMs: number[];
	restartMs: number[];
	/** Exit codes of the SIGTERM stops, for the record (contract: 0). */
	stopExitCodes: (number | null)[];
}

async function timeStart(dataDir: string, stopExitCodes: (number | null)[]): Promise<number> {
	const t0 = performance.now();
	const server = await startServer({ dataDir });
	try {
		await waitHealthy(server.baseUrl);
		return round(performance.now() - t0);
	} finally {
		stopExitCodes.push(await server.stop());
	}
}

export async function measureColdStart(runs = 5): Promise<ColdStartResult> {
	const result: ColdStartResult = { freshMs: [], restartMs: [], stopExitCodes: [] };
	const dirs: string[] = [];
	try {
		for (let i = 0; i < runs; i++) {
			const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-cold-'));
			dirs.push(dir);
			result.freshMs.push(await timeStart(dir, result.stopExitCodes));
		}
		// Restarts reuse the first run's DATA_DIR (already initialised and migrated).
		for (let i = 0; i < runs; i++) result.restartMs.push(await timeStart(dirs[0], result.stopExitCodes));
	} finally {
		for (const dir of dirs) await rm(dir, { recursive: true, force: true });
	}
	return result;
}
