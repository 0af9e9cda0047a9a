//! Secrets at rest.
//!
//! - `master_key` AES-256-GCM encryption of stored secrets under `MANDATE_MASTER_KEY`
//! - `secrets`    random one-time secrets (shown once, stored as SHA-256 hashes)
//! - `passwords`  Argon2id password hashing

pub mod master_key;
pub mod passwords;
pub mod secrets;
