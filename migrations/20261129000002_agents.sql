-- Agents: groups (filled by directories), the scope catalog with optional group ceilings, agents
-- and their credentials, scope requests and approvals, issued access tokens, signing keys.

-- Directory groups and their members. Directories (SCIM) fill these; ceilings refer to them.
create table groups (
    org_id       uuid        not null references organizations (id),
    id           uuid        not null,
    display_name text        not null,
    created_at   timestamptz not null default now(),
    constraint groups_pkey primary key (org_id, id),
    constraint groups_name_key unique (org_id, display_name)
);

create table group_members (
    org_id    uuid not null,
    group_id  uuid not null,
    person_id uuid not null,
    constraint group_members_pkey primary key (org_id, group_id, person_id),
    constraint group_members_group_fkey foreign key (org_id, group_id) references groups (org_id, id) on delete cascade,
    constraint group_members_person_fkey foreign key (org_id, person_id) references people (org_id, id)
);
create index group_members_person_idx on group_members (org_id, person_id);

create table scopes (
    org_id                     uuid        not null references organizations (id),
    id                         uuid        not null,
    name                       text        not null constraint scopes_name_check check (name ~ '^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$' and length(name) <= 100),
    description                text        not null default '',
    risk                       text        not null constraint scopes_risk_check check (risk in ('low', 'medium', 'high')),
    max_token_lifetime_seconds integer     not null default 300 constraint scopes_lifetime_check check (max_token_lifetime_seconds between 30 and 300),
    created_at                 timestamptz not null default now(),
    constraint scopes_pkey primary key (org_id, id),
    constraint scopes_name_key unique (org_id, name)
);

-- With no row for a scope, everyone may hold it; with rows, only members of those groups.
create table scope_ceilings (
    org_id   uuid not null,
    scope_id uuid not null,
    group_id uuid not null,
    constraint scope_ceilings_pkey primary key (org_id, scope_id, group_id),
    constraint scope_ceilings_scope_fkey foreign key (org_id, scope_id) references scopes (org_id, id) on delete cascade,
    constraint scope_ceilings_group_fkey foreign key (org_id, group_id) references groups (org_id, id) on delete cascade
);

create table agents (
    org_id            uuid        not null references organizations (id),
    id                uuid        not null,
    name              text        not null,
    description       text        not null default '',
    owner_id          uuid        not null,
    -- public identifier used at the token endpoint; unique across organizations
    client_id         text        not null,
    -- SHA-256 of the client secret (the secret is shown once)
    secret_hash       bytea       not null,
    secret_rotated_at timestamptz not null,
    status            text        not null default 'active' constraint agents_status_check check (status in ('active', 'revoked')),
    revoked_at        timestamptz,
    revoked_reason    text,
    created_by        text        not null,
    created_at        timestamptz not null default now(),
    last_active_at    timestamptz,
    constraint agents_pkey primary key (org_id, id),
    constraint agents_client_id_key unique (client_id),
    constraint agents_owner_fkey foreign key (org_id, owner_id) references people (org_id, id)
);
create index agents_owner_idx on agents (org_id, owner_id);

create table scope_requests (
    org_id             uuid        not null,
    id                 uuid        not null,
    agent_id           uuid        not null,
    scope_id           uuid        not null,
    status             text        not null constraint scope_requests_status_check
                                   check (status in ('pending', 'approved', 'denied', 'withdrawn', 'cancelled')),
    reason             text        not null default '',
    requested_by       text        not null,
    requested_at       timestamptz not null,
    decided_by_type    text,
    decided_by_id      text,
    decided_by_label   text,
    decided_at         timestamptz,
    decision_note      text,
    -- an approval may end at a date; null = until withdrawn
    expires_at         timestamptz,
    constraint scope_requests_pkey primary key (org_id, id),
    constraint scope_requests_agent_fkey foreign key (org_id, agent_id) references agents (org_id, id),
    constraint scope_requests_scope_fkey foreign key (org_id, scope_id) references scopes (org_id, id)
);
-- One live (pending or approved) request per agent and scope.
create unique index scope_requests_live_key on scope_requests (org_id, agent_id, scope_id) where status in ('pending', 'approved');
create index scope_requests_status_idx on scope_requests (org_id, status, requested_at);

-- Every access token minted, so that revocation can count and cascade, and so that each token's
-- authority (the approvals behind its scopes) is on record.
create table access_tokens (
    org_id       uuid        not null,
    jti          uuid        not null,
    agent_id     uuid        not null,
    owner_id     uuid        not null,
    -- for delegated tokens, the sub-agents in the chain, the one holding the token first
    delegates    uuid[]      not null default '{}',
    parent_jti   uuid,
    scopes       text[]      not null,
    approval_ids uuid[]      not null,
    issued_at    timestamptz not null,
    expires_at   timestamptz not null,
    revoked_at   timestamptz,
    constraint access_tokens_pkey primary key (org_id, jti)
);
create index access_tokens_agent_live_idx on access_tokens (org_id, agent_id, expires_at);
create index access_tokens_parent_idx on access_tokens (org_id, parent_jti) where parent_jti is not null;
create index access_tokens_revoked_idx on access_tokens (expires_at) where revoked_at is not null;

-- Token signing keys (platform-wide). Private keys are AES-256-GCM encrypted under the master
-- key; a retired key stays published until every token it signed has expired.
create table signing_keys (
    kid                   text        primary key,
    algorithm             text        not null constraint signing_keys_algorithm_check check (algorithm = 'EdDSA'),
    public_key            bytea       not null,
    private_key_encrypted bytea       not null,
    created_at            timestamptz not null default now(),
    retired_at            timestamptz
);
create unique index signing_keys_one_active_key on signing_keys ((true)) where retired_at is null;

-- An agent's page lists the events about it or by it.
create index audit_events_org_target_idx on audit_events (org_id, target_id, seq);
create index audit_events_org_actor_idx on audit_events (org_id, actor_id, seq);
