/** The parent side of the load generator: N forked workers (bench/peers/load-worker.ts) as one. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClientSpec, WorkerCommand, WorkerReply } from './load-worker';
import { nowUs } from './wire';
import { track } from './processes';

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

export interface RunResult {
	sent: number;
	sentInWindow: number;
	received: number;
	/** Send-to-receive latencies (ms) of messages scheduled inside the window. */
	latenciesMs: Float64Array;
	windowMs: number;
	/** Load-generator CPU per worker, as a fraction of one core over the measured window. */
	workerCpu: number[];
	closes: string[];
	/** Per worker: event-loop lag p99 / max and send lateness p99 / max, ms. */
	workerDelays: { loopLagP99Ms: number; loopLagMaxMs: number; sendLateP99Ms: number; sendLateMaxMs: number }[];
}

export class LoadGenerator {
	readonly #workers: ChildProcess[];
	readonly #profiled: boolean;
	#senders: number[] = [];

	/** `cpuProfDir`: profile each worker (node --cpu-prof), written there when it stops. */
	constructor(workers = 2, cpuProfDir?: string) {
		this.#profiled = cpuProfDir !== undefined;
		const profile = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
		this.#workers = Array.from({ length: workers }, () => {
			const child = fork(WORKER, [], {
				execArgv: ['--import', 'tsx', ...profile],
				serialization: 'advanced',
				stdio: ['ignore', 'inherit', 'inherit', 'ipc']
			});
			track(child);
			return child;
		});
	}

	#ask<T extends WorkerReply['type']>(worker: ChildProcess, command: WorkerCommand, expect: T): Promise<Extract<WorkerReply, { type: T }>> {
		return new Promise((resolve, reject) => {
			const onMessage = (reply: WorkerReply): void => {
				if (reply.type !== expect) return;
				worker.off('message', onMessage);
				worker.off('exit', onExit);
				resolve(reply as Extract<WorkerReply, { type: T }>);
			};
			const onExit = (code: number | null): void => reject(new Error(`load worker exited (${code}) while waiting for ${expect}`));
			worker.on('message', onMessage);
			worker.once('exit', onExit);
			worker.send(command);
		});
	}

	/** Opens every client (split round-robin over the workers) and waits until each is synced. */
	async connect(specs: ClientSpec[], timeoutMs = 120_000): Promise<void> {
		const parts: ClientSpec[][] = this.#workers.map(() => []);
		specs.forEach((spec, i) => parts[i % parts.length].push(spec));
		this.#senders = parts.map((p) => p.length);
		const replies = await Promise.all(this.#workers.map((w, i) => this.#ask(w, { type: 'connect', clients: parts[i], timeoutMs }, 'connected')));
		const failed = replies.flatMap((r) => r.failed);
		if (failed.length > 0) throw new Error(`${failed.length} clients failed to connect: ${[...new Set(failed)].slice(0, 5).join('; ')}`);
	}

	/**
	 * Every connected client sends ratePerClient messages a second for warmupMs + measureMs; the
	 * latencies of messages scheduled during the last measureMs are kept.
	 */
	async run(options: {
		ratePerClient: number;
		warmupMs: number;
		measureMs: number;
		drainMs?: number;
		sending?: boolean;
		/** Called (on a timer in this process) when the measured window opens and when it closes. */
		onWindow?: (edge: 'start' | 'end') => void;
	}): Promise<RunResult> {
		const startUs = nowUs() + 50_000;
		const windowStartUs = startUs + options.warmupMs * 1000;
		const windowEndUs = windowStartUs + options.measureMs * 1000;
		if (options.onWindow) {
			const at = (us: number): number => Math.max(0, (us - nowUs()) / 1000);
			setTimeout(() => options.onWindow!('start'), at(windowStartUs));
			setTimeout(() => options.onWindow!('end'), at(windowEndUs));
		}
		const replies = await Promise.all(
			this.#workers.map((w, i) =>
				this.#ask(
					w,
					{
						type: 'run',
						startUs,
						durationMs: options.warmupMs + options.measureMs,
						ratePerClient: options.ratePerClient,
						senders: options.sending === false ? 0 : this.#senders[i],
						phaseShift: (i + 0.5) / this.#workers.length,
						windowStartUs,
						windowEndUs,
						drainMs: options.drainMs ?? 2_000
					},
					'ran'
				)
			)
		);
		const total = replies.reduce((n, r) => n + r.samplesUs.length, 0);
		const latenciesMs = new Float64Array(total);
		let at = 0;
		for (const r of replies) for (const us of r.samplesUs) latenciesMs[at++] = us / 1000;
		return {
			sent: replies.reduce((n, r) => n + r.sent, 0),
			sentInWindow: replies.reduce((n, r) => n + r.sentInWindow, 0),
			received: replies.reduce((n, r) => n + r.received, 0),
			latenciesMs,
			windowMs: options.measureMs,
			workerCpu: replies.map((r) => r.cpuMs / r.wallMs),
			closes: replies.flatMap((r) => r.closes),
			workerDelays: replies.map(({ loopLagP99Ms, loopLagMaxMs, sendLateP99Ms, sendLateMaxMs }) => ({ loopLagP99Ms, loopLagMaxMs, sendLateP99Ms, sendLateMaxMs }))
		};
	}

	async closeClients(): Promise<void> {
		await Promise.all(this.#workers.map((w) => this.#ask(w, { type: 'close' }, 'closed')));
	}

	stop(): void {
		for (const w of this.#workers) {
			if (w.exitCode !== null || w.signalCode !== null) continue;
			// A profiled worker exits by itself once disconnected, and writes its profile as it does.
			if (this.#profiled) w.disconnect();
			else w.kill('SIGKILL');
		}
	}
}
