import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RelayTokenSigner } from '../../src/lib/server/relay-token';

const claims = { userId: 'u1', roomId: 'r1', sessionId: 's1', exp: Date.now() + 60_000 };

describe('relay tokens', () => {
	it('round-trips its claims', () => {
		const signer = new RelayTokenSigner(randomBytes(32));
		expect(signer.verify(signer.sign(claims))).toEqual(claims);
	});

	it('refuses a token signed with another key, altered claims, expiry and junk', () => {
		const signer = new RelayTokenSigner(randomBytes(32));
		const other = new RelayTokenSigner(randomBytes(32));
		expect(signer.verify(other.sign(claims))).toBe('bad_signature');
		const [, mac] = signer.sign(claims).split('.');
		const forgedBody = Buffer.from(JSON.stringify({ v: 1, u: 'admin', r: 'r1', s: 's1', e: claims.exp })).toString('base64url');
		expect(signer.verify(`${forgedBody}.${mac}`)).toBe('bad_signature');
		expect(signer.verify(signer.sign({ ...claims, exp: Date.now() - 1 }))).toBe('expired');
		expect(signer.verify('nonsense')).toBe('malformed');
		expect(signer.verify('a.b.c')).toBe('malformed');
	});
});
