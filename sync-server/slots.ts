/** At most `size` holders at a time; the others wait, in the order they asked. */
export class Slots {
	#free: number;
	readonly #waiting: Array<() => void> = [];

	constructor(size: number) {
		if (!Number.isInteger(size) || size < 1) throw new Error(`slots: size must be a positive integer, got ${size}`);
		this.#free = size;
	}

	/** Resolves with the function that gives the slot back (calling it again does nothing). */
	async acquire(): Promise<() => void> {
		if (this.#free > 0) this.#free -= 1;
		else await new Promise<void>((resolve) => this.#waiting.push(resolve));
		let held = true;
		return () => {
			if (!held) return;
			held = false;
			const next = this.#waiting.shift();
			if (next) next();
			else this.#free += 1;
		};
	}
}
