//! Token signing keys and the JWT format of access tokens. Keys are Ed25519 (JWS `EdDSA`),
//! generated here, stored with the private half encrypted under the master key, decrypted once
//! per load and kept in memory as `jsonwebtoken` keys. The compact JWS and the time claims
//! (`exp`, `nbf`) are `jsonwebtoken`'s; what is trusted is ours: `EdDSA` only, with the key the
//! `kid` names among ours. Rotation makes a new key active; the retired key stays published
//! (JWKS) and accepted until every token it signed has expired.

use crate::server::domain::agents::change_bus::{self, Change};
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::{DomainError, Work};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
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

/// A published key: its JWK `x` and the verification key made from that same `x`, so what the
/// JWKS shows is exactly what we verify with.
#[derive(Clone)]
struct PublicKey {
    x: String,
    decoding: DecodingKey,
}

/// The keys in memory: one to sign with, all to verify with. Everything per key (DER, header,
/// validation rules) is built here once, not per token. (`jsonwebtoken`'s RustCrypto backend
/// still turns the DER into an Ed25519 key inside each `encode`/`decode`; that is its API.)
pub struct KeySet {
    kid: String,
    header: Header,
    encoding: EncodingKey,
    public: HashMap<String, PublicKey>,
    validation: Validation,
    /// The same without the clock: for a token whose use is reported after it expired.
    signature_only: Validation,
    /// Retired keys and the moment their last token has expired: from then on they verify
    /// nothing, are no longer published, and leave memory (`SigningKeys::current`).
    retired_until: HashMap<String, OffsetDateTime>,
}

#[derive(Debug, PartialEq)]
pub enum JwtError {
    /// Not a compact JWS with readable claims. A header naming an algorithm `jsonwebtoken` does
    /// not know at all (`none`) is refused here: it does not even parse.
    Malformed,
    UnsupportedAlgorithm,
    UnknownKey,
    BadSignature,
    /// `exp` has passed (no leeway).
    Expired,
    /// `nbf` is still ahead (no leeway).
    NotYetValid,
}

fn internal(what: &str) -> impl Fn(jsonwebtoken::errors::Error) -> DomainError + '_ {
    move |err| DomainError::Internal(format!("{what}: {err}"))
}

impl KeySet {
    /// The set for `active` (signs) and `published` (verify; must hold the active key too).
    fn new(kid: String, active: &SigningKey, published: HashMap<String, VerifyingKey>) -> Result<KeySet, DomainError> {
        // Without a backend `jsonwebtoken` panics at the first token: refuse to load instead.
        if CryptoProvider::try_get_default().is_none() {
            return Err(DomainError::Internal("jsonwebtoken has no crypto backend".into()));
        }
        // PKCS#8 without the public half: with it, the backend would re-check the pair per token.
        let der = KeypairBytes { secret_key: active.to_bytes(), public_key: None }
            .to_pkcs8_der()
            .map_err(|err| DomainError::Internal(format!("encoding the signing key: {err}")))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let mut public = HashMap::with_capacity(published.len());
        for (key_id, key) in published {
            // `verify_strict` used to refuse small-order keys on every token; the backend verifies
            // with plain `verify`, so such a key is refused here, once (ours never are).
            if key.is_weak() {
                return Err(DomainError::Internal(format!("signing key {key_id} is a weak key")));
            }
            let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
            let decoding = DecodingKey::from_ed_components(&x).map_err(internal("reading a public key"))?;
            public.insert(key_id, PublicKey { x, decoding });
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        // Only EdDSA, `exp` required, `nbf` honoured when present; no leeway on either (the clock
        // skew `tokens` allows is on `iat` only). `iss`, `iat` and the rest are checked by
        // `tokens`, against the caller's clock. No `aud` is ever issued, so one is refused.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        let mut signature_only = validation.clone();
        signature_only.validate_exp = false;
        signature_only.validate_nbf = false;
        let set = KeySet { kid, header, encoding, public, validation, signature_only, retired_until: HashMap::new() };
        // The backend reads the keys lazily: one token now makes a bad key (or a private key that
        // does not match its published half) fail the load instead of every request.
        let probe = set.sign(&json!({ "exp": (OffsetDateTime::now_utc() + Duration::minutes(1)).unix_timestamp() }))?;
        set.verify(&probe)
            .map_err(|err| DomainError::Internal(format!("the active signing key does not verify: {err:?}")))?;
        Ok(set)
    }

    pub fn active_kid(&self) -> &str {
        &self.kid
    }

    /// Whether the key `kid` may still verify at `now` (a retired key only within its grace).
    fn usable(&self, kid: &str, now: OffsetDateTime) -> bool {
        self.retired_until.get(kid).is_none_or(|until| *until > now)
    }

    /// This set without the retired keys whose grace has ended at `now`, or `None` when there
    /// is none to drop.
    fn without_spent_keys(&self, now: OffsetDateTime) -> Option<KeySet> {
        if self.retired_until.values().all(|until| *until > now) {
            return None;
        }
        let keep = |kid: &str| self.usable(kid, now);
        Some(KeySet {
            kid: self.kid.clone(),
            header: self.header.clone(),
            encoding: self.encoding.clone(),
            public: self
                .public
                .iter()
                .filter(|(kid, _)| keep(kid.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            validation: self.validation.clone(),
            signature_only: self.signature_only.clone(),
            retired_until: self
                .retired_until
                .iter()
                .filter(|(kid, _)| keep(kid.as_str()))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        })
    }

    /// Compact JWS of `claims` with the active key (`typ: at+jwt`, RFC 9068).
    pub fn sign(&self, claims: &Value) -> Result<String, DomainError> {
        jsonwebtoken::encode(&self.header, claims, &self.encoding).map_err(internal("signing a token"))
    }

    /// Checks a compact JWS and returns its claims: the signature, with one of our keys and
    /// `EdDSA` only (no `none`, no HMAC, no embedded keys), then `exp` and `nbf` against the clock.
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        self.verify_with(token, &self.validation)
    }

    /// Checks only that one of our keys signed the token (EdDSA, as `verify`), whatever the
    /// clock says: the token is proof that its holder presented it, even after it expired.
    pub fn verify_signature(&self, token: &str) -> Result<Value, JwtError> {
        self.verify_with(token, &self.signature_only)
    }

    fn verify_with(&self, token: &str, validation: &Validation) -> Result<Value, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        // Pinned before any key is looked at; `validation` pins it again inside `decode`.
        if header.alg != Algorithm::EdDSA {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        if !self.retired_until.is_empty() && !self.usable(kid, OffsetDateTime::now_utc()) {
            return Err(JwtError::UnknownKey);
        }
        let key = self.public.get(kid).ok_or(JwtError::UnknownKey)?;
        match jsonwebtoken::decode::<Value>(token, &key.decoding, validation) {
            Ok(data) => Ok(data.claims),
            Err(err) => Err(match err.kind() {
                ErrorKind::InvalidSignature => JwtError::BadSignature,
                ErrorKind::InvalidAlgorithm => JwtError::UnsupportedAlgorithm,
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                _ => JwtError::Malformed,
            }),
        }
    }

    /// The JWK Set (RFC 7517, OKP keys per RFC 8037), active key first.
    pub fn jwks(&self) -> Value {
        let now = OffsetDateTime::now_utc();
        let mut published: Vec<(&String, &PublicKey)> =
            self.public.iter().filter(|(kid, _)| self.usable(kid, now)).collect();
        published.sort_by_key(|(kid, _)| (*kid != &self.kid, (*kid).clone()));
        let keys: Vec<Value> = published
            .into_iter()
            .map(|(kid, key)| {
                json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                    "x": key.x,
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

    /// The keys now. A retired key whose last token has expired is dropped here, at the first
    /// use after its grace ended, so it leaves memory without waiting for a reload.
    pub fn current(&self) -> Arc<KeySet> {
        let set = match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if set.retired_until.is_empty() {
            return set;
        }
        let Some(pruned) = set.without_spent_keys(OffsetDateTime::now_utc()) else { return set };
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A reload (a rotation) may have replaced the set meanwhile: never put an older one back.
        if Arc::ptr_eq(&guard, &set) {
            *guard = Arc::new(pruned);
        }
        guard.clone()
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
    let mut retired_until = HashMap::new();
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
        if let Some(retired_at) = row.retired_at {
            retired_until.insert(row.kid.clone(), retired_at + RETIRED_KEY_GRACE);
        }
        verifying.insert(row.kid, key);
    }
    let (kid, signing) = active.ok_or_else(|| DomainError::Internal("no active signing key".into()))?;
    let mut set = KeySet::new(kid, &signing, verifying)?;
    set.retired_until = retired_until;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(keys: &[(&str, &SigningKey)]) -> HashMap<String, VerifyingKey> {
        keys.iter().map(|(kid, key)| (kid.to_string(), key.verifying_key())).collect()
    }

    fn key_set() -> KeySet {
        let signing = SigningKey::from_bytes(&[3; 32]);
        KeySet::new("k1".into(), &signing, published(&[("k1", &signing)])).unwrap()
    }

    fn in_a_minute() -> i64 {
        (OffsetDateTime::now_utc() + Duration::minutes(1)).unix_timestamp()
    }

    /// A token with `header` and `claims`, signed as `jsonwebtoken` would for that header.
    fn forged(header: &Header, claims: &Value, key: &EncodingKey) -> String {
        jsonwebtoken::encode(header, claims, key).unwrap()
    }

    fn header(alg: Algorithm, kid: &str) -> Header {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        header
    }

    #[test]
    fn signs_and_verifies_and_refuses_tampering() {
        let keys = key_set();
        let token = keys.sign(&json!({ "sub": "dana", "scope": "crm.read", "exp": in_a_minute() })).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims["sub"], "dana");
        assert_eq!(claims["scope"], "crm.read");
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            (header.alg, header.typ.as_deref(), header.kid.as_deref()),
            (Algorithm::EdDSA, Some("at+jwt"), Some("k1"))
        );

        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] =
            URL_SAFE_NO_PAD.encode(json!({ "sub": "mallory", "scope": "crm.read", "exp": in_a_minute() }).to_string());
        assert_eq!(keys.verify(&parts.join(".")), Err(JwtError::BadSignature));
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[2] = "A".repeat(86);
        assert_eq!(keys.verify(&parts.join(".")), Err(JwtError::BadSignature));

        assert_eq!(keys.verify("a.b"), Err(JwtError::Malformed));
        assert_eq!(keys.verify("not-a-jwt"), Err(JwtError::Malformed));
        assert_eq!(keys.verify(&format!("{token}.{}", parts[2])), Err(JwtError::Malformed));
        assert_eq!(keys.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)), Err(JwtError::Malformed));
    }

    #[test]
    fn only_eddsa_is_accepted() {
        let keys = key_set();
        let claims = json!({ "sub": "mallory", "exp": in_a_minute() });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());

        // `none` is not an algorithm `jsonwebtoken` knows: the header does not even parse.
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
        assert_eq!(keys.verify(&format!("{none_header}.{payload}.")), Err(JwtError::Malformed));

        // The classic confusion: HMAC keyed with our public key, as raw bytes or as the published `x`.
        let public = SigningKey::from_bytes(&[3; 32]).verifying_key();
        for secret in [public.as_bytes().as_slice(), URL_SAFE_NO_PAD.encode(public.as_bytes()).as_bytes()] {
            let hmac = forged(&header(Algorithm::HS256, "k1"), &claims, &EncodingKey::from_secret(secret).unwrap());
            assert_eq!(keys.verify(&hmac), Err(JwtError::UnsupportedAlgorithm));
        }
        for alg in ["HS256", "RS256", "ES256", "PS256"] {
            let other = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
            assert_eq!(keys.verify(&format!("{other}.{payload}.AAAA")), Err(JwtError::UnsupportedAlgorithm), "{alg}");
        }
    }

    #[test]
    fn the_kid_picks_one_of_our_keys() {
        let keys = key_set();
        let claims = json!({ "sub": "mallory", "exp": in_a_minute() });
        let stranger = SigningKey::from_bytes(&[9; 32]);
        let theirs = KeySet::new("k9".into(), &stranger, published(&[("k9", &stranger)])).unwrap();
        assert_eq!(keys.verify(&theirs.sign(&claims).unwrap()), Err(JwtError::UnknownKey));

        // Their key under our kid: the kid selects our key, whose signature check then fails.
        let posing = KeySet::new("k1".into(), &stranger, published(&[("k1", &stranger)])).unwrap();
        assert_eq!(keys.verify(&posing.sign(&claims).unwrap()), Err(JwtError::BadSignature));

        let kidless = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA"}"#);
        assert_eq!(keys.verify(&format!("{kidless}.e30.AAAA")), Err(JwtError::UnknownKey));
    }

    #[test]
    fn a_retired_key_still_verifies_until_it_leaves_the_set() {
        let old = SigningKey::from_bytes(&[3; 32]);
        let new = SigningKey::from_bytes(&[4; 32]);
        let token = key_set().sign(&json!({ "exp": in_a_minute() })).unwrap();
        let rotated = KeySet::new("k2".into(), &new, published(&[("k1", &old), ("k2", &new)])).unwrap();
        assert!(rotated.verify(&token).is_ok());
        let later = KeySet::new("k2".into(), &new, published(&[("k2", &new)])).unwrap();
        assert_eq!(later.verify(&token), Err(JwtError::UnknownKey));
    }

    #[test]
    fn a_retired_key_leaves_memory_when_its_grace_ends() {
        let old = SigningKey::from_bytes(&[3; 32]);
        let new = SigningKey::from_bytes(&[4; 32]);
        let token = key_set().sign(&json!({ "exp": in_a_minute() })).unwrap();
        let now = OffsetDateTime::now_utc();
        let mut rotated = KeySet::new("k2".into(), &new, published(&[("k1", &old), ("k2", &new)])).unwrap();
        rotated.retired_until.insert("k1".into(), now + Duration::minutes(5));
        assert!(rotated.verify(&token).is_ok(), "within its grace the retired key verifies");
        assert!(rotated.without_spent_keys(now).is_none(), "nothing to drop yet");
        rotated.retired_until.insert("k1".into(), now - Duration::seconds(1));
        assert_eq!(rotated.verify(&token), Err(JwtError::UnknownKey), "past its grace it verifies nothing");
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 1, "and is no longer published");
        let pruned = rotated.without_spent_keys(now).expect("the spent key is dropped");
        assert!(!pruned.public.contains_key("k1") && pruned.retired_until.is_empty());
        assert!(pruned.verify(&pruned.sign(&json!({ "exp": in_a_minute() })).unwrap()).is_ok());
    }

    #[test]
    fn time_claims_are_checked() {
        let keys = key_set();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(keys.verify(&keys.sign(&json!({ "exp": now - 1 })).unwrap()), Err(JwtError::Expired));
        assert_eq!(keys.verify(&keys.sign(&json!({ "exp": now - 3600 })).unwrap()), Err(JwtError::Expired));
        let early = json!({ "exp": now + 120, "nbf": now + 60 });
        assert_eq!(keys.verify(&keys.sign(&early).unwrap()), Err(JwtError::NotYetValid));
        assert!(keys.verify(&keys.sign(&json!({ "exp": now + 120, "nbf": now })).unwrap()).is_ok());

        // A missing `exp`, or time claims that are not numbers, are refused, not skipped.
        for claims in [
            json!({ "sub": "dana" }),
            json!({ "exp": "never" }),
            json!({ "exp": now + 120, "nbf": "later" }),
            json!({ "exp": -1 }),
        ] {
            assert!(keys.verify(&keys.sign(&claims).unwrap()).is_err(), "{claims}");
        }
    }

    #[test]
    fn weak_keys_do_not_load() {
        let signing = SigningKey::from_bytes(&[3; 32]);
        let mut keys = published(&[("k1", &signing)]);
        let mut identity = [0u8; 32];
        identity[0] = 1;
        keys.insert("weak".into(), VerifyingKey::from_bytes(&identity).unwrap());
        assert!(KeySet::new("k1".into(), &signing, keys).is_err());
        // Nor does a private key whose published half is someone else's.
        let stranger = SigningKey::from_bytes(&[9; 32]);
        assert!(KeySet::new("k1".into(), &signing, published(&[("k1", &stranger)])).is_err());
    }

    #[test]
    fn jwks_publishes_the_public_key_only() {
        let signing = SigningKey::from_bytes(&[3; 32]);
        let retired = SigningKey::from_bytes(&[4; 32]);
        let jwks = KeySet::new("k2".into(), &signing, published(&[("k1", &retired), ("k2", &signing)])).unwrap().jwks();
        // The shape the hand-written JWKS had, key for key.
        let jwk = |kid: &str, key: &SigningKey| {
            json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            })
        };
        let expected = json!({ "keys": [jwk("k2", &signing), jwk("k1", &retired)] });
        assert_eq!(jwks.to_string(), expected.to_string());
        assert!(jwks["keys"][0].get("d").is_none());
    }
}
