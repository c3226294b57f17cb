/** Where every benchmark writes its JSON: bench/results/<name>-<date>.json. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS_DIR = fileURLToPath(new URL('../results', import.meta.url));

/** Writes `summary` as bench/results/<name>-<date>.json and returns the file's path. */
export async function writeBenchResult(name: string, date: string, summary: unknown): Promise<string> {
	await mkdir(RESULTS_DIR, { recursive: true });
	const file = path.join(RESULTS_DIR, `${name}-${date.replace(/[:.]/g, '-')}.json`);
	await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
	return file;
}
