import { json } from '@sveltejs/kit';
import { apiHandler, requireUser } from '$lib/server/http';
import { cursorForLiveMessage, decodeCursor, pageMessages, parseLimit } from '$lib/server/messages';
import { requireRoom } from '$lib/server/room-service';
import { getServices } from '$lib/server/services';
import type { RequestHandler } from './$types';

export const GET: RequestHandler = apiHandler(async ({ locals, params, url }) => {
	const user = requireUser(locals);
	const limit = parseLimit(url.searchParams.get('limit'));
	const rawBefore = url.searchParams.get('before');
	// Extension: beforeId names a message of the live document directly (the page just older
	// than what a client already holds), saving it a walk through cursors.
	const beforeId = url.searchParams.get('beforeId');
	const before = rawBefore ? decodeCursor(rawBefore) : beforeId ? cursorForLiveMessage(beforeId) : null;
	const services = await getServices();
	await requireRoom(services, params.id, user.id);
	return json(await pageMessages(services.db, services.history, params.id, before, limit));
});
