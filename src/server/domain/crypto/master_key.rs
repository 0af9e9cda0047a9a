//! Encryption of secrets at rest (signing keys, later IdP client secrets): AES-256-GCM under the
//! master key, a fresh random nonce per value, and the value's purpose bound as associated data
//! so a ciphertext cannot be moved to another column or row.

use crate::server::domain::DomainError;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};

const NONCE_LEN: usize = 12;

/// The 32-byte key from `MANDATE_MASTER_KEY`. Never printed.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn new(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Key::<Aes256Gcm>::from(bytes))
    }

    /// `nonce ‖ ciphertext+tag`, bound to `context` (for example `signing_key:<kid>`).
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, DomainError> {
        let cipher = Aes256Gcm::new(&self.0);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| DomainError::Internal("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn decrypt(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, DomainError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(DomainError::Internal("encrypted value is truncated".into()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        Aes256Gcm::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| {
                DomainError::Internal(format!(
                    "could not decrypt {context}: MANDATE_MASTER_KEY differs from the key the value was encrypted with"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_keys_and_contexts() {
        let key = MasterKey::new([1; 32]);
        let sealed = key.encrypt(b"secret", "signing_key:a").unwrap();
        assert_eq!(key.decrypt(&sealed, "signing_key:a").unwrap(), b"secret");
        assert!(key.decrypt(&sealed, "signing_key:b").is_err(), "context is bound");
        assert!(MasterKey::new([2; 32]).decrypt(&sealed, "signing_key:a").is_err());
        assert_ne!(sealed, key.encrypt(b"secret", "signing_key:a").unwrap(), "fresh nonce each time");
        assert!(!format!("{key:?}").contains('1'));
    }
}
