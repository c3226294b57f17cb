/** Small statistics and timing helpers shared by the benchmarks. */

export function sorted(values: number[]): number[] {
	return [...values].sort((a, b) => a - b);
}

export function median(values: number[]): number {
	const s = sorted(values);
	const mid = Math.floor(s.length / 2);
	return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100): the smallest sample with at least p % of samples at or below it. */
export function percentile(values: number[], p: number): number {
	const s = sorted(values);
	return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

export function round(value: number, digits = 1): number {
	const f = 10 ** digits;
	return Math.round(value * f) / f;
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls GET /api/health every 5 ms until it answers 200; throws after timeoutMs. */
export async function waitHealthy(baseUrl: string, timeoutMs = 60_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	let last = 'no answer';
	while (Date.now() < deadline) {
		try {
			const res = await fetch(`${baseUrl}/api/health`, { signal: AbortSignal.timeout(5_000) });
			await res.arrayBuffer();
			if (res.status === 200) return;
			last = `status ${res.status}`;
		} catch (error) {
			last = String(error);
		}
		await sleep(5);
	}
	throw new Error(`${baseUrl}/api/health did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}
