import { json } from '@sveltejs/kit';
import { apiHandler, requireUser } from '$lib/server/http';
import { deleteRoom, requireRoom } from '$lib/server/room-service';
import { getServices } from '$lib/server/services';
import type { RequestHandler } from './$types';

export const GET: RequestHandler = apiHandler(async ({ locals, params }) => {
	const user = requireUser(locals);
	return json({ room: await requireRoom(await getServices(), params.id, user.id) });
});

/** Deletes a group (admins only): 204; it disappears for every member at once. */
export const DELETE: RequestHandler = apiHandler(async ({ locals, params }) => {
	const user = requireUser(locals);
	await deleteRoom(await getServices(), params.id, user.id);
	return new Response(null, { status: 204 });
});
