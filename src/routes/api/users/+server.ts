import { json } from '@sveltejs/kit';
import { apiHandler, ApiError, requireUser } from '$lib/server/http';
import { getServices } from '$lib/server/services';
import { searchUsers } from '$lib/server/users';
import type { RequestHandler } from './$types';

/** Extension: prefix search for the new-chat pickers. */
export const GET: RequestHandler = apiHandler(async ({ locals, url }) => {
	const user = requireUser(locals);
	const query = url.searchParams.get('query') ?? '';
	if (query.length > 64) throw new ApiError(400, 'invalid_input', 'query must be at most 64 characters');
	const { db } = await getServices();
	return json({ users: await searchUsers(db, query, user.id) });
});
