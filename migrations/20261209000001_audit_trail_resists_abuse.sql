-- Log streams also receive every signed checkpoint, after the events it covers: a copy of each
-- checkpoint lives outside the database. checkpoint_cursor is the size of the last checkpoint a
-- stream's destination acknowledged; existing streams start at their event cursor (checkpoints
-- of events they already had are not sent again).
alter table audit_streams add column checkpoint_cursor bigint not null default 0;
update audit_streams set checkpoint_cursor = cursor_seq;

-- Refused sign-ins by strangers, summarised per window instead of one event each (anyone can
-- cause them, and the audit trail is append-only). The first failure of a window for the same
-- action, target and reason is recorded in full; later ones are counted here, with a sample of
-- client addresses, and a summary event closes the window.
create table audit_failure_windows (
    org_id            uuid        not null references organizations (id),
    -- action, target and reason
    key               text        not null,
    window_started_at timestamptz not null,
    last_at           timestamptz not null,
    repeated          integer     not null default 0,
    addresses         text[]      not null,
    -- what the summary event repeats of the first failure
    action            text        not null,
    target_type       text,
    target_id         text,
    target_label      text,
    details           jsonb       not null,
    constraint audit_failure_windows_pkey primary key (org_id, key)
);
create index audit_failure_windows_started_idx on audit_failure_windows (window_started_at);
