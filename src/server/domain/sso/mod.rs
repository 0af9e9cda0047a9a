//! Single sign-on for admins: connections and the sign-in flow.
//!
//! - `fields`      what every connection has: name, claim names, IdP-group → role mappings
//! - `oidc`        OIDC connections: issuer, client id and encrypted secret, scopes
//! - `connections` every connection, whatever its protocol: list, detail, turn off, delete
//! - `saml`        SAML connections: IdP metadata, pinned certificates, SP keys, assertion replay
//! - `domains`     email domains an organization claims, proven by DNS
//! - `dns`         the TXT lookup behind domain proofs
//! - `routing`     which connection an email (or a sign-in link) signs in through
//! - `attempts`    sign-ins in flight: single use, bound to the browser, 10 minutes; SAML hand-over
//! - `identity`    what the IdP vouched for, and the audited ways a sign-in is refused
//! - `login`       the login plan: what a vouched-for identity may become, and signing it in
//! - `test_runs`   Test connection runs and their steps

pub mod attempts;
pub mod connections;
pub mod dns;
pub mod domains;
pub mod fields;
pub mod identity;
pub mod login;
pub mod oidc;
pub mod routing;
pub mod saml;
pub mod test_runs;
