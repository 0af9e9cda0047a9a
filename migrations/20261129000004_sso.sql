-- SSO: connections to an organization's identity provider, the email domains it proves it owns,
-- the identities people sign in with, and the short-lived state of sign-ins in flight.

-- An SSO connection. OIDC columns are filled for kind 'oidc'; the client secret is AES-256-GCM
-- encrypted under the master key, bound to 'connection_secret:<id>'.
create table connections (
    org_id             uuid        not null references organizations (id),
    id                 uuid        not null,
    kind               text        not null constraint connections_kind_check check (kind in ('oidc', 'saml')),
    name               text        not null constraint connections_name_check check (length(name) between 1 and 100),
    enabled            boolean     not null default true,
    oidc_issuer        text,
    oidc_client_id     text,
    oidc_client_secret bytea,
    oidc_scopes        text        not null default 'openid email profile',
    claim_email        text        not null default 'email',
    claim_name         text        not null default 'name',
    claim_groups       text        not null default 'groups',
    created_at         timestamptz not null,
    updated_at         timestamptz not null,
    constraint connections_pkey primary key (org_id, id),
    constraint connections_oidc_check check (
        kind <> 'oidc' or (oidc_issuer is not null and oidc_client_id is not null and oidc_client_secret is not null))
);
-- Sign-in URLs name a connection by id alone (`/sso/start?connection=`, the SAML ACS).
create unique index connections_id_key on connections (id);

-- Which portal role members of an IdP group get when they sign in through the connection.
-- Owners are never made by a mapping.
create table connection_role_mappings (
    org_id        uuid not null,
    connection_id uuid not null,
    idp_group     text not null constraint connection_role_mappings_group_check check (length(idp_group) between 1 and 200),
    role          text not null constraint connection_role_mappings_role_check check (role in ('admin', 'approver', 'auditor')),
    constraint connection_role_mappings_pkey primary key (org_id, connection_id, idp_group),
    constraint connection_role_mappings_connection_fkey foreign key (org_id, connection_id)
        references connections (org_id, id) on delete cascade
);

-- The IdP's stable subject of a person, per connection. A person is found by (connection,
-- subject), never by email across connections.
create table sso_identities (
    org_id        uuid        not null,
    connection_id uuid        not null,
    subject       text        not null,
    person_id     uuid        not null,
    created_at    timestamptz not null,
    last_login_at timestamptz not null,
    constraint sso_identities_pkey primary key (org_id, connection_id, subject),
    constraint sso_identities_connection_fkey foreign key (org_id, connection_id)
        references connections (org_id, id) on delete cascade,
    constraint sso_identities_person_fkey foreign key (org_id, person_id) references people (org_id, id)
);
create index sso_identities_person_idx on sso_identities (org_id, person_id);

-- A sign-in (or a Test connection run) sent to the IdP and not yet back. Found by the SHA-256
-- of its state; bound to the browser that started it by the SHA-256 of a cookie; single use.
create table sso_attempts (
    id            uuid        primary key,
    org_id        uuid        not null,
    connection_id uuid        not null,
    state_hash    bytea       not null constraint sso_attempts_state_hash_key unique,
    binding_hash  bytea       not null,
    nonce         text        not null,
    purpose       text        not null constraint sso_attempts_purpose_check check (purpose in ('login', 'test')),
    next_path     text,
    test_id       uuid,
    created_at    timestamptz not null,
    expires_at    timestamptz not null,
    used_at       timestamptz,
    constraint sso_attempts_connection_fkey foreign key (org_id, connection_id)
        references connections (org_id, id) on delete cascade
);
create index sso_attempts_expires_idx on sso_attempts (expires_at);

-- A Test connection run and each step's result ([{"step", "status", "detail"}]).
create table connection_tests (
    org_id        uuid        not null,
    id            uuid        not null,
    connection_id uuid        not null,
    started_by    uuid        not null,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    succeeded     boolean,
    steps         jsonb       not null default '[]',
    constraint connection_tests_pkey primary key (org_id, id),
    constraint connection_tests_connection_fkey foreign key (org_id, connection_id)
        references connections (org_id, id) on delete cascade
);
create index connection_tests_connection_idx on connection_tests (org_id, connection_id, started_at desc);

-- Domain verification: the TXT record value the organization must publish.
alter table organization_domains
    add column verification_token text not null default replace(gen_random_uuid()::text, '-', ''),
    add column last_checked_at timestamptz,
    add column last_check_error text;

-- Password sign-in: everyone with a password ('all'), owners only as break-glass ('owners'), or
-- nobody ('off', SSO only).
alter table organizations add column password_sign_in text not null default 'all'
    constraint organizations_password_sign_in_check check (password_sign_in in ('all', 'owners', 'off'));
update organizations set password_sign_in = case when password_login_enabled then 'all' else 'owners' end;
alter table organizations drop column password_login_enabled;
