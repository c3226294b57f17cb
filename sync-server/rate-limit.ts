/** A token bucket: `capacity` actions at once, refilled at `perSecond`. */
export class TokenBucket {
	readonly #capacity: number;
	readonly #perMs: number;
	#tokens: number;
	#updatedAt: number;

	constructor(capacity: number, perSecond: number, now = Date.now()) {
		this.#capacity = capacity;
		this.#perMs = perSecond / 1000;
		this.#tokens = capacity;
		this.#updatedAt = now;
	}

	/** Takes one token; false when the bucket is empty. */
	take(now = Date.now()): boolean {
		this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#updatedAt) * this.#perMs);
		this.#updatedAt = now;
		if (this.#tokens < 1) return false;
		this.#tokens -= 1;
		return true;
	}
}
