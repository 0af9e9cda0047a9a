//! Admin passwords: argon2id (OWASP parameters: 19 MiB, 2 iterations), hashed and verified on
//! the blocking pool so a burst of sign-ins cannot stall the async runtime, and at most a few at
//! a time so that parallel attempts queue instead of exhausting memory.

use crate::server::domain::DomainError;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;
use tokio::sync::{Semaphore, SemaphorePermit};

pub const MIN_LENGTH: usize = 12;
/// Bounded so that hashing cost cannot be driven up by huge inputs.
pub const MAX_LENGTH: usize = 256;

fn argon2() -> Argon2<'static> {
    // OWASP minimum for argon2id: m = 19 MiB, t = 2, p = 1. Params::new cannot fail for these.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str) -> Result<(), DomainError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(DomainError::invalid(format!("Choose a password of at least {MIN_LENGTH} characters")));
    }
    if length > MAX_LENGTH {
        return Err(DomainError::invalid(format!("Choose a password of at most {MAX_LENGTH} characters")));
    }
    Ok(())
}

/// A turn to run argon2: as many at once as the machine has cores (each takes 19 MiB).
async fn turn() -> Result<SemaphorePermit<'static>, DomainError> {
    static TURNS: OnceLock<Semaphore> = OnceLock::new();
    let turns = TURNS.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));
    turns.acquire().await.map_err(|_| DomainError::Internal("password hashing is shutting down".into()))
}

/// Hashes a password that passed `check_policy`.
pub async fn hash(password: String) -> Result<String, DomainError> {
    let _turn = turn().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| DomainError::Internal(format!("password hashing failed: {err}")))
    })
    .await
    .map_err(|err| DomainError::Internal(format!("password hashing task failed: {err}")))?
}

/// Verifies a password against a stored hash; `None` runs a dummy verification of the same
/// cost, so that unknown accounts answer as slowly as known ones.
pub async fn verify(stored_hash: Option<String>, password: String) -> bool {
    if password.len() > MAX_LENGTH * 4 {
        return false;
    }
    let Ok(_turn) = turn().await else { return false };
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match stored_hash {
            Some(hash) => (hash, true),
            None => (dummy_hash().to_string(), false),
        };
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        argon2().verify_password(password.as_bytes(), &parsed).is_ok() && real
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, computed once, used to equalise timing for unknown accounts.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let password = crate::server::domain::crypto::secrets::generate("dummy");
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bounds_length() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("exactly12chr").is_ok());
        assert!(check_policy(&"x".repeat(MAX_LENGTH + 1)).is_err());
    }

    #[tokio::test]
    async fn hashes_verify_only_the_right_password() {
        let hash = hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify(Some(hash.clone()), "correct horse battery".into()).await);
        assert!(!verify(Some(hash), "wrong horse battery".into()).await);
        assert!(!verify(None, "anything at all".into()).await);
    }
}
