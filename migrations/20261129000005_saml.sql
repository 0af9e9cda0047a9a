-- SAML 2.0 connections: the IdP's entity id and single sign-on URL, its pinned signing
-- certificates (two may be active while the IdP rotates), the assertion ids already used
-- (replay), and the hand-over from the cross-site ACS POST to the browser that started.

alter table connections
    add column saml_idp_entity_id       text,
    add column saml_sso_url             text,
    add column saml_metadata_url        text,
    add column saml_allow_idp_initiated boolean not null default false,
    -- Signed AuthnRequests: our key for this connection (AES-256-GCM under the master key, bound
    -- to 'saml_sp_key:<id>') and its self-signed certificate, published in our SP metadata.
    add column saml_sign_requests       boolean not null default false,
    add column saml_sp_key              bytea,
    add column saml_sp_certificate      bytea,
    add constraint connections_saml_check check (
        kind <> 'saml' or (saml_idp_entity_id is not null and saml_sso_url is not null));

-- Certificates the IdP signs with, pinned: certificates inside a response's KeyInfo are ignored.
create table saml_certificates (
    org_id        uuid        not null,
    connection_id uuid        not null,
    fingerprint   text        not null, -- SHA-256 of the DER, hex
    der           bytea       not null,
    subject       text        not null,
    not_after     timestamptz not null,
    created_at    timestamptz not null,
    constraint saml_certificates_pkey primary key (org_id, connection_id, fingerprint),
    constraint saml_certificates_connection_fkey foreign key (org_id, connection_id)
        references connections (org_id, id) on delete cascade
);

-- Assertion ids seen, kept until the assertion could no longer be accepted anyway.
create table saml_assertion_ids (
    connection_id uuid        not null,
    assertion_id  text        not null,
    expires_at    timestamptz not null,
    constraint saml_assertion_ids_pkey primary key (connection_id, assertion_id)
);
create index saml_assertion_ids_expires_idx on saml_assertion_ids (expires_at);

-- The ACS verifies the response, then hands the identity to the browser that started the
-- sign-in through a single-use token (the ACS POST itself carries no SameSite=Lax cookie).
alter table sso_attempts
    add column finish_token_hash bytea constraint sso_attempts_finish_token_hash_key unique,
    add column identity          jsonb,
    add column steps             jsonb,
    add column idp_initiated     boolean not null default false;
