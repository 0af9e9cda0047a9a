-- Directories: SCIM 2.0 endpoints fed by an organization's IdP. Directory users are linked one
-- to one with people; groups gain a directory and a version. The events feed keeps every write
-- and every refused request with its outcome.

create table directories (
    org_id           uuid        not null references organizations (id),
    id               uuid        not null,
    name             text        not null,
    provider         text        not null constraint directories_provider_check
                                 check (provider in ('okta', 'entra', 'google', 'jumpcloud', 'generic')),
    -- SHA-256 of the bearer token (shown once)
    token_hash       bytea       not null,
    token_prefix     text        not null,
    token_rotated_at timestamptz not null,
    created_at       timestamptz not null default now(),
    constraint directories_pkey primary key (org_id, id),
    constraint directories_token_hash_key unique (token_hash)
);
-- The SCIM base URL names a directory by id alone.
create unique index directories_id_key on directories (id);

create table directory_users (
    org_id       uuid        not null,
    directory_id uuid        not null,
    id           uuid        not null,
    person_id    uuid        not null,
    user_name    text        not null,
    external_id  text,
    display_name text,
    active       boolean     not null default true,
    -- [{value, type, primary}] as sent, for filters on emails
    emails       jsonb       not null default '[]',
    -- the SCIM representation as stored (without id, meta and groups)
    resource     jsonb       not null,
    version      bigint      not null default 1,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    constraint directory_users_pkey primary key (org_id, id),
    constraint directory_users_directory_fkey foreign key (org_id, directory_id) references directories (org_id, id),
    constraint directory_users_person_fkey foreign key (org_id, person_id) references people (org_id, id)
);
create unique index directory_users_user_name_key on directory_users (directory_id, lower(user_name));
-- A person has at most one directory identity: an email change never re-links a person.
create unique index directory_users_person_key on directory_users (org_id, person_id);
create index directory_users_listing_idx on directory_users (org_id, directory_id, created_at, id);

alter table groups
    add column directory_id uuid,
    add column external_id  text,
    add column version      bigint      not null default 1,
    add column updated_at   timestamptz not null default now(),
    add constraint groups_directory_fkey foreign key (org_id, directory_id) references directories (org_id, id);
create index groups_directory_idx on groups (org_id, directory_id, created_at, id);

create table directory_events (
    org_id        uuid        not null,
    directory_id  uuid        not null,
    id            uuid        not null,
    occurred_at   timestamptz not null,
    method        text        not null,
    path          text        not null,
    event         text        not null,
    resource_type text,
    resource_id   text,
    status        integer     not null,
    detail        text        not null default '',
    request_id    text,
    constraint directory_events_pkey primary key (org_id, id),
    constraint directory_events_directory_fkey foreign key (org_id, directory_id) references directories (org_id, id)
);
create index directory_events_feed_idx on directory_events (org_id, directory_id, occurred_at desc);
