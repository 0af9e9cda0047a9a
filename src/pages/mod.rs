//! One file per route.

pub mod agent;
pub mod agents;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod connection;
pub mod connections;
pub mod dashboard;
pub mod directories;
pub mod directory;
pub mod login;
pub mod not_found;
pub mod scopes;
pub mod security;
pub mod settings;
pub mod setup;
pub mod sso_failed;
pub mod streams;
