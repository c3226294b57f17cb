import { publishControl } from '$lib/server/bus/control';
import { apiHandler } from '$lib/server/http';
import { getServices } from '$lib/server/services';
import { clearSessionCookie } from '$lib/server/session-cookie';
import { invalidateSession } from '$lib/server/sessions';
import type { RequestHandler } from './$types';

/** Revokes the session on the server and closes its relay sockets on every instance. */
export const POST: RequestHandler = apiHandler(async ({ locals, cookies }) => {
	if (locals.session) {
		const { db, bus } = await getServices();
		await invalidateSession(db, locals.session.id);
		await publishControl(bus, { type: 'session-revoked', sessionId: locals.session.id });
	}
	clearSessionCookie(cookies);
	return new Response(null, { status: 204 });
});
