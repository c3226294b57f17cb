import { json } from '@sveltejs/kit';
import { ApiError, apiHandler, readJsonObject, requireString, requireUser } from '$lib/server/http';
import { startDirect, startGroup, withPresence } from '$lib/server/room-service';
import { listRooms } from '$lib/server/rooms';
import { getServices } from '$lib/server/services';
import type { RequestHandler } from './$types';

export const GET: RequestHandler = apiHandler(async ({ locals }) => {
	const user = requireUser(locals);
	const services = await getServices();
	return json({ rooms: await withPresence(await listRooms(services.db, user.id), services.presence) });
});

export const POST: RequestHandler = apiHandler(async ({ locals, request }) => {
	const user = requireUser(locals);
	const body = await readJsonObject(request);
	const services = await getServices();
	if (body.kind === 'direct') {
		const { room, created } = await startDirect(services, user.id, requireString(body, 'with', { max: 64 }));
		return json({ room }, { status: created ? 201 : 200 });
	}
	if (body.kind === 'group') {
		const members = body.members ?? [];
		if (!Array.isArray(members) || !members.every((m) => typeof m === 'string' && m.length <= 64)) {
			throw new ApiError(400, 'invalid_input', 'members must be a list of usernames');
		}
		const room = await startGroup(services, user.id, requireString(body, 'name', { max: 256 }), members as string[]);
		return json({ room }, { status: 201 });
	}
	throw new ApiError(400, 'invalid_input', 'kind must be "direct" or "group"');
});
