import type { Cookies } from '@sveltejs/kit';
import { SESSION_COOKIE, SESSION_TTL_MS } from './sessions';

/** HttpOnly (no script reads it), SameSite=Lax (no cross-site posts carry it), Secure on https. */
export function setSessionCookie(cookies: Cookies, token: string, url: URL, expiresAt = new Date(Date.now() + SESSION_TTL_MS)): void {
	cookies.set(SESSION_COOKIE, token, {
		path: '/',
		httpOnly: true,
		sameSite: 'lax',
		secure: url.protocol === 'https:',
		expires: expiresAt
	});
}

export function clearSessionCookie(cookies: Cookies): void {
	cookies.delete(SESSION_COOKIE, { path: '/' });
}
