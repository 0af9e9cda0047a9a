//! Integration tests on real PostgreSQL: each test gets a fresh database (`#[sqlx::test]`), a
//! real server on a random port, and talks HTTP to it like a browser or an API client would.
//! One test binary, so the suite links once.

mod agents_portal;
mod audit_chain;
mod audit_proofs;
mod audit_streams;
mod domain_rules;
mod isolation;
mod login;
mod oauth;
mod platform_api;
mod roles;
mod scim;
mod second_factors;
mod setup_links;
mod sso_oidc;
mod sso_saml;
mod support;
mod test_idp;
mod test_saml_idp;
mod two_nodes;
mod web_security;
