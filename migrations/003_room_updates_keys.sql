-- The live document's rows are written on every group commit, and each index and check on
-- room_updates is paid per row. Every read goes by room, epoch and commit order, so one key
-- (room_id, epoch, seq) serves them all, replacing the key on (room_id, seq) and the separate
-- index on (room_id, epoch, seq). Rooms are never deleted (a deleted group keeps its emptied row
-- and the purge job removes its updates itself), and every writer checks the room under its row
-- lock, so the foreign key's per-row check guards nothing and goes.
alter table room_updates drop constraint room_updates_room_id_fkey;
alter table room_updates drop constraint room_updates_pkey;
drop index room_updates_epoch;
alter table room_updates add primary key (room_id, epoch, seq);
