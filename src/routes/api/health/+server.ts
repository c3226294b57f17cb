import { json } from '@sveltejs/kit';
import { getServices } from '$lib/server/services';
import type { RequestHandler } from './$types';

/** 200 when the app and every service it uses answer; 503 naming the one that does not. */
export const GET: RequestHandler = async () => {
	const services = await getServices();
	const checks: Record<string, string> = {};
	const probe = async (name: string, check: () => Promise<unknown>): Promise<void> => {
		try {
			await check();
			checks[name] = 'ok';
		} catch (error) {
			checks[name] = error instanceof Error ? error.message : 'unavailable';
		}
	};
	await Promise.all([
		probe(services.db.kind, () => services.db.query('select 1')),
		probe('dynamodb', () => services.history.ping()),
		probe(services.bus.kind === 'redis' ? 'redis' : 'bus', () => services.presence.onlineUsers([]))
	]);
	const ok = Object.values(checks).every((v) => v === 'ok');
	if (!ok) return json({ ok, services: checks, error: { code: 'service_unavailable', message: 'a service does not answer' } }, { status: 503 });
	return json({ ok, services: checks });
};
