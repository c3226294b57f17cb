/**
 * Descriptor tokens: short-lived, room-scoped proofs that let a client without cookies (a bot, a
 * Node WebsocketProvider) open one room's socket. Signed with HMAC-SHA256 under a key every
 * instance shares through PostgreSQL. They carry the session id so a revoked session's tokens die
 * with it; they never carry the session token itself.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from './db/database';

const SECRET_NAME = 'relay_token_key';
const TOKEN_VERSION = 1;

export interface RelayTokenClaims {
	userId: string;
	roomId: string;
	sessionId: string;
	/** Expiry, ms since the epoch. */
	exp: number;
}

export type TokenProblem = 'malformed' | 'bad_signature' | 'expired';

export class RelayTokenSigner {
	readonly #key: Buffer;

	constructor(key: Buffer) {
		this.#key = key;
	}

	/** Loads the shared key, creating it on the first start of the first instance. */
	static async load(db: Queryable): Promise<RelayTokenSigner> {
		await db.query('insert into server_secrets (name, value) values ($1, $2) on conflict do nothing', [
			SECRET_NAME,
			randomBytes(32).toString('base64')
		]);
		const rows = await db.query<{ value: string }>('select value from server_secrets where name = $1', [SECRET_NAME]);
		return new RelayTokenSigner(Buffer.from(rows[0].value, 'base64'));
	}

	sign(claims: RelayTokenClaims): string {
		const body = Buffer.from(
			JSON.stringify({ v: TOKEN_VERSION, u: claims.userId, r: claims.roomId, s: claims.sessionId, e: claims.exp })
		).toString('base64url');
		return `${body}.${this.#mac(body)}`;
	}

	verify(token: string, now = Date.now()): RelayTokenClaims | TokenProblem {
		const [body, mac, extra] = token.split('.');
		if (!body || !mac || extra !== undefined || token.length > 1024) return 'malformed';
		const expected = Buffer.from(this.#mac(body));
		const given = Buffer.from(mac);
		if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'bad_signature';
		let parsed: unknown;
		try {
			parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
		} catch {
			return 'malformed';
		}
		const p = parsed as Record<string, unknown>;
		if (
			p.v !== TOKEN_VERSION ||
			typeof p.u !== 'string' ||
			typeof p.r !== 'string' ||
			typeof p.s !== 'string' ||
			typeof p.e !== 'number'
		) {
			return 'malformed';
		}
		if (p.e <= now) return 'expired';
		return { userId: p.u, roomId: p.r, sessionId: p.s, exp: p.e };
	}

	#mac(body: string): string {
		return createHmac('sha256', this.#key).update(body).digest('base64url');
	}
}
