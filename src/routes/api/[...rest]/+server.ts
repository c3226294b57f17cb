import { errorResponse } from '$lib/server/http';
import type { RequestHandler } from './$types';

/** Unknown API paths answer the contract's JSON 404, whatever the method. */
export const fallback: RequestHandler = async () => errorResponse(404, 'not_found', 'no such endpoint');
