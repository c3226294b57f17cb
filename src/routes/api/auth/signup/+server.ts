import { json } from '@sveltejs/kit';
import { signUp } from '$lib/server/accounts';
import { apiHandler, optionalString, readJsonObject, requireString } from '$lib/server/http';
import { PASSWORD_MAX_CHARS } from '$lib/server/password';
import { getServices } from '$lib/server/services';
import { setSessionCookie } from '$lib/server/session-cookie';
import type { RequestHandler } from './$types';

export const POST: RequestHandler = apiHandler(async ({ request, cookies, url }) => {
	const body = await readJsonObject(request);
	const { db } = await getServices();
	const { user, token } = await signUp(db, {
		username: requireString(body, 'username', { max: 64 }),
		password: requireString(body, 'password', { max: PASSWORD_MAX_CHARS * 4 }),
		displayName: optionalString(body, 'displayName', 256)
	});
	setSessionCookie(cookies, token, url);
	return json({ user }, { status: 201 });
});
