-- History beyond the live document: compaction into DynamoDB, epochs, group deletion.

-- The room's current live document (its epoch); room_updates rows belong to one epoch each.
alter table rooms add column epoch integer not null default 0;
-- Messages sealed into DynamoDB: their sort keys are 0 .. history_count - 1. Entries at or above
-- it are an unfinished compaction's and invisible until a compaction commits them.
alter table rooms add column history_count bigint not null default 0;
-- The compaction lease: one relay instance compacts a room at a time. The fence grows with every
-- new holder, and a compaction commits only while its fence is still the room's.
alter table rooms add column compactor text;
alter table rooms add column compactor_until timestamptz;
alter table rooms add column compactor_fence bigint not null default 0;
-- Set when an admin deletes a group: the room is gone for everyone at once, and the purge job
-- erases its history in batches. The row stays, emptied, so the room keeps answering "deleted".
alter table rooms add column deleted_at timestamptz;
alter table rooms add column purged_at timestamptz;
create index rooms_deleted on rooms (deleted_at) where deleted_at is not null;

alter table room_updates add column epoch integer not null default 0;
create index room_updates_epoch on room_updates (room_id, epoch, seq);

-- Closed epochs: the state vector each ended with (how the relay recognises a document of that
-- epoch) and how far clients' late updates have carried it since (a carry commits only past it).
create table room_epochs (
	room_id text not null references rooms (id) on delete cascade,
	epoch integer not null,
	state_vector bytea not null,
	closed_at timestamptz not null default now(),
	primary key (room_id, epoch)
);
