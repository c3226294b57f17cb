/**
 * Every request: security headers, the CSRF check for state-changing API calls, the session from
 * its cookie, and the mapping of ApiError (and unexpected errors) to the contract's JSON errors.
 */
import type { Handle, HandleServerError } from '@sveltejs/kit';
import { ApiError, errorResponse } from '$lib/server/http';
import { getServices } from '$lib/server/services';
import { setSessionCookie } from '$lib/server/session-cookie';
import { SESSION_COOKIE, validateSessionToken } from '$lib/server/sessions';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * SvelteKit's own CSRF check covers form posts only; JSON endpoints need theirs. A browser always
 * sends Origin (or at least Sec-Fetch-Site) on a cross-site POST; a request with neither is not
 * from a browser page and cannot carry a victim's cookies by accident.
 */
function crossSiteRequest(request: Request, url: URL, allowedOrigins: string[]): boolean {
	const origin = request.headers.get('origin');
	if (origin !== null) return origin !== url.origin && !allowedOrigins.includes(origin);
	const site = request.headers.get('sec-fetch-site');
	return site !== null && site !== 'same-origin' && site !== 'none';
}

function setSecurityHeaders(response: Response): void {
	const headers = response.headers;
	headers.set('x-content-type-options', 'nosniff');
	headers.set('referrer-policy', 'same-origin');
	headers.set('x-frame-options', 'DENY');
	headers.set('cross-origin-opener-policy', 'same-origin');
	headers.set('permissions-policy', 'camera=(), microphone=(), geolocation=()');
	if (!headers.has('content-security-policy')) {
		// Non-page answers (the API, assets): nothing may run or frame them.
		headers.set('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
	}
}

export const handle: Handle = async ({ event, resolve }) => {
	const { request, url, cookies, locals } = event;
	locals.user = null;
	locals.session = null;
	const isApi = url.pathname.startsWith('/api/');
	let response: Response;
	try {
		const services = await getServices();
		if (!SAFE_METHODS.has(request.method) && crossSiteRequest(request, url, services.config.allowedOrigins)) {
			throw new ApiError(403, 'cross_site_request', 'cross-site requests are not allowed');
		}
		const token = cookies.get(SESSION_COOKIE);
		if (token) {
			const validation = await validateSessionToken(services.db, token);
			if (validation) {
				locals.user = validation.user;
				locals.session = validation.session;
				if (validation.renewed) setSessionCookie(event.cookies, token, url, validation.session.expiresAt);
			} else {
				cookies.delete(SESSION_COOKIE, { path: '/' });
			}
		}
		response = await resolve(event);
		if (isApi && response.status >= 400 && !response.headers.get('content-type')?.includes('application/json')) {
			// SvelteKit's own answers (no such endpoint, method not allowed) in the contract's shape.
			response = apiErrorForStatus(response);
		}
	} catch (error) {
		if (!(error instanceof ApiError)) throw error;
		response = errorResponse(error.status, error.code, error.message, error.headers);
	}
	setSecurityHeaders(response);
	return response;
};

function apiErrorForStatus(response: Response): Response {
	const known: Record<number, [string, string]> = {
		404: ['not_found', 'no such endpoint'],
		405: ['method_not_allowed', 'this endpoint does not take that method']
	};
	const [code, message] = known[response.status] ?? ['error', 'the request failed'];
	const headers: Record<string, string> = {};
	const allow = response.headers.get('allow');
	if (allow) headers.allow = allow;
	return errorResponse(response.status, code, message, headers);
}

export const handleError: HandleServerError = ({ error, event, status }) => {
	if (status !== 404) console.error(`[app] ${event.request.method} ${event.url.pathname} failed:`, error);
	return { code: status === 404 ? 'not_found' : 'internal_error', message: status === 404 ? 'Not found' : 'Something went wrong' };
};
