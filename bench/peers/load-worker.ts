/**
 * A load-generator process (forked by bench/peers/load.ts, driven over IPC): protocol-level
 * clients, each with its own socket (bench/peers/lean-socket.ts), Yjs client id and tiny document. Senders follow an open-loop
 * schedule: message k of client j is due at start + phase_j + k / rate, the due instant travels in
 * the message text, and receivers time each message against it — a late send counts as latency,
 * never as a pause in the schedule (no coordinated omission).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { newMessageId } from '../../src/lib/shared/message-id';
import { LeanSocket } from './lean-socket';
import { classify, hocusAuthFrame, markerText, nowUs, scanMarkers, syncStep1Frame, syncStep2Frame, updateFrame, Writer, type Dialect } from './wire';
import * as Y from 'yjs';

export interface ClientSpec {
	url: string;
	dialect: Dialect;
	docName: string;
	clientId: number;
	author: string;
	/** false for the bare fan-out: nothing answers a sync step, the socket is ready when open. */
	expectsSync: boolean;
}

export type WorkerCommand =
	| { type: 'connect'; clients: ClientSpec[]; timeoutMs: number }
	| { type: 'run'; startUs: number; durationMs: number; ratePerClient: number; senders: number; phaseShift: number; windowStartUs: number; windowEndUs: number; drainMs: number }
	| { type: 'close' };

export type WorkerReply =
	| { type: 'connected'; ok: number; failed: string[] }
	| {
			type: 'ran';
			sent: number;
			sentInWindow: number;
			received: number;
			samplesUs: Float64Array;
			/** CPU time and wall time of the measured window (of the whole run if the window was not sampled). */
			cpuMs: number;
			wallMs: number;
			closes: string[];
			/** This process's own delays: event-loop lag (p99, max) and how late sends left vs their due instant (p99, max), ms. */
			loopLagP99Ms: number;
			loopLagMaxMs: number;
			sendLateP99Ms: number;
			sendLateMaxMs: number;
	  }
	| { type: 'closed' };

class Client {
	readonly ws: LeanSocket;
	readonly writer: Writer;
	synced: boolean;
	seq = 0;

	constructor(readonly spec: ClientSpec, onSynced: () => void, onFail: (why: string) => void, onMarker: (scheduledUs: number) => void, onClose: (why: string) => void) {
		this.writer = new Writer(spec.clientId);
		this.synced = false;
		const { dialect, docName } = spec;
		this.ws = new LeanSocket(spec.url, {
			open: () => {
				if (dialect === 'hocus') this.ws.send(hocusAuthFrame(docName));
				if (!spec.expectsSync) {
					this.synced = true;
					onSynced();
					return;
				}
				this.ws.send(syncStep1Frame(dialect, docName, this.writer.doc));
			},
			message: (data) => {
				const inbound = classify(dialect, data);
				if (inbound.kind === 'update') scanMarkers(data, spec.clientId, onMarker);
				else if (inbound.kind === 'step1') this.ws.send(syncStep2Frame(dialect, docName, Y.encodeStateAsUpdate(this.writer.doc, inbound.stateVector)));
				else if (inbound.kind === 'step2' && !this.synced) {
					this.synced = true;
					onSynced();
				}
			},
			fail: onFail,
			close: onClose
		});
	}

	send(scheduledUs: number): void {
		const message = { id: newMessageId(), author: this.spec.author, ts: Date.now(), kind: 'text' as const, text: markerText(scheduledUs, this.spec.clientId, this.seq++) };
		this.ws.send(updateFrame(this.spec.dialect, this.spec.docName, this.writer.push(message)));
	}
}

let clients: Client[] = [];
let closing = false;
const closes: string[] = [];
let samples = new Float64Array(1 << 16);
let sampleCount = 0;
let received = 0;
let window = { start: 0, end: 0 };

function onMarker(scheduledUs: number): void {
	received++;
	if (scheduledUs < window.start || scheduledUs >= window.end) return;
	if (sampleCount === samples.length) {
		const bigger = new Float64Array(samples.length * 2);
		bigger.set(samples);
		samples = bigger;
	}
	samples[sampleCount++] = nowUs() - scheduledUs;
}

function reply(message: WorkerReply): void {
	process.send!(message);
}

function connect(specs: ClientSpec[], timeoutMs: number): void {
	let pending = specs.length;
	const failed: string[] = [];
	let done = false;
	const finish = (): void => {
		if (done) return;
		done = true;
		clearTimeout(timer);
		reply({ type: 'connected', ok: clients.filter((c) => c.synced).length, failed });
	};
	const timer = setTimeout(() => {
		failed.push(`${clients.filter((c) => !c.synced).length} not synced within ${timeoutMs} ms`);
		finish();
	}, timeoutMs);
	const settle = (): void => {
		if (--pending === 0) finish();
	};
	for (const spec of specs) {
		let settled = false;
		const once = (why?: string): void => {
			if (settled) return;
			settled = true;
			if (why) failed.push(why);
			settle();
		};
		clients.push(
			new Client(spec, () => once(), (why) => once(why), onMarker, (why) => {
				if (!closing) closes.push(why);
				once(`closed before sync: ${why}`);
			})
		);
	}
	if (specs.length === 0) finish();
}

/**
 * The event-loop monitor's timer period, ms. Its histogram holds the whole time between two ticks
 * of that timer (an idle loop reads 5 ms), so the lag is what exceeds the period.
 */
const LAG_RESOLUTION_MS = 5;
const lateBy = (intervalNs: number): number => Math.max(0, intervalNs / 1e6 - LAG_RESOLUTION_MS);

/** Sends on the schedule, then waits drainMs for the last deliveries, then reports. */
function run(cmd: Extract<WorkerCommand, { type: 'run' }>): void {
	window = { start: cmd.windowStartUs, end: cmd.windowEndUs };
	samples = new Float64Array(1 << 16);
	sampleCount = 0;
	received = 0;
	closes.length = 0;
	const senders = clients.slice(0, cmd.senders);
	const periodUs = 1e6 / cmd.ratePerClient;
	const endUs = cmd.startUs + cmd.durationMs * 1000;
	// Phases spread evenly over one period; this worker's senders interleave with the other worker's.
	const phase = (j: number): number => ((j + cmd.phaseShift) / senders.length) * periodUs;
	let cycle = 0;
	let j = 0;
	let sent = 0;
	let sentInWindow = 0;
	const cpu0 = process.cpuUsage();
	const wall0 = performance.now();
	// Generator-side delay, to tell a slow server from a slow generator: the event loop's lag, and
	// how late each send left its process (both included in the latencies, by design).
	// CPU over the measured window only (the whole run has idle warm-up edges and the drain).
	const untilMs = (us: number): number => Math.max(0, (us - nowUs()) / 1000);
	let windowCpu0: NodeJS.CpuUsage | undefined;
	let windowWall0 = 0;
	let windowCpuMs = NaN;
	let windowWallMs = NaN;
	setTimeout(() => {
		windowCpu0 = process.cpuUsage();
		windowWall0 = performance.now();
	}, untilMs(cmd.windowStartUs));
	setTimeout(() => {
		if (!windowCpu0) return;
		const c = process.cpuUsage(windowCpu0);
		windowCpuMs = (c.user + c.system) / 1000;
		windowWallMs = performance.now() - windowWall0;
	}, untilMs(cmd.windowEndUs));
	const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
	lag.enable();
	const late: number[] = [];
	const pump = (): void => {
		const now = nowUs();
		for (;;) {
			const due = cmd.startUs + cycle * periodUs + phase(j);
			if (due >= endUs) {
				setTimeout(report, cmd.drainMs);
				return;
			}
			if (due > now) {
				setTimeout(pump, Math.max(0, Math.floor((due - now) / 1000)));
				return;
			}
			const client = senders[j];
			if (client.ws.open) {
				client.send(due);
				if (due >= window.start && due < window.end) late.push(nowUs() - due);
				sent++;
				if (due >= window.start && due < window.end) sentInWindow++;
			}
			if (++j === senders.length) {
				j = 0;
				cycle++;
			}
		}
	};
	const report = (): void => {
		const cpu = process.cpuUsage(cpu0);
		lag.disable();
		late.sort((a, b) => a - b);
		const lateAt = (q: number): number => (late.length ? late[Math.min(late.length - 1, Math.ceil(q * late.length) - 1)] / 1000 : 0);
		reply({
			loopLagP99Ms: lateBy(lag.percentile(99)),
			loopLagMaxMs: lateBy(lag.max),
			sendLateP99Ms: lateAt(0.99),
			sendLateMaxMs: lateAt(1),
			type: 'ran',
			sent,
			sentInWindow,
			received,
			samplesUs: samples.slice(0, sampleCount),
			cpuMs: Number.isNaN(windowCpuMs) ? (cpu.user + cpu.system) / 1000 : windowCpuMs,
			wallMs: Number.isNaN(windowWallMs) ? performance.now() - wall0 : windowWallMs,
			closes: [...closes]
		});
	};
	if (senders.length === 0) setTimeout(report, Math.max(0, (endUs - nowUs()) / 1000) + cmd.drainMs);
	else pump();
}

/** Closes every client (the closing handshake, cut short after 5 s), then reports. */
async function closeAll(): Promise<void> {
	closing = true;
	const timer = setTimeout(() => {
		for (const c of clients) c.ws.terminate();
	}, 5_000);
	for (const c of clients) c.ws.close();
	await Promise.all(clients.map((c) => c.ws.ended));
	clearTimeout(timer);
	clients = [];
	closing = false;
	reply({ type: 'closed' });
}

process.on('message', (cmd: WorkerCommand) => {
	if (cmd.type === 'connect') connect(cmd.clients, cmd.timeoutMs);
	else if (cmd.type === 'run') run(cmd);
	else if (cmd.type === 'close') void closeAll();
});
// The parent owns this process: when it goes, so does the worker.
process.on('disconnect', () => process.exit(0));
