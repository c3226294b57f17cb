/** Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function and per package. */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface ProfileEntry {
	/** "function (file:line)" or, for kind "package", the package / area. */
	name: string;
	kind: 'function' | 'package';
	selfMs: number;
	/** Share of the busy (non-idle) time. */
	percent: number;
}

/** Where a frame's code lives: a package under node_modules, a project folder, or a V8 pseudo-frame. */
function area(url: string, functionName: string): string {
	if (!url) return functionName.startsWith('(') ? functionName : '(native)';
	const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
	if (nm) return nm[1];
	if (url.startsWith('node:')) return 'node core';
	const project = /\/(sync-server|src|build|bench|tests)\//.exec(url);
	return project ? project[1] : url;
}

function shortUrl(url: string): string {
	return url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(/^.*\/main\//, '');
}

export async function summarizeProfile(file: string, top = 25): Promise<ProfileEntry[]> {
	const profile = JSON.parse(await readFile(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
	const byId = new Map(profile.nodes.map((n) => [n.id, n]));
	const fn = new Map<string, number>();
	const pkg = new Map<string, number>();
	let busy = 0;
	profile.samples.forEach((id, i) => {
		const node = byId.get(id)!;
		const us = profile.timeDeltas[i] ?? 0;
		const { functionName, url, lineNumber } = node.callFrame;
		if (functionName === '(idle)') return;
		busy += us;
		const name = `${functionName || '(anonymous)'}${url ? ` (${shortUrl(url)}:${lineNumber + 1})` : ''}`;
		fn.set(name, (fn.get(name) ?? 0) + us);
		const a = area(url, functionName);
		pkg.set(a, (pkg.get(a) ?? 0) + us);
	});
	const entries = (map: Map<string, number>, kind: ProfileEntry['kind'], n: number): ProfileEntry[] =>
		[...map.entries()]
			.sort((a, b) => b[1] - a[1])
			.slice(0, n)
			.map(([name, us]) => ({ name, kind, selfMs: Math.round(us / 100) / 10, percent: Math.round((us / busy) * 1000) / 10 }));
	return [...entries(pkg, 'package', 12), ...entries(fn, 'function', top)];
}

// `npx tsx bench/peers/profile.ts <file.cpuprofile>`: print the summary.
if (process.argv[1]?.endsWith('profile.ts') && process.argv[2]) {
	for (const e of await summarizeProfile(process.argv[2], Number(process.argv[3] ?? 30))) {
		console.log(`${e.kind === 'package' ? 'pkg ' : 'fn  '} ${String(e.percent).padStart(5)} %  ${String(e.selfMs).padStart(9)} ms  ${e.name}`);
	}
}
