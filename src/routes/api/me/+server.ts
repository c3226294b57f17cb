import { json } from '@sveltejs/kit';
import { apiHandler, requireUser } from '$lib/server/http';
import type { RequestHandler } from './$types';

export const GET: RequestHandler = apiHandler(async ({ locals }) => json({ user: requireUser(locals) }));
