/**
 * `npm run bench`: every benchmark of this project, one after another, each in its own process so
 * one's memory and JIT state do not colour the next. Each prints its table and writes a JSON file
 * under bench/results/; the peer comparison also writes bench/results/latest.md. Loopback only.
 *
 *   npm run bench                 all of them (about 13 minutes on the project's 2-core machine; held to 14.5)
 *   npm run bench -- peers        only the named ones (validation, foundation, offline, crdt, history, browser, peers)
 *   npm run bench -- --quick      shorter peer runs (passed on to bench/peers.ts)
 *
 * Everything ends by itself: each benchmark runs in its own process group with a time limit, and
 * the whole group (servers, load workers, Chromium) is killed when it overruns, fails, or when
 * this process is interrupted.
 *
 * peers (bench/peers.ts) compares our relay with @y/websocket-server, Hocuspocus and bare `ws`
 * (scenarios 1–4 of issue 6); browser (bench/browser.ts) is scenario 6, crdt (bench/crdt.ts) 5;
 * history (bench/history.ts) is compaction's DynamoDB layout against one message per item.
 * Run one peer scenario alone with `npx tsx bench/peers.ts --scenario 1`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * Time limits: about twice each one's usual time on the project's 2-core machine (validation ~30 s,
 * foundation ~75 s, offline ~60 s, crdt ~55 s, history ~20 s, browser ~40 s, peers ~8.5 min), and the whole run is
 * held to RUN_LIMIT_MINUTES: a benchmark's limit is cut to what is left of it.
 */
const BENCHMARKS: Record<string, { script: string; limitMinutes: number }> = {
	validation: { script: 'bench/validation.ts', limitMinutes: 1.5 },
	foundation: { script: 'bench/foundation.ts', limitMinutes: 2.5 },
	offline: { script: 'bench/offline.ts', limitMinutes: 2 },
	crdt: { script: 'bench/crdt.ts', limitMinutes: 2 },
	history: { script: 'bench/history.ts', limitMinutes: 1 },
	browser: { script: 'bench/browser.ts', limitMinutes: 2 },
	peers: { script: 'bench/peers.ts', limitMinutes: 11 }
};
const RUN_LIMIT_MINUTES = Number(process.env.BENCH_RUN_LIMIT_MINUTES ?? 14.5);

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const wanted = args.filter((a) => !a.startsWith('-'));
const passOn = args.filter((a) => a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(BENCHMARKS);
for (const name of names) {
	if (!BENCHMARKS[name]) {
		console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHMARKS).join(', ')}`);
		process.exit(2);
	}
}

let current: ChildProcess | null = null;
const runStarted = Date.now();

/** SIGTERM to the child's whole process group, SIGKILL a few seconds later if anything is left. */
function killGroup(child: ChildProcess, graceMs = 5_000): void {
	const pid = child.pid;
	if (!pid) return;
	try {
		process.kill(-pid, 'SIGTERM');
	} catch {
		return; // the group is gone
	}
	setTimeout(() => {
		try {
			process.kill(-pid, 'SIGKILL');
		} catch {
			// gone
		}
	}, graceMs).unref();
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
	process.on(signal, () => {
		if (current?.pid) {
			try {
				process.kill(-current.pid, 'SIGKILL');
			} catch {
				// gone
			}
		}
		process.exit(130);
	});
}

function runOne(name: string): Promise<{ code: number | null; ms: number; timedOut: boolean }> {
	const { script } = BENCHMARKS[name];
	const left = RUN_LIMIT_MINUTES - (Date.now() - runStarted) / 60_000;
	const limitMinutes = Math.max(0.25, Math.min(BENCHMARKS[name].limitMinutes, left));
	const extra = name === 'peers' ? passOn : [];
	const t0 = performance.now();
	return new Promise((resolve) => {
		// detached: its own process group, so every descendant can be ended together.
		const child = spawn(process.execPath, ['--import', 'tsx', script, ...extra], {
			cwd: root,
			stdio: 'inherit',
			detached: true,
			// peers.ts puts this run's CRDT and browser results into latest.md.
			env: { ...process.env, BENCH_RUN_STARTED: String(runStarted) }
		});
		current = child;
		let timedOut = false;
		const timer = setTimeout(() => {
			timedOut = true;
			console.error(`\n${name} exceeded its ${limitMinutes.toFixed(1)}-minute limit; stopping it`);
			killGroup(child);
		}, limitMinutes * 60_000);
		child.once('exit', (code) => {
			clearTimeout(timer);
			// Whatever the benchmark left behind in its group (a server, Chromium) goes too.
			try {
				process.kill(-child.pid!, 'SIGKILL');
			} catch {
				// nothing left
			}
			current = null;
			resolve({ code, ms: performance.now() - t0, timedOut });
		});
	});
}

const started = performance.now();
const summary: string[] = [];
let failed = 0;
console.log(`npm run bench: ${names.join(', ')} — ${os.cpus()[0]?.model} × ${os.cpus().length}, Node ${process.version}, load average ${os.loadavg()[0].toFixed(2)}`);
for (const name of names) {
	console.log(`\n=== ${name} (${BENCHMARKS[name].script})`);
	const { code, ms, timedOut } = await runOne(name);
	const ok = code === 0 && !timedOut;
	if (!ok) failed++;
	summary.push(`  ${name.padEnd(11)} ${(ms / 1000).toFixed(0).padStart(4)} s  ${ok ? 'ok' : timedOut ? 'TIMED OUT' : `failed (exit ${code})`}`);
}
console.log(`\n=== done in ${((performance.now() - started) / 60_000).toFixed(1)} min (load average ${os.loadavg()[0].toFixed(2)})`);
console.log(summary.join('\n'));
process.exit(failed > 0 ? 1 : 0);
