/** Accounts, rooms and socket URLs on our app, through its HTTP API (as a browser would get them). */
import { ApiClient, uniqueName } from '../../tests/helpers/api';

/** Runs `task` over `items` with at most `limit` at a time, keeping the order of results. */
export async function pool<T, R>(items: T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
	const results: R[] = new Array(items.length);
	let next = 0;
	const lane = async (): Promise<void> => {
		while (next < items.length) {
			const i = next++;
			results[i] = await task(items[i], i);
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
	return results;
}

async function post(client: ApiClient, path: string, body: unknown): Promise<any> {
	// The app checks Origin on unsafe methods: send the web app's own, as its pages do.
	const answer = await client.request('POST', path, body, { origin: new URL(client.baseUrl).origin });
	if (answer.status !== 201 && answer.status !== 200) throw new Error(`POST ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
	return answer.body;
}

export async function signUp(baseUrl: string, count: number): Promise<ApiClient[]> {
	return pool(Array.from({ length: count }), 4, async (_, i) => {
		const client = new ApiClient(baseUrl);
		const body = await post(client, '/api/auth/signup', { username: uniqueName(`b${i}`), password: 'correct horse battery' });
		client.user = body.user;
		return client;
	});
}

/** Group rooms created by accounts[0] with every other account as a member. */
export async function createRooms(accounts: ApiClient[], count: number, members = accounts.length): Promise<string[]> {
	const names = accounts.slice(1, members).map((a) => a.user!.username);
	return pool(Array.from({ length: count }), 4, async (_, i) => (await post(accounts[0], '/api/rooms', { kind: 'group', name: `bench ${i}`, members: names })).room.id);
}

/** The relay socket URL from GET /api/rooms/:id/sync: `${serverUrl}/${room}?token=…`. */
export async function socketUrl(client: ApiClient, roomId: string): Promise<string> {
	const answer = await client.request('GET', `/api/rooms/${roomId}/sync`);
	if (answer.status !== 200) throw new Error(`sync descriptor: ${answer.status} ${JSON.stringify(answer.body)}`);
	const { serverUrl, room, params } = answer.body as { serverUrl: string; room: string; params: { token: string } };
	return `${serverUrl}/${room}?token=${encodeURIComponent(params.token)}`;
}

/** Socket URLs for every (room, account) pair, room-major: [room][account]. */
export async function socketUrls(accounts: ApiClient[], roomIds: string[]): Promise<string[][]> {
	const pairs = roomIds.flatMap((roomId) => accounts.map((account) => ({ roomId, account })));
	const urls = await pool(pairs, 8, ({ roomId, account }) => socketUrl(account, roomId));
	return roomIds.map((_, r) => urls.slice(r * accounts.length, (r + 1) * accounts.length));
}
