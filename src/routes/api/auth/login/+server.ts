import { json } from '@sveltejs/kit';
import { logIn } from '$lib/server/accounts';
import { apiHandler, readJsonObject, requireString } from '$lib/server/http';
import { getServices } from '$lib/server/services';
import { setSessionCookie } from '$lib/server/session-cookie';
import type { RequestHandler } from './$types';

export const POST: RequestHandler = apiHandler(async ({ request, cookies, url }) => {
	const body = await readJsonObject(request);
	const { db } = await getServices();
	const { user, token } = await logIn(db, {
		username: requireString(body, 'username', { max: 64 }),
		password: requireString(body, 'password', { max: 1024 })
	});
	setSessionCookie(cookies, token, url);
	return json({ user });
});
