import { json } from '@sveltejs/kit';
import { apiHandler, requireUser } from '$lib/server/http';
import { requireRoom } from '$lib/server/room-service';
import { getServices } from '$lib/server/services';
import type { SyncDescriptor } from '$lib/shared/api-types';
import type { RequestHandler } from './$types';

/** The three arguments of y-websocket's `new WebsocketProvider(serverUrl, room, doc, { params })`. */
export const GET: RequestHandler = apiHandler(async ({ locals, params }) => {
	const user = requireUser(locals);
	const services = await getServices();
	const room = await requireRoom(services, params.id, user.id);
	const token = services.tokens.sign({
		userId: user.id,
		roomId: room.id,
		sessionId: locals.session!.id,
		exp: Date.now() + services.config.relayTokenTtlMs
	});
	const descriptor: SyncDescriptor = { serverUrl: services.relayUrl, room: room.id, params: { token } };
	return json(descriptor, { headers: { 'cache-control': 'no-store' } });
});
