-- Foundation: organizations, people, admins, invitations, API keys, login throttling and the
-- per-organization audit hash chain. Every tenant table is keyed by (org_id, id) so foreign keys
-- can never join rows of two organizations, and so the schema can be distributed by org_id.

create table organizations (
    id                     uuid        primary key,
    name                   text        not null constraint organizations_name_check check (length(name) between 1 and 200),
    password_login_enabled boolean     not null default true,
    created_at             timestamptz not null default now()
);

-- Email domains an organization claims. Verification (DNS TXT) comes with SSO; a verified
-- domain belongs to exactly one organization.
create table organization_domains (
    org_id      uuid        not null references organizations (id),
    domain      text        not null,
    verified_at timestamptz,
    created_at  timestamptz not null default now(),
    constraint organization_domains_pkey primary key (org_id, domain)
);
create unique index organization_domains_verified_key on organization_domains (domain) where verified_at is not null;

-- A person of the organization: an admin, an agent owner, later a directory user.
-- Emails are stored lower-cased.
create table people (
    org_id         uuid        not null references organizations (id),
    id             uuid        not null,
    email          text        not null constraint people_email_check check (email = lower(email) and length(email) <= 320),
    display_name   text        not null,
    active         boolean     not null default true,
    deactivated_at timestamptz,
    created_at     timestamptz not null default now(),
    constraint people_pkey primary key (org_id, id),
    constraint people_org_email_key unique (org_id, email)
);

-- A person's portal role in one organization, with the optional break-glass password.
create table admins (
    org_id        uuid        not null,
    id            uuid        not null,
    person_id     uuid        not null,
    role          text        not null constraint admins_role_check check (role in ('owner', 'admin', 'approver', 'auditor')),
    password_hash text,
    last_login_at timestamptz,
    created_at    timestamptz not null default now(),
    constraint admins_pkey primary key (org_id, id),
    constraint admins_person_key unique (org_id, person_id),
    constraint admins_person_fkey foreign key (org_id, person_id) references people (org_id, id)
);

-- Single-use links that let someone become an admin (the owner's setup link is one of them).
-- Only the SHA-256 of the token is stored.
create table admin_invitations (
    org_id      uuid        not null references organizations (id),
    id          uuid        not null,
    email       text        not null constraint admin_invitations_email_check check (email = lower(email)),
    role        text        not null constraint admin_invitations_role_check check (role in ('owner', 'admin', 'approver', 'auditor')),
    token_hash  bytea       not null,
    invited_by  uuid,       -- admin id; null when the platform operator created it
    expires_at  timestamptz not null,
    accepted_at timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz not null default now(),
    constraint admin_invitations_pkey primary key (org_id, id),
    constraint admin_invitations_token_hash_key unique (token_hash)
);

-- Platform API keys: SHA-256 of the key only; the prefix helps admins recognise a key.
create table api_keys (
    org_id       uuid        not null references organizations (id),
    id           uuid        not null,
    name         text        not null,
    key_prefix   text        not null,
    key_hash     bytea       not null,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    constraint api_keys_pkey primary key (org_id, id),
    constraint api_keys_key_hash_key unique (key_hash)
);

-- Failed sign-in counters per account ('account:<email>') and per client address ('ip:<addr>').
-- Kept in the database so that every app node enforces the same limits.
create table login_throttle (
    bucket            text        primary key,
    failures          integer     not null,
    window_started_at timestamptz not null,
    locked_until      timestamptz
);

-- The head of each organization's audit chain; locked while appending so sequence numbers
-- are gap-free and each event hashes over its predecessor.
create table audit_chain_heads (
    org_id    uuid   primary key references organizations (id),
    last_seq  bigint not null,
    last_hash bytea  not null
);

create table audit_events (
    org_id       uuid        not null references organizations (id),
    seq          bigint      not null,
    id           uuid        not null,
    occurred_at  timestamptz not null,
    actor_type   text        not null,
    actor_id     text,
    actor_label  text        not null,
    action       text        not null,
    target_type  text,
    target_id    text,
    target_label text,
    outcome      text        not null constraint audit_events_outcome_check check (outcome in ('success', 'failure')),
    ip           text,
    user_agent   text,
    request_id   text,
    -- canonical JSON (sorted keys): exactly the bytes that were hashed
    details      text        not null,
    prev_hash    bytea       not null,
    hash         bytea       not null,
    constraint audit_events_pkey primary key (org_id, seq),
    constraint audit_events_id_key unique (org_id, id)
);
create index audit_events_org_action_idx on audit_events (org_id, action, seq);
create index audit_events_org_time_idx on audit_events (org_id, occurred_at);

create function audit_events_append_only() returns trigger
    language plpgsql as
$$
begin
    raise exception 'audit_events is append-only: % is not allowed', tg_op
        using errcode = 'insufficient_privilege';
end
$$;

create trigger audit_events_no_update_or_delete
    before update or delete on audit_events
    for each row execute function audit_events_append_only();

create trigger audit_events_no_truncate
    before truncate on audit_events
    for each statement execute function audit_events_append_only();
