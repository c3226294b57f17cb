/** A tiny cookie-keeping HTTP client for the API, one per simulated user. */
import type { MessagesPage, Room, SyncDescriptor, User } from '../../src/lib/shared/api-types';

export interface ApiAnswer<T = any> {
	status: number;
	body: T;
	headers: Headers;
}

let counter = 0;
/** A username no other test (or earlier run on a shared database) has used. */
export function uniqueName(prefix = 'user'): string {
	counter += 1;
	return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}${counter}`.slice(0, 32);
}

export class ApiClient {
	/** Mutable: a test that restarts the server on a new port points its clients at it. */
	baseUrl: string;
	cookie: string | null = null;
	user: User | null = null;

	constructor(baseUrl: string) {
		this.baseUrl = baseUrl;
	}

	async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer<T>> {
		const response = await fetch(this.baseUrl + path, {
			method,
			headers: {
				...(body !== undefined ? { 'content-type': 'application/json' } : {}),
				...(this.cookie ? { cookie: this.cookie } : {}),
				...headers
			},
			body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
			redirect: 'manual'
		});
		const setCookie = response.headers.get('set-cookie');
		if (setCookie) {
			const pair = setCookie.split(';')[0];
			this.cookie = pair.endsWith('=') ? null : pair;
		}
		const text = await response.text();
		let parsed: unknown = null;
		if (text) {
			try {
				parsed = JSON.parse(text);
			} catch {
				parsed = text;
			}
		}
		return { status: response.status, body: parsed as T, headers: response.headers };
	}

	async signup(username = uniqueName(), password = 'correct horse battery', displayName?: string): Promise<User> {
		const answer = await this.request('POST', '/api/auth/signup', { username, password, displayName });
		if (answer.status !== 201) throw new Error(`signup failed: ${answer.status} ${JSON.stringify(answer.body)}`);
		this.user = answer.body.user;
		return answer.body.user;
	}

	async login(username: string, password = 'correct horse battery'): Promise<User> {
		const answer = await this.request('POST', '/api/auth/login', { username, password });
		if (answer.status !== 200) throw new Error(`login failed: ${answer.status} ${JSON.stringify(answer.body)}`);
		this.user = answer.body.user;
		return answer.body.user;
	}

	async openDirect(username: string): Promise<Room> {
		const answer = await this.request('POST', '/api/rooms', { kind: 'direct', with: username });
		if (answer.status !== 201 && answer.status !== 200) throw new Error(`direct failed: ${answer.status}`);
		return answer.body.room;
	}

	async createGroup(name: string, members: string[]): Promise<Room> {
		const answer = await this.request('POST', '/api/rooms', { kind: 'group', name, members });
		if (answer.status !== 201) throw new Error(`group failed: ${answer.status} ${JSON.stringify(answer.body)}`);
		return answer.body.room;
	}

	async descriptor(roomId: string): Promise<SyncDescriptor> {
		const answer = await this.request<SyncDescriptor>('GET', `/api/rooms/${roomId}/sync`);
		if (answer.status !== 200) throw new Error(`sync descriptor failed: ${answer.status}`);
		return answer.body;
	}

	/** Every message id of the room in the history API's order, oldest first (pages of 100). */
	async allMessageIds(roomId: string): Promise<string[]> {
		const ids: string[] = [];
		let before: string | null = null;
		for (;;) {
			const query: URLSearchParams = new URLSearchParams({ limit: '100', ...(before ? { before } : {}) });
			const answer: ApiAnswer<MessagesPage> = await this.request<MessagesPage>('GET', `/api/rooms/${roomId}/messages?${query}`);
			if (answer.status !== 200) throw new Error(`history page failed: ${answer.status} ${JSON.stringify(answer.body)}`);
			ids.unshift(...answer.body.messages.map((m) => m.id));
			before = answer.body.nextBefore;
			if (before === null) return ids;
		}
	}
}
