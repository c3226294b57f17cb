import { apiHandler, requireUser } from '$lib/server/http';
import { removeRoomMember } from '$lib/server/room-service';
import { getServices } from '$lib/server/services';
import type { RequestHandler } from './$types';

export const DELETE: RequestHandler = apiHandler(async ({ locals, params }) => {
	const user = requireUser(locals);
	await removeRoomMember(await getServices(), params.id, user.id, params.userId);
	return new Response(null, { status: 204 });
});
