/** The peer benchmark's terminal tables and the markdown for the README (bench/results/latest.md). */
import type { ColdJoinRow, FanoutResult, FanoutStats, IdleResult } from '../peers';
import type { ServerKind } from './servers';

export interface PeerResults {
	date: string;
	machine: { cpu: string; node: string; loadAvgBefore: number; loadAvgAfter: number };
	options: { quick: boolean; profile: boolean; scenarios: number[]; servers: ServerKind[] };
	labels: Record<ServerKind, string>;
	fanout: Partial<Record<ServerKind, FanoutResult>>;
	idle: Partial<Record<ServerKind, IdleResult>>;
	coldJoin: Partial<Record<ServerKind, ColdJoinRow[]>>;
	errors?: string[];
}

type Table = { title: string; head: string[]; rows: string[][] };

const YJS_PEERS: ServerKind[] = ['y-websocket', 'hocuspocus'];
const n = (v: number | undefined, digits = 1): string => (v === undefined || Number.isNaN(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits }));
const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || !b || Number.isNaN(a) || Number.isNaN(b) ? '—' : `${(a / b).toFixed(2)}×`);

function tables(r: PeerResults): Table[] {
	const out: Table[] = [];
	const label = (k: ServerKind): string => r.labels[k];
	const fan = (Object.entries(r.fanout) as [ServerKind, FanoutResult | undefined][]).filter((e): e is [ServerKind, FanoutResult] => !!e[1]);
	if (fan.length) {
		out.push({
			title: '1. Fan-out: 1,000 clients, 100 rooms of 10, 1 message/s each',
			head: ['server', 'p50 ms', 'p99 ms', 'p99 of each round, ms', 'max ms', 'deliveries/s', 'delivered', 'server CPU µs/delivery', 'server cores', 'RSS MiB', 'generator cores'],
			rows: fan.map(([k, f]) => [
				label(k),
				n(f.s1.p50Ms, 2),
				n(f.s1.p99Ms, 2),
				f.s1.roundP99Ms?.map((v) => n(v, 1)).join(' / ') ?? '—',
				n(f.s1.maxMs, 1),
				n(f.s1.deliveriesPerSecond, 0),
				`${(f.s1.deliveredFraction * 100).toFixed(2)} %`,
				f.s1.dbCpuUsPerDelivery === undefined ? n(f.s1.serverCpuUsPerDelivery) : `${n(f.s1.serverCpuUsPerDelivery)} + ${n(f.s1.dbCpuUsPerDelivery)} postgres`,
				n(f.s1.serverCores, 2),
				n(f.s1.rssMiB, 0),
				f.s1.generatorCores.join(' + ')
			])
		});
		if (fan.some(([, f]) => f.s2.length)) {
			out.push({
				title: `2. Throughput: rate raised until p99 > 100 ms (or < 99 % delivered)`,
				head: ['server', 'best deliveries/s', 'steps: msgs in/s → p99 ms (delivered %)', 'server cores at last step', 'generator cores at last step', 'machine busy cores at last step', 'generator loop lag p99 / sends late p99 at last step, ms'],
				rows: fan.map(([k, f]) => {
					const last = f.s2.at(-1);
					return [
						label(k),
						n(f.s2BestDeliveriesPerSecond, 0),
						f.s2.map((s) => `${n(s.messagesInPerSecond, 0)} → ${n(s.p99Ms, 1)} (${(s.deliveredFraction * 100).toFixed(0)} %)`).join('; '),
						n(last?.serverCores, 2),
						last ? last.generatorCores.join(' + ') : '—',
						last?.machineCores !== undefined ? `${n(last.machineCores, 2)} of ${r.machine.cpu.split('× ')[1] ?? '?'}` : '—',
						last?.generatorLoopLagP99Ms !== undefined ? `${n(last.generatorLoopLagP99Ms, 1)} / ${n(last.generatorSendLateP99Ms, 1)}` : '—'
					];
				})
			});
		}
	}
	const joins = (Object.entries(r.coldJoin) as [ServerKind, ColdJoinRow[] | undefined][]).filter((e): e is [ServerKind, ColdJoinRow[]] => !!e[1]);
	if (joins.length) {
		const sizes = joins[0][1].map((row) => row.messages);
		out.push({
			title: `3. Cold join: socket open → newest 50 messages in hand (median of ${joins[0][1][0]?.joins.length ?? 0}); ms / KiB received`,
			head: ['server', ...sizes.map((s) => `${n(s, 0)} msgs`), `largest ÷ ${n(sizes[0], 0)}`],
			rows: joins.map(([k, rows]) => [
				label(k),
				...rows.map((row) => `${n(row.medianMs, 1)} ms / ${n(row.medianBytes / 1024, 1)} KiB${row.joins[0]?.usedHistoryApi ? ' (+API)' : ''}`),
				ratio(rows.at(-1)?.medianMs, rows[0]?.medianMs)
			])
		});
		const ours = joins.filter(([k]) => k.startsWith('ours'));
		if (ours.length) {
			out.push({
				title: '3b. Our relay: the room as it grows (seeded through the real write path, scripts/seed.ts; joins measured once compaction caught up)',
				head: ['history', 'seeding (messages added)', 'compaction caught up after', 'live messages', 'live document (sync step 2)', 'join ms', 'newest 50 from'],
				rows: ours.flatMap(([, rows]) =>
					rows.map((row, i) => [
						n(row.messages, 0),
						`${n(row.seedMs / 1000, 1)} s (${n(row.messages - (rows[i - 1]?.messages ?? 0), 0)})`,
						row.compactionWaitMs === undefined ? '—' : `${n(row.compactionWaitMs / 1000, 1)} s`,
						n(row.joins[0]?.liveMessages, 0),
						`${n(row.liveDocBytes / 1024, 1)} KiB`,
						n(row.medianMs, 1),
						row.joins[0]?.usedHistoryApi ? 'document + GET messages?limit=50' : 'the live document'
					])
				)
			});
		}
	}
	const idle = (Object.entries(r.idle) as [ServerKind, IdleResult | undefined][]).filter((e): e is [ServerKind, IdleResult] => !!e[1]);
	if (idle.length) {
		out.push({
			title: '4. Idle cost (server process memory, each sample right after a forced full GC, settled; glibc hands large blocks back at once: MALLOC_MMAP_THRESHOLD_)',
			head: ['server', 'idle connections added', 'RSS before → with, MiB', 'KB per connection: RSS / JS heap', 'rooms opened then left', 'RSS before → open → after, MiB', 'JS heap before → open → after, MiB', 'sampled after'],
			rows: idle.map(([k, i]) => [
				label(k),
				`${n(i.connections, 0)} (+${n(i.warmConnections, 0)} before)`,
				`${n(i.rssBeforeMiB)} → ${n(i.rssWithMiB)}`,
				`${n(i.kbPerConnection, 1)} / ${n(i.heapKbPerConnection, 1)}`,
				n(i.leftRooms, 0),
				`${n(i.rssBeforeRoomsMiB)} → ${n(i.rssRoomsOpenMiB)} → ${n(i.rssAfterLeftMiB)}`,
				`${n(i.heapBeforeRoomsMiB)} → ${n(i.heapRoomsOpenMiB)} → ${n(i.heapAfterLeftMiB)}`,
				`${n(i.waitedAfterLeftMs / 1000, 0)} s`
			])
		});
	}
	return out;
}

/** In how many of scenario 1's rounds ours had the lower p99 (round k of each ran minutes apart at most). */
function roundsLower(ours: FanoutStats, peer: FanoutStats | undefined): string {
	const a = ours.roundP99Ms;
	const b = peer?.roundP99Ms;
	if (!a || !b || a.length !== b.length) return '';
	return ` (lower in ${a.filter((v, i) => v <= b[i]).length} of ${a.length} rounds)`;
}

/** Ours against each peer, and the goals. */
function ratios(r: PeerResults): Table | null {
	const ours = r.fanout.ours;
	const rows: string[][] = [];
	const peers = (Object.keys(r.labels) as ServerKind[]).filter((k) => !k.startsWith('ours'));
	const oursKinds = (Object.keys(r.fanout) as ServerKind[]).filter((k) => k.startsWith('ours'));
	for (const o of oursKinds.length ? oursKinds : ['ours' as ServerKind]) {
		const f = r.fanout[o];
		for (const p of peers) {
			const pf = r.fanout[p];
			if (f && pf) {
				rows.push([`${r.labels[o]} ÷ ${r.labels[p]}`, 'p99 latency (s1)', ratio(f.s1.p99Ms, pf.s1.p99Ms)]);
				rows.push([`${r.labels[o]} ÷ ${r.labels[p]}`, 'server CPU per delivery (s1)', ratio(f.s1.serverCpuUsPerDelivery, pf.s1.serverCpuUsPerDelivery)]);
				if (f.s2.length && pf.s2.length) rows.push([`${r.labels[o]} ÷ ${r.labels[p]}`, 'sustained deliveries/s (s2)', ratio(f.s2BestDeliveriesPerSecond, pf.s2BestDeliveriesPerSecond)]);
			}
		}
	}
	const oi = r.idle.ours;
	for (const p of peers) {
		const pi = r.idle[p];
		if (oi && pi) rows.push([`${r.labels.ours} ÷ ${r.labels[p]}`, 'memory per idle connection (s4)', ratio(oi.kbPerConnection, pi.kbPerConnection)]);
		const oj = r.coldJoin.ours;
		const pj = r.coldJoin[p];
		if (oj && pj) for (const [i, row] of oj.entries()) rows.push([`${r.labels.ours} ÷ ${r.labels[p]}`, `cold join, ${n(row.messages, 0)} messages (s3)`, ratio(row.medianMs, pj[i]?.medianMs)]);
	}
	// Goals (issue 6).
	const best = (f: (k: ServerKind) => number | undefined, pick: (a: number, b: number) => number): number | undefined => {
		const vals = YJS_PEERS.map(f).filter((v): v is number => v !== undefined && !Number.isNaN(v));
		return vals.length ? vals.reduce((a, b) => pick(a, b)) : undefined;
	};
	const goal = (what: string, value: string, ok: boolean | undefined): string[] => ['goal', what, `${value} ${ok === undefined ? '(not measured)' : ok ? '✅ met' : '❌ missed'}`];
	if (ours) {
		const bestP99 = best((k) => r.fanout[k]?.s1.p99Ms, Math.min);
		const wsP99 = r.fanout.ws?.s1.p99Ms;
		const bestKind = YJS_PEERS.find((k) => r.fanout[k]?.s1.p99Ms === bestP99);
		rows.push(goal('s1 p99 ≤ best Yjs peer', `${n(ours.s1.p99Ms, 2)} vs ${n(bestP99, 2)} ms${roundsLower(ours.s1, bestKind && r.fanout[bestKind]?.s1)}`, bestP99 === undefined ? undefined : ours.s1.p99Ms <= bestP99));
		rows.push(goal('s1 p99 ≤ 2× bare ws', `${ratio(ours.s1.p99Ms, wsP99)}`, wsP99 === undefined ? undefined : ours.s1.p99Ms <= 2 * wsP99));
		const bestTput = best((k) => (r.fanout[k]?.s2.length ? r.fanout[k]!.s2BestDeliveriesPerSecond : undefined), Math.max);
		if (ours.s2.length) rows.push(goal('s2 throughput ≥ 1.5× best Yjs peer', `${ratio(ours.s2BestDeliveriesPerSecond, bestTput)}`, bestTput === undefined ? undefined : ours.s2BestDeliveriesPerSecond >= 1.5 * bestTput));
	}
	const oj = r.coldJoin.ours;
	if (oj && oj.length > 1) rows.push(goal(`s3 join at ${n(oj.at(-1)!.messages, 0)} ≤ 1.2× at ${n(oj[0].messages, 0)}`, ratio(oj.at(-1)!.medianMs, oj[0].medianMs), oj.at(-1)!.medianMs <= 1.2 * oj[0].medianMs));
	if (oi) {
		// The larger of the two: RSS could still hide a little reuse of free pages; the heap misses native memory.
		const kb = Math.max(oi.kbPerConnection, oi.heapKbPerConnection ?? -Infinity);
		rows.push(goal('s4 memory per idle connection ≤ 16 KB', `${n(kb, 1)} KB (RSS ${n(oi.kbPerConnection, 1)}, JS heap ${n(oi.heapKbPerConnection, 1)})`, kb <= 16));
	}
	return rows.length ? { title: 'Ratios (same run) and goals', head: ['comparison', 'measure', 'value'], rows } : null;
}

export function printTables(r: PeerResults): void {
	console.log(`\nPeers, ${r.date} — ${r.machine.cpu}, Node ${r.machine.node}, load average ${r.machine.loadAvgBefore} before, ${r.machine.loadAvgAfter} after${r.options.quick ? ' (--quick)' : ''}`);
	const all = [...tables(r), ratios(r)].filter((t): t is Table => t !== null);
	for (const t of all) {
		const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((row) => row[i]?.length ?? 0)));
		console.log(`\n${t.title}`);
		console.log(t.head.map((h, i) => h.padEnd(widths[i])).join('  '));
		for (const row of t.rows) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
	}
	for (const [k, f] of Object.entries(r.fanout) as [ServerKind, FanoutResult | undefined][]) {
		if (!f?.profile) continue;
		console.log(`\nCPU profile of ${r.labels[k]} (scenarios 1${f.s2.length ? '+2' : ''}), self time`);
		for (const e of f.profile) console.log(`  ${e.kind === 'package' ? 'pkg' : 'fn '}  ${String(e.percent).padStart(5)} %  ${e.name}`);
	}
}

/** latest.md: the tables and ratios, with machine, date and how to reproduce; scenarios 5 and 6 when the same run made them. */
export function renderMarkdown(r: PeerResults, extras: { crdt?: any; browser?: any; history?: any } = {}): string {
	const lines = [
		`Measured ${r.date.slice(0, 16).replace('T', ' ')} UTC on ${r.machine.cpu} (loopback), Node ${r.machine.node}, load average ${r.machine.loadAvgBefore} before → ${r.machine.loadAvgAfter} after${r.options.quick ? ', --quick run' : ''}. ` +
			'Reproduce: `npm run bench` (everything, ends by itself), or `npx tsx bench/peers.ts [--scenario 1,2,3,4] [--servers ours,y-websocket,hocuspocus,ws]`; raw numbers in `bench/results/*.json`.',
		'',
		'Load: 2 generator processes of protocol-level y-websocket clients (a minimal RFC 6455 client on bare TCP sockets, real Yjs updates, open-loop schedule, latency from the scheduled send instant), on the same 2 cores as the server. Scenario 1 runs in rounds the servers take turns at (all started and connected first), pooled. ' +
			'Our relay runs as shipped (`node --import tsx src/main.ts`: authorization, validation, forwarding at once and a durable acknowledgement after each PostgreSQL group commit, compaction into DynamoDB); its RSS and CPU include the web app and the embedded databases in the same process.',
		''
	];
	for (const t of [...tables(r), ratios(r)].filter((x): x is Table => x !== null)) {
		lines.push(`**${t.title}**`, '', `| ${t.head.join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`);
		for (const row of t.rows) lines.push(`| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
		lines.push('');
	}
	const c = extras.crdt;
	if (c) {
		lines.push(
			`**5. The CRDT choice: the same ${n(c.messages, 0)}-message room log** (\`bench/crdt.ts\`)`,
			'',
			'| measure | Yjs | Automerge | Automerge ÷ Yjs |',
			'|---|---|---|---|',
			`| encoded size | ${n(c.yjs.bytes / 1024, 0)} KiB | ${n(c.automerge.bytes / 1024, 0)} KiB | ${ratio(c.automerge.bytes, c.yjs.bytes)} |`,
			`| load | ${n(c.yjs.loadMs, 1)} ms | ${n(c.automerge.loadMs, 0)} ms | ${ratio(c.automerge.loadMs, c.yjs.loadMs)} |`,
			`| append one message | ${n(c.yjs.appendMs, 3)} ms | ${n(c.automerge.appendMs, 2)} ms | ${ratio(c.automerge.appendMs, c.yjs.appendMs)} |`,
			''
		);
	}
	const h = extras.history;
	if (h) {
		const [ours, single] = [h.runs.shipped, h.runs.single];
		const w = h.workload;
		lines.push(
			`**Compaction into DynamoDB: ${n(w.steps * w.stepMessages, 0)} messages sealed in steps of ${w.stepMessages} over ${w.rooms} rooms, then ${w.pages} pages of ${w.pageSize}** (\`bench/history.ts\`, embedded dynalite, best of ${w.rounds})`,
			'',
			`| measure | runs of ${h.itemMessages} per item (shipped) | one message per item | one per item ÷ shipped |`,
			'|---|---|---|---|',
			`| seal: process CPU per sealed message | ${n(h.perSealedMessageUs.shipped, 1)} µs | ${n(h.perSealedMessageUs.single, 1)} µs | ${ratio(h.perSealedMessageUs.single, h.perSealedMessageUs.shipped)} |`,
			`| seal: event loop busy | ${n(ours.sealLoopBusyMs, 0)} ms | ${n(single.sealLoopBusyMs, 0)} ms | ${ratio(single.sealLoopBusyMs, ours.sealLoopBusyMs)} |`,
			`| read: process CPU for the pages | ${n(ours.readCpuMs, 0)} ms | ${n(single.readCpuMs, 0)} ms | ${ratio(single.readCpuMs, ours.readCpuMs)} |`,
			''
		);
	}
	const b = extras.browser;
	if (b) {
		lines.push(
			`**6. The browser: a ${n(b.room.messages, 0)}-message room in Chromium** (\`bench/browser.ts\`; the device holds the live document, ${n(b.room.liveMessages, 0)} messages, ${n(b.room.liveDocBytes / 1024, 0)} KiB; older ones are history pages)`,
			'',
			'| measure | value |',
			'|---|---|',
			`| navigation → newest message painted, room cached on the device | median ${n(b.newestPainted.medianMs, 0)} ms, p90 ${n(b.newestPainted.p90Ms, 0)} ms (${b.newestPainted.navigations} navigations) |`,
			`| long tasks while scrolling up (${b.scrolling.wheelSteps} wheel steps of ${b.scrolling.wheelPx} px, ${n(b.scrolling.messagesSeenAfter - b.scrolling.messagesSeenBefore, 0)} older messages shown, ${b.scrolling.historyPages ?? '—'} history pages fetched) | ${b.scrolling.longTasks} tasks, ${n(b.scrolling.longTaskTotalMs, 0)} ms in all, longest ${n(b.scrolling.longTaskMaxMs, 0)} ms |`,
			''
		);
	}
	return lines.join('\n');
}
