-- The relay's group commit (sync-server/doc-store.ts) as a function. Sent as a statement, the
-- same CTE was parsed and planned again on every commit: about 1 ms of PGlite's ~2.5 ms of fixed
-- CPU per commit, paid up to 20 times a second under load. A PL/pgSQL function plans its
-- statements once per connection and reuses the plans.
--
-- p_rooms: the rooms, locked in id order (on PostgreSQL), so that instances committing
-- overlapping groups cannot deadlock; p_row_*: rows (room, epoch, update) in commit order;
-- p_preview_*: previews (room, epoch, message as JSON text); p_read_*: read marks (room, epoch,
-- user, message id). Every write joins only the rooms still present at its epoch. Returns each
-- room's epoch and whether it is deleted, as read under the lock.
-- p_lock_rooms is false on PGlite: one connection runs one statement at a time, so nothing can
-- change a room between the check and the writes, and the lock (a write to every room row it
-- takes) would only cost.
create function room_group_commit(
	p_lock_rooms boolean,
	p_rooms text[],
	p_row_rooms text[], p_row_epochs integer[], p_row_data bytea[],
	p_preview_rooms text[], p_preview_epochs integer[], p_preview_messages text[],
	p_read_rooms text[], p_read_epochs integer[], p_read_users text[], p_read_messages text[]
) returns table (id text, epoch integer, deleted boolean)
language plpgsql as $body$
#variable_conflict use_column
begin
	-- Locked first, then read: each statement of the function takes a fresh snapshot, so the
	-- query below sees every room as its last writer committed it.
	if p_lock_rooms then
		perform 1 from rooms r where r.id = any(p_rooms) order by r.id for update;
	end if;
	return query with locked as materialized (
		select r.id, r.epoch, r.deleted_at is not null as deleted from rooms r where r.id = any(p_rooms)),
	inserted as (insert into room_updates (room_id, epoch, data)
		select v.id, v.epoch, v.data from unnest(p_row_rooms, p_row_epochs, p_row_data) with ordinality as v(id, epoch, data, n)
		join locked l on l.id = v.id and l.epoch = v.epoch and not l.deleted order by v.n),
	previewed as (update rooms set last_activity_at = now(), last_message = v.m::jsonb
		from unnest(p_preview_rooms, p_preview_epochs, p_preview_messages) as v(id, epoch, m)
		join locked l on l.id = v.id and l.epoch = v.epoch and not l.deleted
		where rooms.id = v.id),
	marked as (update room_members set last_read_id = v.m
		from unnest(p_read_rooms, p_read_epochs, p_read_users, p_read_messages) as v(id, epoch, u, m)
		join locked l on l.id = v.id and l.epoch = v.epoch and not l.deleted
		where room_members.room_id = v.id and room_members.user_id = v.u
		  and (room_members.last_read_id is null or room_members.last_read_id < v.m))
	select l.id, l.epoch, l.deleted from locked l;
end
$body$;
