//! Server functions: the portal's calls into the server, one file per area. Each one
//! authorizes the caller (through the domain's permission check), calls the domain and shapes
//! the answer; errors come back as `AppError` with the request id.

pub mod admins;
pub mod agents;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod connections;
pub mod dashboard;
pub mod directories;
pub mod people;
pub mod scopes;
pub mod security;
pub mod session;
pub mod streams;

#[cfg(feature = "ssr")]
pub(crate) mod context;
