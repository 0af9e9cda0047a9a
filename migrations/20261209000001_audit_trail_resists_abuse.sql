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

-- The audit triggers name their tables without a schema: pin the search path, so that no
-- session can shadow audit_chain_heads or audit_checkpoints with a temporary table of its own.
-- And events younger than the shortest retention (30 days, by the database's clock) are never
-- deleted except by the schema's owner: whatever the server's own role writes into the chain
-- head or the checkpoints, it cannot erase recent history.
create or replace function audit_events_append_only() returns trigger
    language plpgsql
    set search_path = pg_catalog, public, pg_temp as
$$
begin
    if tg_table_name = 'audit_events' and tg_op = 'DELETE'
       and old.seq <= (select pruned_through from audit_chain_heads where org_id = old.org_id)
       and (old.occurred_at < now() - interval '30 days'
            or pg_has_role(current_user, (select tableowner from pg_tables
                                          where schemaname = 'public' and tablename = 'audit_events'), 'MEMBER')) then
        return old;
    end if;
    raise exception '% is append-only: % is not allowed', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
end
$$;
alter function audit_chain_heads_forward_only() set search_path = pg_catalog, public, pg_temp;
