import type { SessionUser } from '$lib/server/users';
import type { Session } from '$lib/server/sessions';

declare global {
	namespace App {
		interface Error {
			code: string;
			message: string;
		}
		interface Locals {
			user: SessionUser | null;
			session: Session | null;
		}
	}
}

export {};
