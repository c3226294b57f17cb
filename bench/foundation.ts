/**
 * Foundation benchmarks: cold start, browser → browser message latency and, with --memory, idle
 * relay memory and with --install, the time of a clean `npm ci`.
 *
 * Usage:
 *   npx tsx bench/foundation.ts            # cold start, latency
 *   npx tsx bench/foundation.ts --memory   # also idle RSS and RSS per connection (slow: RSS settling)
 *   npx tsx bench/foundation.ts --install  # also `npm ci` in a copy of the repo
 *
 * The memory probe is off by default (and so not part of `npm run bench`): scenario 4 of
 * bench/peers.ts measures memory per connection properly (5,000 connections, forced GC before each
 * sample) and reports the server's RSS, while this probe's 100 connections need minutes of RSS
 * settling for a rougher figure.
 *
 * Prints a table and writes bench/results/foundation-<ISO date>.json. Everything runs on
 * 127.0.0.1 with embedded services (PGlite, dynalite) in fresh temporary DATA_DIRs.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../tests/helpers/server';
import { measureColdStart } from './lib/cold-start';
import { measureInstall, type InstallResult } from './lib/install';
import { measureLatency } from './lib/latency';
import { measureMemory } from './lib/memory';
import { median, percentile, round } from './lib/stats';

const withInstall = process.argv.includes('--install');
const withMemory = process.argv.includes('--memory');
const RSS_NOTE = 'RSS covers the whole server process: web app + relay + embedded PGlite + dynalite share one process.';

const IDLE_NOTE = 'V8 frees large startup buffers (PGlite) late and at no fixed time, so "idle" may be before or after that drop.';

function progress(message: string): void {
	process.stderr.write(`[bench] ${message}\n`);
}

function printTable(title: string, rows: [string, string][]): void {
	const width = Math.max(...rows.map(([k]) => k.length));
	console.log(`\n${title}`);
	console.log('-'.repeat(title.length));
	for (const [key, value] of rows) console.log(`  ${key.padEnd(width)}  ${value}`);
}

async function main(): Promise<void> {
	const date = new Date();
	progress('ensuring the web app is built');
	execFileSync(process.execPath, ['scripts/ensure-build.js'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });

	const machine = {
		os: `${os.type()} ${os.release()} ${os.arch()}`,
		cpuModel: os.cpus()[0]?.model ?? 'unknown',
		cpuCount: os.cpus().length,
		totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
		node: process.version,
		/** 1-minute load average before and after: other work on the machine skews every figure. */
		loadAvg: [round(os.loadavg()[0], 2)]
	};

	progress('cold start: 3 fresh DATA_DIRs, then 3 restarts');
	const cold = await measureColdStart(3);
	progress('latency: 5 warm-up + 100 messages between two Chromium contexts');
	const latency = await measureLatency(100, 5);
	let memory: Awaited<ReturnType<typeof measureMemory>> | undefined;
	if (withMemory) {
		progress('memory: idle RSS, then 100 y-websocket connections over 10 rooms');
		memory = await measureMemory();
	}
	let install: InstallResult | undefined;
	if (withInstall) {
		progress('install: npm ci in a copy of the tracked files');
		install = await measureInstall();
	}

	machine.loadAvg.push(round(os.loadavg()[0], 2));
	const ms = (v: number): string => `${round(v, 1)} ms`;
	printTable(`Machine (${date.toISOString()})`, [
		['os', machine.os],
		['cpu', `${machine.cpuModel} × ${machine.cpuCount}`],
		['memory', `${machine.totalMemMiB} MiB`],
		['node', machine.node],
		['load average (1 min)', `${machine.loadAvg[0]} before, ${machine.loadAvg[1]} after`],
		['chromium', latency.chromium]
	]);
	printTable('1. Cold start (spawn → GET /api/health 200)', [
		['fresh DATA_DIR, median', ms(median(cold.freshMs))],
		['fresh DATA_DIR, runs', cold.freshMs.map(ms).join(', ')],
		['existing DATA_DIR, median', ms(median(cold.restartMs))],
		['existing DATA_DIR, runs', cold.restartMs.map(ms).join(', ')],
		['stop exit codes (SIGTERM)', cold.stopExitCodes.join(', ')]
	]);
	const s = latency.samplesMs;
	printTable(`2. Message latency browser → browser, loopback (${s.length} samples after ${latency.warmup} warm-up)`, [
		['median', ms(median(s))],
		['p90', ms(percentile(s, 90))],
		['p99', ms(percentile(s, 99))],
		['max', ms(Math.max(...s))],
		['min', ms(Math.min(...s))],
		['pacing', `closed loop, at most one message per ${latency.minCycleMs} ms (relay awareness rate limit)`],
		['socket closes during loop', latency.socketCloses.length ? latency.socketCloses.join('; ') : 'none'],
		['page visibility', latency.visibility.join(', ')]
	]);
	const rss = (r: { mib: number; settled: boolean; waitedMs: number }): string =>
		`${r.mib} MiB${r.settled ? '' : ' (NOT settled)'} (after ${(r.waitedMs / 1000).toFixed(0)} s)`;
	if (memory) printTable('3. Relay memory (VmRSS of the server process)', [
		['idle, fresh server', rss(memory.idle)],
		['after setup, no sockets', rss(memory.beforeConnections)],
		[`${memory.connections} connections / ${memory.rooms} rooms`, rss(memory.withConnections)],
		['all synced after', `${memory.syncMs} ms`],
		['per connection', `${memory.kbPerConnection} KB (vs. after setup)`],
		['per connection, from idle', `${memory.kbPerConnectionFromIdle} KB (includes setup's API work)`],
		['note', RSS_NOTE],
		['', IDLE_NOTE]
	]);
	if (install) {
		printTable('4. Install (npm ci --no-audit --no-fund, copy of git ls-files)', [
			['time', `${install.seconds} s`],
			['npm', install.npmVersion],
			['npm cache', `${install.cacheWarm ? 'warm' : 'not fully warm'}: ${install.cachedTarballs}/${install.packages} tarballs of this platform's packages cached beforehand`]
		]);
	}

	const results = {
		date: date.toISOString(),
		machine,
		coldStart: {
			freshMs: cold.freshMs,
			freshMedianMs: median(cold.freshMs),
			restartMs: cold.restartMs,
			restartMedianMs: median(cold.restartMs),
			stopExitCodes: cold.stopExitCodes
		},
		latency: {
			chromium: latency.chromium,
			warmup: latency.warmup,
			medianMs: median(s),
			p90Ms: percentile(s, 90),
			p99Ms: percentile(s, 99),
			maxMs: Math.max(...s),
			visibility: latency.visibility,
			minCycleMs: latency.minCycleMs,
			socketCloses: latency.socketCloses,
			samplesMs: s
		},
		memory: memory ? { ...memory, notes: [RSS_NOTE, IDLE_NOTE] } : 'not measured (--memory): see bench/peers.ts scenario 4',
		install: install ?? null
	};
	const file = path.join(ROOT, 'bench', 'results', `foundation-${date.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`);
	await mkdir(path.dirname(file), { recursive: true });
	await writeFile(file, JSON.stringify(results, null, 2) + '\n');
	console.log(`\nResults: ${path.relative(ROOT, file)}`);
}

main().then(
	() => process.exit(0),
	(error) => {
		console.error(error);
		process.exit(1);
	}
);
