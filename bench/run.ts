/**
 * `npm run bench`: every benchmark of this project, one after another, each in its own process so
 * one's memory and JIT state do not colour the next. Each prints its table and writes a JSON file
 * under bench/results/. Loopback only; everything ends by itself.
 *
 *   npm run bench                 all of them
 *   npm run bench -- validation   only the named ones (validation, foundation, offline, crdt)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHMARKS: Record<string, string> = {
	validation: 'bench/validation.ts',
	foundation: 'bench/foundation.ts',
	offline: 'bench/offline.ts',
	crdt: 'bench/crdt.ts'
};

const root = fileURLToPath(new URL('..', import.meta.url));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(BENCHMARKS);
let failed = 0;
for (const name of names) {
	const script = BENCHMARKS[name];
	if (!script) {
		console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHMARKS).join(', ')}`);
		process.exit(2);
	}
	console.log(`\n=== ${name} (${script})`);
	const result = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, stdio: 'inherit' });
	if (result.status !== 0) {
		failed++;
		console.error(`${name} failed with exit code ${result.status}`);
	}
}
process.exit(failed > 0 ? 1 : 0);
