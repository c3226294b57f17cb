/**
 * JSON shapes of the HTTP API (CONTRACT.md, "HTTP API"; docs/api.md). Fields beyond the contract
 * are extensions: clients may rely on them, other clients may ignore them.
 */
import type { ChatMessage } from './schema';

export interface User {
	id: string;
	username: string;
	displayName: string;
}

export type RoomKind = 'direct' | 'group';
export type RoomRole = 'admin' | 'member';

export interface RoomMember extends User {
	role: RoomRole;
	/** Extension: true while the member has a relay connection open. */
	online: boolean;
	/** Extension: ISO time the member was last connected; null if never. */
	lastSeenAt: string | null;
}

export interface RoomPreview {
	id: string;
	author: string;
	authorName: string;
	text: string;
	ts: number;
}

export interface Room {
	id: string;
	kind: RoomKind;
	/** Group name; for a direct room, the other member's display name. */
	name: string;
	members: RoomMember[];
	/** Extension: ISO time of the latest message, or of creation. */
	lastActivityAt: string;
	/** Extension: the latest message, or null in an empty room. */
	lastMessage: RoomPreview | null;
	/** Extension: id of the newest message the caller has read, or null. */
	lastReadId: string | null;
	createdAt: string;
}

export interface SyncDescriptor {
	serverUrl: string;
	room: string;
	params: Record<string, string>;
}

export interface MessagesPage {
	messages: ChatMessage[];
	nextBefore: string | null;
}

export interface ApiErrorBody {
	error: { code: string; message: string };
}
