/**
 * Every child process the peer benchmark starts is tracked here and killed when this process
 * ends, however it ends (normal exit, an exception, SIGINT/SIGTERM/SIGHUP).
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const children = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
	children.add(child);
	child.once('exit', () => children.delete(child));
	return child;
}

export function killAll(): void {
	for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
	children.clear();
}

let beforeExit: (() => Promise<void>) | undefined;
/** Work to finish (at most a few seconds) after the children are killed on a signal, before exiting. */
export function onSignal(fn: () => Promise<void>): void {
	beforeExit = fn;
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
	process.once(signal, () => {
		killAll();
		const last = beforeExit;
		beforeExit = undefined;
		if (!last) process.exit(130);
		last().catch((error) => console.error(error)).finally(() => process.exit(130));
	});
}

const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** User + system CPU time of a process so far, in ms (from /proc/<pid>/stat). */
export function cpuMs(pid: number): number {
	const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
	const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
	// After "pid (comm) ", field 3 (state) is index 0: utime is field 14 → index 11, stime index 12.
	return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** Resident set size of a process, in KiB. */
export function rssKb(pid: number): number {
	const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
	if (!match) throw new Error(`no VmRSS for pid ${pid}`);
	return Number(match[1]);
}

/**
 * CPU of every `postgres` process on the machine, in ms: the database side of our relay when it
 * runs on PostgreSQL (the server is shared, so other clients' work is counted too).
 */
export function postgresCpuMs(): number {
	let total = 0;
	for (const entry of readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
			if (stat.includes('(postgres)')) total += cpuMs(Number(entry));
		} catch {
			// the process ended meanwhile
		}
	}
	return total;
}
