-- Tamper-evident audit trail, part two: agent actions, a signed Merkle tree over each
-- organization's events (checkpoints), log streams to SIEMs, and retention.

-- Who an event is about, for filtering the timeline by person or agent. These columns are an
-- index, not evidence: the hashed fields (actor, target, details) carry the same facts.
alter table audit_events add column person_id uuid, add column agent_id uuid;
create index audit_events_org_person_idx on audit_events (org_id, person_id, seq) where person_id is not null;
create index audit_events_org_agent_idx on audit_events (org_id, agent_id, seq) where agent_id is not null;

-- Retention: events older than this may be pruned, but only up to a signed checkpoint.
alter table organizations add column audit_retention_days integer not null default 365
    constraint organizations_audit_retention_check check (audit_retention_days between 30 and 36500);
-- Events 1..pruned_through were removed by retention; the checkpoint of that size stays and
-- anchors both the hash chain (its last_hash) and the Merkle tree (its frontier).
alter table audit_chain_heads add column pruned_through bigint not null default 0;

-- A chain head only moves forward, and the retention boundary only to a signed checkpoint.
-- (Verification does not rely on this: it is one more thing an attacker must get past.)
create function audit_chain_heads_forward_only() returns trigger
    language plpgsql as
$$
begin
    if new.last_seq < old.last_seq or new.pruned_through < old.pruned_through
       or new.pruned_through > new.last_seq
       or (new.pruned_through <> old.pruned_through and not exists (
               select 1 from audit_checkpoints c where c.org_id = new.org_id and c.size = new.pruned_through)) then
        raise exception 'audit_chain_heads only moves forward, and its retention boundary only to a checkpoint'
            using errcode = 'insufficient_privilege';
    end if;
    return new;
end
$$;

-- Keys that sign checkpoints: Ed25519, the private half encrypted under the master key, so that
-- someone holding only the database can read but never forge a checkpoint.
create table audit_signing_keys (
    id                    text        primary key,
    public_key            bytea       not null constraint audit_signing_keys_public_key_check check (length(public_key) = 32),
    private_key_encrypted bytea       not null,
    created_at            timestamptz not null default now()
);

-- Signed statements of an organization's tree: its size and RFC 9162 root at a moment.
create table audit_checkpoints (
    org_id     uuid        not null references organizations (id),
    size       bigint      not null constraint audit_checkpoints_size_check check (size >= 0),
    root_hash  bytea       not null,
    -- the compact range (perfect subtree roots) of the first `size` leaves: lets the next
    -- checkpoint extend this one, and proofs start here once earlier events are pruned
    frontier   bytea       not null,
    -- the chain hash of event `size` (genesis for size 0)
    last_hash  bytea       not null,
    signed_at  timestamptz not null,
    key_id     text        not null references audit_signing_keys (id),
    signature  bytea       not null,
    constraint audit_checkpoints_pkey primary key (org_id, size)
);

create trigger audit_chain_heads_forward_only
    before update on audit_chain_heads
    for each row execute function audit_chain_heads_forward_only();

create trigger audit_checkpoints_no_update_or_delete
    before update or delete on audit_checkpoints
    for each row execute function audit_events_append_only();
create trigger audit_checkpoints_no_truncate
    before truncate on audit_checkpoints
    for each statement execute function audit_events_append_only();

-- Events may now be deleted, but only below their organization's retention boundary (which
-- domain code moves only to a checkpoint, in the transaction that records the pruning).
create or replace function audit_events_append_only() returns trigger
    language plpgsql as
$$
begin
    if tg_table_name = 'audit_events' and tg_op = 'DELETE'
       and old.seq <= (select pruned_through from audit_chain_heads where org_id = old.org_id) then
        return old;
    end if;
    raise exception '% is append-only: % is not allowed', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
end
$$;

-- Log streams: customer destinations (a signed webhook, Splunk HEC, Datadog) that receive every
-- event. The audit log itself is the outbox: events commit with the change they record, and each
-- stream keeps a cursor, advanced only after the destination acknowledged a batch.
create table audit_streams (
    org_id           uuid        not null references organizations (id),
    id               uuid        not null,
    name             text        not null constraint audit_streams_name_check check (length(name) between 1 and 100),
    kind             text        not null constraint audit_streams_kind_check check (kind in ('webhook', 'splunk_hec', 'datadog')),
    url              text        not null,
    -- the webhook's HMAC key, the HEC token or the Datadog API key, encrypted under the master key
    secret_encrypted bytea       not null,
    enabled          boolean     not null default true,
    -- every event with seq <= cursor_seq was acknowledged by the destination
    cursor_seq       bigint      not null,
    delivered_events bigint      not null default 0,
    failures         integer     not null default 0,
    next_attempt_at  timestamptz not null default now(),
    last_success_at  timestamptz,
    last_error       text,
    last_error_at    timestamptz,
    created_at       timestamptz not null default now(),
    constraint audit_streams_pkey primary key (org_id, id),
    constraint audit_streams_name_key unique (org_id, name)
);
create index audit_streams_due_idx on audit_streams (next_attempt_at) where enabled;
