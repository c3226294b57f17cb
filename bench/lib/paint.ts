import type { Page } from 'playwright-core';

/**
 * A script for `page.addInitScript`, run before any page script: it notes in
 * `window.benchPaintedAt` the instant (ms since navigation start) just after the frame that first
 * shows the message `newestId`. With `track`, it also collects long tasks (`window.benchLongTasks`)
 * and every message id ever shown (`window.benchSeen`: the list renders a window, so the DOM alone
 * does not say how far the reader went). A string, not a function: tsx's esbuild adds `__name()`
 * helpers to functions, which do not exist in the page.
 */
export function newestPaintScript(newestId: string, { track = false }: { track?: boolean } = {}): string {
	return `(() => {
		const track = ${track};
		if (track) {
			window.benchLongTasks = [];
			try {
				new PerformanceObserver((list) => {
					for (const e of list.getEntries()) window.benchLongTasks.push({ start: e.startTime, duration: e.duration });
				}).observe({ type: 'longtask', buffered: true });
			} catch {}
			window.benchSeen = new Set();
		}
		const target = '[data-message-id="' + ${JSON.stringify(newestId)} + '"]';
		let painted = false;
		const observer = new MutationObserver(() => {
			if (track) for (const e of document.querySelectorAll('[data-message-id]')) window.benchSeen.add(e.getAttribute('data-message-id'));
			if (painted || !document.querySelector(target)) return;
			painted = true;
			if (!track) observer.disconnect();
			// rAF runs before the frame is painted; a task queued from it runs after that paint.
			requestAnimationFrame(() => {
				const channel = new MessageChannel();
				channel.port1.onmessage = () => { window.benchPaintedAt = performance.now(); };
				channel.port2.postMessage(null);
			});
		});
		observer.observe(document, { subtree: true, childList: true });
	})();`;
}

/** Waits for the page script above to note the paint and returns its instant (ms since navigation start). */
export async function waitForNewestPaint(page: Page, timeoutMs: number): Promise<number> {
	const handle = await page.waitForFunction(() => (window as unknown as { benchPaintedAt?: number }).benchPaintedAt, null, { timeout: timeoutMs });
	return (await handle.jsonValue()) as number;
}
