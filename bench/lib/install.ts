/** `--install`: copy the tracked files into a temp dir and time `npm ci` there with the cache as it is. */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT } from '../../tests/helpers/server';
import { round } from './stats';

const NPM_CI_TIMEOUT_MS = 15 * 60_000;

export interface InstallResult {
	seconds: number;
	npmVersion: string;
	/** Lockfile packages this platform installs (those present in the repo's node_modules). */
	packages: number;
	/** Of those, tarballs whose content was already in the npm cache before the run. */
	cachedTarballs: number;
	cacheWarm: boolean;
}

/**
 * Counts the lockfile's integrity hashes present in npm's content-addressed cache (cacache), among
 * the packages installed in the repo's node_modules (others are optional ones for other platforms).
 */
async function cacheCoverage(): Promise<{ total: number; cached: number }> {
	const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8'));
	const cacheDir = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
	let total = 0;
	let cached = 0;
	for (const [key, entry] of Object.entries<any>(lock.packages ?? {})) {
		if (!key || !entry.integrity || entry.link || !existsSync(path.join(ROOT, key))) continue;
		const sha = String(entry.integrity).split(/\s+/).find((h: string) => h.startsWith('sha512-'));
		if (!sha) continue;
		total += 1;
		const hex = Buffer.from(sha.slice('sha512-'.length), 'base64').toString('hex');
		if (existsSync(path.join(cacheDir, '_cacache', 'content-v2', 'sha512', hex.slice(0, 2), hex.slice(2, 4), hex.slice(4)))) cached += 1;
	}
	return { total, cached };
}

export async function measureInstall(): Promise<InstallResult> {
	const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-install-'));
	try {
		const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
		for (const file of files) {
			const from = path.join(ROOT, file);
			if (!existsSync(from)) continue; // deleted in the work tree
			await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
			await copyFile(from, path.join(dir, file));
		}
		const { total, cached } = await cacheCoverage();
		const npmVersion = execFileSync('npm', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
		const t0 = performance.now();
		await new Promise<void>((resolve, reject) => {
			execFile('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, timeout: NPM_CI_TIMEOUT_MS, maxBuffer: 64 << 20 }, (error, _out, err) =>
				error ? reject(new Error(`npm ci failed: ${error.message}\n${err}`)) : resolve()
			);
		});
		const seconds = round((performance.now() - t0) / 1000, 2);
		return { seconds, npmVersion, packages: total, cachedTarballs: cached, cacheWarm: total > 0 && cached === total };
	} finally {
		await rm(dir, { recursive: true, force: true });
	}
}
