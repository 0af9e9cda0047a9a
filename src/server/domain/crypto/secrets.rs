//! Bearer secrets (setup links, API keys, later agent secrets and SCIM tokens): 256 random bits,
//! a recognisable prefix, and only their SHA-256 kept in the database.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of platform API keys.
pub const API_KEY_PREFIX: &str = "mnd_key_";
/// Prefix of admin setup / invitation tokens.
pub const INVITATION_PREFIX: &str = "mnd_inv_";

/// A fresh secret: `prefix` followed by 32 random bytes in base64url (43 characters).
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The digest stored in place of a secret. Lookups by digest are safe against timing attacks:
/// the attacker cannot choose the digest's bytes.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The start of a secret (its prefix and four characters), kept to let people recognise it.
pub fn recognisable_part(secret: &str, prefix: &str) -> String {
    secret.chars().take(prefix.len() + 4).collect()
}

/// Cheap shape check before touching the database: right prefix, right length, URL-safe alphabet.
pub fn looks_like(secret: &str, prefix: &str) -> bool {
    secret.len() == prefix.len() + 43
        && secret.starts_with(prefix)
        && secret[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_recognisable() {
        let a = generate(API_KEY_PREFIX);
        let b = generate(API_KEY_PREFIX);
        assert_ne!(a, b);
        assert!(looks_like(&a, API_KEY_PREFIX));
        assert!(!looks_like(&a, INVITATION_PREFIX));
        assert!(!looks_like("mnd_key_short", API_KEY_PREFIX));
        assert_eq!(digest(&a).len(), 32);
        assert_ne!(digest(&a), digest(&b));
    }
}
