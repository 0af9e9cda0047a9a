//! Agents and their authority.
//!
//! - `registry`   registering agents, their credentials, listing and detail
//! - `scopes`     the organization's scope catalog and group ceilings
//! - `approvals`  scope requests and their decisions (the high-risk approver rule)
//! - `mandate`    the in-memory mandate cache every token request and introspection reads
//! - `change_bus` LISTEN/NOTIFY: how every node hears of a change that shortens a mandate
//! - `delegation` which agents may receive an agent's tokens by token exchange
//! - `tokens`     minting, exchanging, introspecting and revoking access tokens
//! - `token_log`  the durable, batched record of issued tokens
//! - `revocation` everything that ends authority: revoke an agent, revoke all of a person's,
//!   end a leaver's agents, and the impact previews shown before
//! - `signing`    the Ed25519 signing keys behind every token (parsed once, kept in memory)

pub mod approvals;
pub mod change_bus;
pub mod delegation;
pub mod mandate;
pub mod registry;
pub mod revocation;
pub mod scopes;
pub mod signing;
pub mod token_log;
pub mod tokens;
