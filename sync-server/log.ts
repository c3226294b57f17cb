/** The relay's logger: a small interface so tests can silence it and production can route it. */
export interface Logger {
	info(...args: unknown[]): void;
	error(...args: unknown[]): void;
}

export function createLogger(level: 'silent' | 'error' | 'info'): Logger {
	return {
		info: level === 'info' ? (...args) => console.log(...args) : () => undefined,
		error: level === 'silent' ? () => undefined : (...args) => console.error(...args)
	};
}
