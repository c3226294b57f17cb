/**
 * Rooms and their members. Every read is scoped to a member: a room the caller is not in is
 * `null` (answered 404), so room ids leak nothing.
 */
import type { Database, Queryable } from './db/database';
import { newId } from './ids';
import type { Room, RoomKind, RoomMember, RoomPreview, RoomRole } from '$lib/shared/api-types';

export const ROOM_NAME_MAX_CHARS = 80;
export const GROUP_MEMBERS_MAX = 256;

interface RoomRow {
	id: string;
	kind: RoomKind;
	name: string;
	created_at: Date;
	last_activity_at: Date;
	last_message: RoomPreview | null;
	last_read_id: string | null;
}

interface MemberRow {
	room_id: string;
	id: string;
	username: string;
	display_name: string;
	role: RoomRole;
	last_seen_at: Date | null;
}

const ROOM_COLUMNS = `r.id, r.kind, r.name, r.created_at, r.last_activity_at, r.last_message, me.last_read_id`;

async function membersOf(db: Queryable, roomIds: string[]): Promise<Map<string, RoomMember[]>> {
	const byRoom = new Map<string, RoomMember[]>();
	if (roomIds.length === 0) return byRoom;
	const rows = await db.query<MemberRow>(
		`select m.room_id, u.id, u.username, u.display_name, m.role, u.last_seen_at
		 from room_members m join users u on u.id = m.user_id
		 where m.room_id = any($1::text[]) order by m.joined_at, u.username`,
		[roomIds]
	);
	for (const row of rows) {
		const list = byRoom.get(row.room_id) ?? [];
		list.push({
			id: row.id,
			username: row.username,
			displayName: row.display_name,
			role: row.role,
			online: false,
			lastSeenAt: row.last_seen_at ? new Date(row.last_seen_at).toISOString() : null
		});
		byRoom.set(row.room_id, list);
	}
	return byRoom;
}

function toRoom(row: RoomRow, members: RoomMember[], viewerId: string): Room {
	const other = members.find((m) => m.id !== viewerId);
	return {
		id: row.id,
		kind: row.kind,
		name: row.kind === 'direct' ? (other?.displayName ?? 'Deleted account') : row.name,
		members,
		lastActivityAt: new Date(row.last_activity_at).toISOString(),
		lastMessage: row.last_message,
		lastReadId: row.last_read_id,
		createdAt: new Date(row.created_at).toISOString()
	};
}

/** The caller's rooms, most recent activity first. */
export async function listRooms(db: Queryable, userId: string): Promise<Room[]> {
	const rows = await db.query<RoomRow>(
		`select ${ROOM_COLUMNS} from rooms r
		 join room_members me on me.room_id = r.id and me.user_id = $1
		 order by r.last_activity_at desc, r.id`,
		[userId]
	);
	const members = await membersOf(db, rows.map((r) => r.id));
	return rows.map((row) => toRoom(row, members.get(row.id) ?? [], userId));
}

/** The room if `userId` is a member of it, else null. */
export async function getRoomForMember(db: Queryable, roomId: string, userId: string): Promise<Room | null> {
	const rows = await db.query<RoomRow>(
		`select ${ROOM_COLUMNS} from rooms r
		 join room_members me on me.room_id = r.id and me.user_id = $2
		 where r.id = $1`,
		[roomId, userId]
	);
	const row = rows[0];
	if (!row) return null;
	const members = await membersOf(db, [row.id]);
	return toRoom(row, members.get(row.id) ?? [], userId);
}

export async function getMemberRole(db: Queryable, roomId: string, userId: string): Promise<RoomRole | null> {
	const rows = await db.query<{ role: RoomRole }>(
		'select role from room_members where room_id = $1 and user_id = $2',
		[roomId, userId]
	);
	return rows[0]?.role ?? null;
}

export function directKey(a: string, b: string): string {
	return [a, b].sort().join(':');
}

/** The pair's direct room, created if it does not exist yet. `created` tells which. */
export async function openDirectRoom(
	db: Database,
	userId: string,
	otherId: string
): Promise<{ roomId: string; created: boolean }> {
	return db.transaction(async (tx) => {
		const key = directKey(userId, otherId);
		const roomId = newId();
		const inserted = await tx.query<{ id: string }>(
			`insert into rooms (id, kind, direct_key, created_by) values ($1, 'direct', $2, $3)
			 on conflict (direct_key) do nothing returning id`,
			[roomId, key, userId]
		);
		if (inserted.length === 0) {
			const existing = await tx.query<{ id: string }>('select id from rooms where direct_key = $1', [key]);
			return { roomId: existing[0].id, created: false };
		}
		// A direct room has no admin: nobody can add a third person or remove the other.
		await tx.query(
			`insert into room_members (room_id, user_id, role) values ($1, $2, 'member'), ($1, $3, 'member')`,
			[roomId, userId, otherId]
		);
		return { roomId, created: true };
	});
}

export async function createGroupRoom(
	db: Database,
	creatorId: string,
	name: string,
	memberIds: string[]
): Promise<string> {
	return db.transaction(async (tx) => {
		const roomId = newId();
		await tx.query(`insert into rooms (id, kind, name, created_by) values ($1, 'group', $2, $3)`, [
			roomId,
			name,
			creatorId
		]);
		await tx.query(`insert into room_members (room_id, user_id, role) values ($1, $2, 'admin')`, [roomId, creatorId]);
		const others = [...new Set(memberIds)].filter((id) => id !== creatorId);
		if (others.length > 0) {
			await tx.query(
				`insert into room_members (room_id, user_id, role)
				 select $1, unnest($2::text[]), 'member'`,
				[roomId, others]
			);
		}
		return roomId;
	});
}

/** Adds a member; false when they already were one. */
export async function addMember(db: Queryable, roomId: string, userId: string, role: RoomRole): Promise<boolean> {
	const rows = await db.query<{ user_id: string }>(
		`insert into room_members (room_id, user_id, role) values ($1, $2, $3)
		 on conflict do nothing returning user_id`,
		[roomId, userId, role]
	);
	return rows.length > 0;
}

/** Removes a member; false when they were not one. */
export async function removeMember(db: Queryable, roomId: string, userId: string): Promise<boolean> {
	const rows = await db.query<{ user_id: string }>(
		'delete from room_members where room_id = $1 and user_id = $2 returning user_id',
		[roomId, userId]
	);
	return rows.length > 0;
}

export async function getRoomKind(db: Queryable, roomId: string): Promise<RoomKind | null> {
	const rows = await db.query<{ kind: RoomKind }>('select kind from rooms where id = $1', [roomId]);
	return rows[0]?.kind ?? null;
}

/** Keeps a group administered: when its last admin left, the longest-standing member becomes one. */
export async function ensureAdmin(db: Queryable, roomId: string): Promise<void> {
	await db.query(
		`update room_members set role = 'admin'
		 where room_id = $1 and user_id = (
		   select user_id from room_members where room_id = $1 order by joined_at, user_id limit 1)
		 and not exists (select 1 from room_members where room_id = $1 and role = 'admin')`,
		[roomId]
	);
}

/**
 * Deletes a room for everyone at once: no member is left, so every membership check (API, relay)
 * answers 404 from now on. The history is erased later, in batches, by the purge job (purge.ts).
 */
export async function markRoomDeleted(db: Database, roomId: string): Promise<void> {
	await db.transaction(async (tx) => {
		await tx.query('update rooms set deleted_at = now() where id = $1 and deleted_at is null', [roomId]);
		await tx.query('delete from room_members where room_id = $1', [roomId]);
	});
}

/** Whether the room was deleted and its purge has not removed it yet. */
export async function isDeletedRoom(db: Queryable, roomId: string): Promise<boolean> {
	const rows = await db.query('select 1 from rooms where id = $1 and deleted_at is not null', [roomId]);
	return rows.length > 0;
}
