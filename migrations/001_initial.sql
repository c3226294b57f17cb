-- Accounts, sessions, rooms, members and the rooms' live documents.

create table users (
	id text primary key,
	username text not null unique,
	display_name text not null,
	password_hash text not null,
	created_at timestamptz not null default now(),
	last_seen_at timestamptz
);

-- Sessions per the Lucia guide: id = hex SHA-256 of the random token the cookie carries.
create table sessions (
	id text primary key,
	user_id text not null references users (id) on delete cascade,
	expires_at timestamptz not null,
	created_at timestamptz not null default now()
);
create index sessions_user_id on sessions (user_id);

-- Failed login attempts per account, for throttling across every app instance.
create table login_throttle (
	username text primary key,
	failures integer not null,
	window_started_at timestamptz not null,
	locked_until timestamptz
);

create table rooms (
	id text primary key,
	kind text not null check (kind in ('direct', 'group')),
	name text not null default '',
	-- For direct rooms: the two user ids sorted and joined, so a pair has at most one room.
	direct_key text unique,
	created_by text references users (id) on delete set null,
	created_at timestamptz not null default now(),
	last_activity_at timestamptz not null default now(),
	last_message jsonb
);

create table room_members (
	room_id text not null references rooms (id) on delete cascade,
	user_id text not null references users (id) on delete cascade,
	role text not null check (role in ('admin', 'member')),
	joined_at timestamptz not null default now(),
	last_read_id text,
	primary key (room_id, user_id)
);
create index room_members_user_id on room_members (user_id);

-- Every accepted Yjs update of a room's live document, in commit order. The relay merges old
-- rows into one from time to time; loading a room merges what is left.
create table room_updates (
	room_id text not null references rooms (id) on delete cascade,
	seq bigint generated always as identity,
	data bytea not null,
	created_at timestamptz not null default now(),
	primary key (room_id, seq)
);

-- Process-wide secrets shared by every instance (the relay token key).
create table server_secrets (
	name text primary key,
	value text not null
);
