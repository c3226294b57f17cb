/**
 * Room operations as the API offers them: who may do what (CONTRACT.md), and the side effects
 * that go with membership changes (closing a removed member's sockets on every relay).
 */
import { publishControl } from './bus/control';
import { ApiError } from './http';
import type { PresenceStore } from './presence/presence';
import {
	addMember,
	createGroupRoom,
	ensureAdmin,
	getMemberRole,
	getRoomForMember,
	GROUP_MEMBERS_MAX,
	isDeletedRoom,
	markRoomDeleted,
	openDirectRoom,
	removeMember,
	ROOM_NAME_MAX_CHARS
} from './rooms';
import type { Services } from './services';
import { getUserByUsername, getUsersByUsernames, normalizeUsername } from './users';
import type { Room, RoomRole } from '$lib/shared/api-types';

export async function withPresence(rooms: Room[], presence: PresenceStore): Promise<Room[]> {
	const ids = [...new Set(rooms.flatMap((r) => r.members.map((m) => m.id)))];
	const online = await presence.onlineUsers(ids);
	for (const room of rooms) for (const member of room.members) member.online = online.has(member.id);
	return rooms;
}

/** The room as the member sees it, or a 404 ApiError (never 403: ids leak nothing). */
export async function requireRoom(services: Services, roomId: string, userId: string): Promise<Room> {
	const room = await getRoomForMember(services.db, roomId, userId);
	if (!room) {
		// A deleted group says so (its id is random and reveals nothing), so a device that was
		// offline when it happened drops its copy instead of showing "no longer a member".
		if (await isDeletedRoom(services.db, roomId)) throw new ApiError(404, 'room_deleted', 'this room was deleted');
		throw new ApiError(404, 'room_not_found', 'no such room');
	}
	const [decorated] = await withPresence([room], services.presence);
	return decorated;
}

export async function startDirect(services: Services, userId: string, withUsername: string): Promise<{ room: Room; created: boolean }> {
	const other = await getUserByUsername(services.db, withUsername);
	if (!other) throw new ApiError(404, 'user_not_found', `no user named "${normalizeUsername(withUsername)}"`);
	if (other.id === userId) throw new ApiError(400, 'invalid_input', 'a direct chat needs someone else');
	const { roomId, created } = await openDirectRoom(services.db, userId, other.id);
	return { room: await requireRoom(services, roomId, userId), created };
}

export function cleanRoomName(raw: string): string {
	const name = raw.replace(/\s+/g, ' ').trim();
	if (name.length === 0) throw new ApiError(400, 'invalid_input', 'a group needs a name');
	if (name.length > ROOM_NAME_MAX_CHARS) {
		throw new ApiError(400, 'invalid_input', `a group name has at most ${ROOM_NAME_MAX_CHARS} characters`);
	}
	return name;
}

export async function startGroup(services: Services, userId: string, rawName: string, usernames: string[]): Promise<Room> {
	const name = cleanRoomName(rawName);
	const wanted = [...new Set(usernames.map(normalizeUsername))];
	if (wanted.length + 1 > GROUP_MEMBERS_MAX) {
		throw new ApiError(400, 'invalid_input', `a group has at most ${GROUP_MEMBERS_MAX} members`);
	}
	const users = await getUsersByUsernames(services.db, wanted);
	const missing = wanted.filter((u) => !users.some((user) => user.username === u));
	if (missing.length > 0) throw new ApiError(404, 'user_not_found', `no user named ${missing.map((m) => `"${m}"`).join(', ')}`);
	const roomId = await createGroupRoom(services.db, userId, name, users.map((u) => u.id));
	return requireRoom(services, roomId, userId);
}

export async function addRoomMember(services: Services, roomId: string, actorId: string, username: string, role: RoomRole): Promise<Room> {
	const room = await requireRoom(services, roomId, actorId);
	if (room.kind === 'direct') throw new ApiError(403, 'direct_room', 'a direct chat has exactly two people');
	if (room.members.find((m) => m.id === actorId)?.role !== 'admin') {
		throw new ApiError(403, 'not_admin', 'only admins add members');
	}
	const user = await getUserByUsername(services.db, username);
	if (!user) throw new ApiError(404, 'user_not_found', `no user named "${normalizeUsername(username)}"`);
	if (room.members.length >= GROUP_MEMBERS_MAX) throw new ApiError(409, 'room_full', `a group has at most ${GROUP_MEMBERS_MAX} members`);
	if (!(await addMember(services.db, roomId, user.id, role))) throw new ApiError(409, 'already_member', 'already a member');
	return requireRoom(services, roomId, actorId);
}

export async function removeRoomMember(services: Services, roomId: string, actorId: string, targetId: string): Promise<void> {
	const room = await requireRoom(services, roomId, actorId);
	const actor = room.members.find((m) => m.id === actorId);
	if (room.kind === 'direct') throw new ApiError(403, 'direct_room', 'a direct chat cannot be left or changed');
	if (targetId !== actorId && actor?.role !== 'admin') throw new ApiError(403, 'not_admin', 'only admins remove other members');
	if (!room.members.some((m) => m.id === targetId)) throw new ApiError(404, 'member_not_found', 'no such member in this room');
	await services.db.transaction(async (tx) => {
		await removeMember(tx, roomId, targetId);
		await ensureAdmin(tx, roomId);
	});
	await publishControl(services.bus, { type: 'member-removed', roomId, userId: targetId });
}

export async function isMember(services: Services, roomId: string, userId: string): Promise<boolean> {
	return (await getMemberRole(services.db, roomId, userId)) !== null;
}

/** An admin deletes a group: gone for every member at once; its history is purged afterwards. */
export async function deleteRoom(services: Services, roomId: string, actorId: string): Promise<void> {
	const room = await requireRoom(services, roomId, actorId);
	if (room.kind === 'direct') throw new ApiError(403, 'direct_room', 'a direct chat cannot be deleted');
	if (room.members.find((m) => m.id === actorId)?.role !== 'admin') throw new ApiError(403, 'not_admin', 'only admins delete a group');
	await markRoomDeleted(services.db, roomId);
	await publishControl(services.bus, { type: 'room-deleted', roomId });
	services.purge.wake();
}
