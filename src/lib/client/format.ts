/** Display helpers for names, times and avatars. Pure functions, so they work on the server too. */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** Local midnight of the day `time` falls on. */
export function startOfDay(time: number): number {
	const d = new Date(time);
	d.setHours(0, 0, 0, 0);
	return d.getTime();
}

/** "14:05" in the viewer's locale. */
export function formatClock(time: number): string {
	return new Date(time).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
}

/** Short time for lists: "14:05" today, "Yesterday", "Mon" this week, "3 Mar", "3 Mar 2023". */
export function formatListTime(time: number, now: number = Date.now()): string {
	const today = startOfDay(now);
	if (time >= today) return formatClock(time);
	if (time >= today - DAY_MS) return 'Yesterday';
	if (time >= today - 6 * DAY_MS) return new Date(time).toLocaleDateString(undefined, { weekday: 'short' });
	const sameYear = new Date(time).getFullYear() === new Date(now).getFullYear();
	return new Date(time).toLocaleDateString(undefined, sameYear ? { day: 'numeric', month: 'short' } : { day: 'numeric', month: 'short', year: 'numeric' });
}

/** Label of a date separator: "Today", "Yesterday", "Monday, 3 March". */
export function formatDayLabel(time: number, now: number = Date.now()): string {
	const today = startOfDay(now);
	if (time >= today) return 'Today';
	if (time >= today - DAY_MS) return 'Yesterday';
	const sameYear = new Date(time).getFullYear() === new Date(now).getFullYear();
	return new Date(time).toLocaleDateString(undefined, sameYear ? { weekday: 'long', day: 'numeric', month: 'long' } : { day: 'numeric', month: 'long', year: 'numeric' });
}

export function isSameDay(a: number, b: number): boolean {
	return startOfDay(a) === startOfDay(b);
}

/** "just now", "5 min ago", "2 h ago", "yesterday", "3 days ago", or a date. */
export function formatAgo(time: number, now: number = Date.now()): string {
	const elapsed = Math.max(0, now - time);
	if (elapsed < MINUTE_MS) return 'just now';
	if (elapsed < HOUR_MS) return `${Math.floor(elapsed / MINUTE_MS)} min ago`;
	if (time >= startOfDay(now)) return `${Math.floor(elapsed / HOUR_MS)} h ago`;
	if (time >= startOfDay(now) - DAY_MS) return `yesterday at ${formatClock(time)}`;
	if (elapsed < 7 * DAY_MS) return `${Math.ceil(elapsed / DAY_MS)} days ago`;
	return `on ${new Date(time).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' })}`;
}

/** "last seen 5 min ago", or "offline" when never seen. */
export function formatLastSeen(lastSeenAt: string | null, now: number = Date.now()): string {
	if (!lastSeenAt) return 'offline';
	const time = Date.parse(lastSeenAt);
	return Number.isNaN(time) ? 'offline' : `last seen ${formatAgo(time, now)}`;
}

/** Up to two initials: "Ana Lima" → "AL", "bob" → "B". */
export function initials(name: string): string {
	const words = name.trim().split(/\s+/).filter(Boolean);
	const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
	return letters.map((w) => Array.from(w)[0]?.toUpperCase() ?? '').join('') || '?';
}

/** A stable hue for an id, so a person keeps their colour everywhere. */
export function hueFor(id: string): number {
	let hash = 2166136261;
	for (let i = 0; i < id.length; i++) {
		hash ^= id.charCodeAt(i);
		hash = Math.imul(hash, 16777619);
	}
	return (hash >>> 0) % 360;
}
