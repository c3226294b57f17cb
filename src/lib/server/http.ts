/** Shaping HTTP answers and reading JSON input for the API routes (CONTRACT.md error format). */
import { json } from '@sveltejs/kit';
import type { SessionUser } from './users';

export class ApiError extends Error {
	readonly status: number;
	readonly code: string;
	readonly headers: Record<string, string>;

	constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
		super(message);
		this.status = status;
		this.code = code;
		this.headers = headers;
	}
}

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
	return json({ error: { code, message } }, { status, headers });
}

/** Largest JSON body the API reads. */
export const JSON_BODY_MAX_BYTES = 64 * 1024;

/** Parses a JSON object body or throws a 400/413/415 ApiError. */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
	const type = request.headers.get('content-type') ?? '';
	if (!type.toLowerCase().startsWith('application/json')) {
		throw new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
	}
	const text = await request.text();
	if (text.length > JSON_BODY_MAX_BYTES) throw new ApiError(413, 'body_too_large', 'the request body is too large');
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		throw new ApiError(400, 'invalid_json', 'the request body is not valid JSON');
	}
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		throw new ApiError(400, 'invalid_body', 'the request body must be a JSON object');
	}
	return value as Record<string, unknown>;
}

export function requireString(body: Record<string, unknown>, field: string, options: { max?: number; min?: number } = {}): string {
	const value = body[field];
	if (typeof value !== 'string') throw new ApiError(400, 'invalid_input', `${field} must be a string`);
	if (options.min !== undefined && value.length < options.min) {
		throw new ApiError(400, 'invalid_input', `${field} must be at least ${options.min} characters`);
	}
	if (options.max !== undefined && value.length > options.max) {
		throw new ApiError(400, 'invalid_input', `${field} must be at most ${options.max} characters`);
	}
	return value;
}

export function optionalString(body: Record<string, unknown>, field: string, max: number): string | undefined {
	if (body[field] === undefined || body[field] === null) return undefined;
	return requireString(body, field, { max });
}

export function requireUser(locals: App.Locals): SessionUser {
	if (!locals.user) throw new ApiError(401, 'unauthorized', 'sign in first');
	return locals.user;
}

/** Wraps an API handler so an ApiError becomes the contract's JSON error. */
export function apiHandler<E extends { locals: App.Locals }>(handler: (event: E) => Promise<Response>): (event: E) => Promise<Response> {
	return async (event) => {
		try {
			return await handler(event);
		} catch (error) {
			if (error instanceof ApiError) return errorResponse(error.status, error.code, error.message, error.headers);
			const url = (event as unknown as { url?: URL }).url;
			console.error(`[api] ${url?.pathname ?? ''} failed:`, error);
			return errorResponse(500, 'internal_error', 'something went wrong; try again');
		}
	};
}
