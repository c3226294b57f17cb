/**
 * One process per DATA_DIR: PGlite and dynalite keep their files there and would corrupt them if
 * two processes wrote at once. The lock is a file holding the owner's pid; a lock whose process
 * is gone (a crash, a SIGKILL) is taken over.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export class DataDirLockedError extends Error {
	constructor(dir: string, pid: number) {
		super(`DATA_DIR ${dir} is in use by another running instance (pid ${pid}); stop it or choose another DATA_DIR`);
		this.name = 'DataDirLockedError';
	}
}

function processAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'EPERM';
	}
}

export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
	await mkdir(dir, { recursive: true });
	const file = path.join(dir, 'instance.lock');
	for (let attempt = 0; attempt < 2; attempt++) {
		try {
			await writeFile(file, String(process.pid), { flag: 'wx' });
			let released = false;
			return async () => {
				if (released) return;
				released = true;
				await rm(file, { force: true });
			};
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
			const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
			if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
				throw new DataDirLockedError(dir, pid);
			}
			await rm(file, { force: true }); // stale: its owner is gone
		}
	}
	throw new Error(`could not take the lock on ${dir}`);
}
