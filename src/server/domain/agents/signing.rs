//! Token signing keys and the JWT format of access tokens. Keys are Ed25519 (JWS `EdDSA`),
//! generated here, stored with the private half encrypted under the master key, parsed once and
//! kept in memory (re-parsing per token would double the signing cost). Rotation makes a new
//! key active; the retired key stays published (JWKS) and accepted until every token it signed
//! has expired.

use crate::server::domain::agents::change_bus::{self, Change};
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::{DomainError, Work};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::{Duration, OffsetDateTime};

/// A retired key stays verifiable this long: the longest token lifetime plus clock margin.
pub const RETIRED_KEY_GRACE: Duration = Duration::minutes(10);
/// Longest compact JWS we parse; ours are well under 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

fn context(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// The keys in memory: one to sign with, all to verify with.
pub struct KeySet {
    kid: String,
    signing: SigningKey,
    verifying: HashMap<String, VerifyingKey>,
}

#[derive(Debug, PartialEq)]
pub enum JwtError {
    Malformed,
    UnsupportedAlgorithm,
    UnknownKey,
    BadSignature,
}

impl KeySet {
    pub fn active_kid(&self) -> &str {
        &self.kid
    }

    /// Compact JWS of `claims` with the active key (`typ: at+jwt`, RFC 9068).
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": self.kid });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.signing.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Checks the signature of a compact JWS and returns its claims. Only `EdDSA` with one of
    /// our keys is accepted (no `none`, no HMAC, no embedded keys).
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        let kid = header.get("kid").and_then(Value::as_str).ok_or(JwtError::UnknownKey)?;
        let key = self.verifying.get(kid).ok_or(JwtError::UnknownKey)?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JwtError::Malformed)?
            .try_into()
            .map_err(|_| JwtError::Malformed)?;
        let signing_input_len = token.len() - token.rsplit('.').next().map_or(0, str::len) - 1;
        key.verify_strict(&token.as_bytes()[..signing_input_len], &ed25519_dalek::Signature::from_bytes(&signature))
            .map_err(|_| JwtError::BadSignature)?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)
    }

    /// The JWK Set (RFC 7517, OKP keys per RFC 8037), active key first.
    pub fn jwks(&self) -> Value {
        let mut kids: Vec<&String> = self.verifying.keys().collect();
        kids.sort_by_key(|kid| (*kid != &self.kid, (*kid).clone()));
        let keys: Vec<Value> = kids
            .into_iter()
            .map(|kid| {
                json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                    "x": URL_SAFE_NO_PAD.encode(self.verifying[kid].as_bytes()),
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

/// The shared, reloadable key set.
pub struct SigningKeys {
    master: MasterKey,
    current: RwLock<Arc<KeySet>>,
}

impl SigningKeys {
    /// Loads the keys, creating the first one when there is none.
    pub async fn load(pool: &PgPool, master: MasterKey) -> Result<SigningKeys, DomainError> {
        let mut conn = pool.acquire().await?;
        ensure_active_key(&mut conn, &master, OffsetDateTime::now_utc()).await?;
        let set = read_key_set(pool, &master).await?;
        Ok(SigningKeys { master, current: RwLock::new(Arc::new(set)) })
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys (after a rotation on any node).
    pub async fn reload(&self, pool: &PgPool) -> Result<(), DomainError> {
        let set = Arc::new(read_key_set(pool, &self.master).await?);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

fn new_kid() -> String {
    let mut bytes = [0u8; 9];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn insert_key(conn: &mut PgConnection, master: &MasterKey, now: OffsetDateTime) -> Result<String, DomainError> {
    let kid = new_kid();
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let sealed = master.encrypt(key.as_bytes(), &context(&kid))?;
    let public = key.verifying_key().to_bytes();
    // language=PostgreSQL
    sqlx::query!(
        "insert into signing_keys (kid, algorithm, public_key, private_key_encrypted, created_at) values ($1, 'EdDSA', $2, $3, $4)
         on conflict do nothing",
        kid,
        public.as_slice(),
        sealed,
        now
    )
    .execute(conn)
    .await?;
    Ok(kid)
}

async fn ensure_active_key(
    conn: &mut PgConnection,
    master: &MasterKey,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    // language=PostgreSQL
    let active = sqlx::query_scalar!("select count(*) as \"n!\" from signing_keys where retired_at is null")
        .fetch_one(&mut *conn)
        .await?;
    if active == 0 {
        // Two nodes starting at once: the unique index lets only one insert win.
        insert_key(conn, master, now).await?;
    }
    Ok(())
}

/// Retires the active key and makes a new one active. Returns the new key id.
pub async fn rotate(pool: &PgPool, keys: &SigningKeys, now: OffsetDateTime) -> Result<String, DomainError> {
    let mut work = Work::system(pool, now).await?;
    // language=PostgreSQL
    sqlx::query!("update signing_keys set retired_at = $1 where retired_at is null", now).execute(work.conn()).await?;
    let kid = insert_key(work.conn(), &keys.master, now).await?;
    change_bus::announce(work.conn(), &Change::Keys).await?;
    work.commit().await?;
    // Keys are not in the mandate cache: this node reloads them itself, the others on the bus.
    keys.reload(pool).await?;
    Ok(kid)
}

async fn read_key_set(pool: &PgPool, master: &MasterKey) -> Result<KeySet, DomainError> {
    let since = OffsetDateTime::now_utc() - RETIRED_KEY_GRACE;
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select kid, public_key, private_key_encrypted, retired_at from signing_keys
         where retired_at is null or retired_at > $1 order by created_at",
        since
    )
    .fetch_all(pool)
    .await?;
    let mut verifying = HashMap::new();
    let mut active = None;
    for row in rows {
        let public: [u8; 32] =
            row.public_key.as_slice().try_into().map_err(|_| DomainError::Internal("bad public key length".into()))?;
        let key =
            VerifyingKey::from_bytes(&public).map_err(|err| DomainError::Internal(format!("bad public key: {err}")))?;
        if row.retired_at.is_none() {
            let secret = master.decrypt(&row.private_key_encrypted, &context(&row.kid))?;
            let secret: [u8; 32] =
                secret.as_slice().try_into().map_err(|_| DomainError::Internal("bad private key length".into()))?;
            active = Some((row.kid.clone(), SigningKey::from_bytes(&secret)));
        }
        verifying.insert(row.kid, key);
    }
    let (kid, signing) = active.ok_or_else(|| DomainError::Internal("no active signing key".into()))?;
    Ok(KeySet { kid, signing, verifying })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_set() -> KeySet {
        let signing = SigningKey::from_bytes(&[3; 32]);
        let mut verifying = HashMap::new();
        verifying.insert("k1".to_string(), signing.verifying_key());
        KeySet { kid: "k1".into(), signing, verifying }
    }

    #[test]
    fn signs_and_verifies_and_refuses_tampering() {
        let keys = key_set();
        let token = keys.sign(&json!({ "sub": "dana", "scope": "crm.read" }));
        assert_eq!(keys.verify(&token).unwrap()["sub"], "dana");

        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(json!({ "sub": "mallory", "scope": "crm.read" }).to_string());
        assert_eq!(keys.verify(&parts.join(".")), Err(JwtError::BadSignature));

        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{}.", token.split('.').nth(1).unwrap());
        assert_eq!(keys.verify(&unsigned), Err(JwtError::UnsupportedAlgorithm));

        let hmac_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"k1"}"#);
        assert_eq!(keys.verify(&format!("{hmac_header}.e30.AAAA")), Err(JwtError::UnsupportedAlgorithm));

        let other_kid = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k9"}"#);
        assert_eq!(keys.verify(&format!("{other_kid}.e30.AAAA")), Err(JwtError::UnknownKey));
        assert_eq!(keys.verify("a.b"), Err(JwtError::Malformed));
        assert_eq!(keys.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)), Err(JwtError::Malformed));
    }

    #[test]
    fn jwks_publishes_the_public_key_only() {
        let jwks = key_set().jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["kid"], "k1");
        assert!(key.get("d").is_none());
    }
}
