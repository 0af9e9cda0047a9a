//! Business rules and SQL: the only place that changes state. Every entry point (server
//! functions, auth routes, platform API, CLI) calls in here; every change that matters writes
//! its audit event in the same transaction. Nothing here imports a protocol module or the UI.

pub mod actor;
pub mod admins;
pub mod agents;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod connections;
pub mod crypto;
pub mod dashboard;
pub mod directory;
pub mod dns;
pub mod domains;
pub mod error;
pub mod group_commit;
pub mod login;
pub mod maintenance;
pub mod mandate;
pub mod merkle;
pub mod orgs;
pub mod passwords;
pub mod people;
pub mod saml;
pub mod scopes;
pub mod secrets;
pub mod signing;
pub mod sso;
pub mod streams;
pub mod token_log;
pub mod tokens;
pub mod validate;

pub use actor::{Actor, AdminSession, Caller, RequestMeta};
pub use error::DomainError;
