import { json } from '@sveltejs/kit';
import { ApiError, apiHandler, readJsonObject, requireString, requireUser } from '$lib/server/http';
import { addRoomMember } from '$lib/server/room-service';
import { getServices } from '$lib/server/services';
import type { RequestHandler } from './$types';

export const POST: RequestHandler = apiHandler(async ({ locals, params, request }) => {
	const user = requireUser(locals);
	const body = await readJsonObject(request);
	const role = body.role ?? 'member';
	if (role !== 'member' && role !== 'admin') throw new ApiError(400, 'invalid_input', 'role must be "admin" or "member"');
	const room = await addRoomMember(await getServices(), params.id, user.id, requireString(body, 'username', { max: 64 }), role);
	return json({ room }, { status: 201 });
});
