/** One authorized socket: the account behind it and what it owns in its room. */
import type { WebSocket } from 'ws';

export interface ConnectionIdentity {
	userId: string;
	userName: string;
	sessionId: string;
	roomId: string;
	/** The client opted into the relay's extension messages (durable acks, rejections). */
	extensions: boolean;
}

export class Connection {
	readonly ws: WebSocket;
	readonly identity: ConnectionIdentity;
	/** Awareness client ids this socket has published; only it may update or remove them. */
	readonly awarenessClients = new Set<number>();
	rejections = 0;
	alive = true;
	#closed = false;

	constructor(ws: WebSocket, identity: ConnectionIdentity) {
		this.ws = ws;
		this.identity = identity;
	}

	get userId(): string {
		return this.identity.userId;
	}

	get closed(): boolean {
		return this.#closed || this.ws.readyState !== this.ws.OPEN;
	}

	send(frame: Uint8Array): void {
		if (this.closed) return;
		this.ws.send(frame, { binary: true });
	}

	close(code: number, reason: string): void {
		if (this.#closed) return;
		this.#closed = true;
		// Close reasons are limited to 123 bytes (RFC 6455 §5.5).
		this.ws.close(code, reason.slice(0, 120));
	}
}
