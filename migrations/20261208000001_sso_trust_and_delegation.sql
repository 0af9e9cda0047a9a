-- SSO trust: an identity is the IdP's (issuer, subject) as seen through one connection, emails
-- are trusted for linking only when the IdP verifies them, and a connection is turned on only
-- after a passing Test connection run since its trust material last changed. Delegation: token
-- exchange only to agents an admin designated.

-- The issuer (OIDC) or IdP entity id (SAML) is part of the identity: a connection repointed at
-- another IdP does not inherit its people. Existing identities take their connection's issuer.
alter table sso_identities add column issuer text;
update sso_identities i set issuer = coalesce(c.oidc_issuer, c.saml_idp_entity_id)
  from connections c where c.org_id = i.org_id and c.id = i.connection_id;
alter table sso_identities alter column issuer set not null;
alter table sso_identities drop constraint sso_identities_pkey;
alter table sso_identities add constraint sso_identities_pkey primary key (org_id, connection_id, issuer, subject);

-- Whether the IdP verifies every email it asserts (set by an owner). Without it an email is used
-- for linking only when the ID token says `email_verified: true`; SAML never says so.
alter table connections add column trusts_idp_email boolean not null default false;

-- When the connection's trust material last changed: enabling needs a passing test run started
-- after it (or an owner's audited skip). A passing run turns on only a connection that was never
-- on: one an admin turned off stays off until someone turns it on.
alter table connections add column trust_changed_at timestamptz;
update connections set trust_changed_at = updated_at;
alter table connections alter column trust_changed_at set not null;
alter table connections add column ever_enabled boolean not null default false;
update connections set ever_enabled = true;

-- A person an owner removed from the portal: no group mapping makes them an admin again; only a
-- new invitation does.
alter table people add column admin_removed_at timestamptz;

-- Delegation: an agent may hand its token to another agent (RFC 8693 token exchange) only when
-- an admin designated that agent as its delegate. Tokens of the agent carry the designation as
-- `may_act`; exchange and introspection check the row, so removing it stops new exchanges and
-- ends the tokens already handed on.
create table agent_delegates (
    org_id        uuid        not null,
    agent_id      uuid        not null,
    delegate_id   uuid        not null,
    designated_by text        not null,
    created_at    timestamptz not null,
    constraint agent_delegates_pkey primary key (org_id, agent_id, delegate_id),
    constraint agent_delegates_agent_fkey foreign key (org_id, agent_id) references agents (org_id, id) on delete cascade,
    constraint agent_delegates_delegate_fkey foreign key (org_id, delegate_id) references agents (org_id, id) on delete cascade,
    constraint agent_delegates_self_check check (agent_id <> delegate_id)
);
