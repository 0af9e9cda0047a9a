//! Business rules and SQL: the only place that changes state. Every entry point (server
//! functions, auth routes, SCIM, OAuth, platform API, CLI) calls in here; every change that
//! matters writes its audit event in the same transaction. Nothing here imports a protocol
//! module or the UI.
//!
//! The map, by capability:
//! - `agents/`    the agent registry, scope requests and approvals, the scope catalog, mandates
//!   (the revocation cache and the change bus that keeps every node's copy exact),
//!   access tokens, their log and signing keys, and `revocation` (everything that
//!   ends authority)
//! - `sso/`       SSO connections (OIDC, SAML, the fields they share), email domains and DNS
//!   proof, and the sign-in flow (routing, attempts, the login plan, test runs)
//! - `directory/` SCIM directories: users, groups, the filter language, people, and `leaver`
//!   (the one rule for a person who leaves)
//! - `audit/`     the hash chain, the Merkle tree and checkpoints, agent actions, verification,
//!   export, retention and log streams
//! - `org/`       organizations, admins and invitations, password sign-in, API keys, dashboard
//! - `crypto/`    the master key, one-time secrets and password hashing
//! - `outbound`   where Mandate may connect (no private addresses unless allowed) and the
//!   HTTP clients for identity providers and log streams
//! - `rate_limits` how often one client may knock on each door (sign-in, SSO, tokens, SCIM, API)
//!
//! Shared by all of them: `actor` (who is calling: the proofs of identity and the audit
//! actor), `error`, `validate` (input rules), `group_commit` (batched durable writes) and
//! `maintenance` (hourly housekeeping), and `work`: the unit of work every change goes through
//! (begin → change → audit event → announce cache changes → commit → apply locally).

pub mod actor;
pub mod agents;
pub mod audit;
pub mod crypto;
pub mod directory;
pub mod error;
pub mod group_commit;
pub mod maintenance;
pub mod org;
pub mod outbound;
pub mod rate_limits;
pub mod sso;
pub mod validate;
pub mod work;

pub use actor::{Actor, AdminSession, ApiKeyPrincipal, Caller, RequestMeta};
pub use error::DomainError;
pub use work::{Call, Work};
