//! Signed checkpoints over each organization's audit log, and the proofs they anchor.
//!
//! The leaves of an organization's RFC 9162 Merkle tree are its events in sequence order; leaf
//! `seq - 1` is `SHA-256(0x00 ‖ hash)`, where `hash` is the event's 32-byte chain hash (which
//! covers every field and the previous event). A checkpoint states the tree's size and root at
//! a moment and is signed with Ed25519 by a key whose private half is encrypted under the
//! master key: someone holding only the database can read checkpoints but never forge one.
//!
//! Each checkpoint also keeps the tree's compact range (frontier), so the next one extends it
//! without re-reading history, and so proofs still work once retention pruned early events.

use super::{chain_hash, events_after, GENESIS_HASH};
use crate::model::audit::{AuditEventView, Checkpoint, ConsistencyProof, InclusionProof};
use crate::server::domain::audit::high_water::HighWaterMarks;
use crate::server::domain::audit::merkle::{self, Frontier, Hash, Tree};
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor, PgPool};
use std::collections::HashMap;
use std::path::Path;
use time::OffsetDateTime;
use uuid::Uuid;

/// How often `serve` signs a checkpoint of every organization whose log grew.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// Events read per query while extending a tree.
const BATCH: i64 = 5_000;

fn key_context(key_id: &str) -> String {
    format!("audit_signing_key:{key_id}")
}

/// The key id: the first 8 bytes of SHA-256 of the public key, in hex.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..8])
}

/// The exact text a checkpoint's signature covers. Auditors rebuild it from the checkpoint's
/// fields; nothing else is signed, so a checkpoint can be checked with any Ed25519 library.
pub fn note(org_id: Uuid, size: i64, root: &[u8], signed_at_unix: i64) -> String {
    format!(
        "mandate audit checkpoint v1\norg {org_id}\nsize {size}\nroot {}\ntime {signed_at_unix}\n",
        hex::encode(root)
    )
}

/// Public keys that may have signed checkpoints, and the key that signs new ones (absent when
/// verifying offline with only public keys).
pub struct AuditKeys {
    signer: Option<(String, SigningKey)>,
    trusted: HashMap<String, VerifyingKey>,
    /// The largest checkpoint per organization this node has seen: the database must never
    /// show less, or the node would sign over rewritten history.
    high_water: HighWaterMarks,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys").field("trusted", &self.trusted.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// A published checkpoint key.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PublicKey {
    pub key_id: String,
    pub algorithm: &'static str,
    /// The raw 32-byte Ed25519 public key, base64.
    pub public_key: String,
    pub public_key_pem: String,
}

impl AuditKeys {
    /// Loads the keys, creating the first one if there is none, and the high-water marks kept in
    /// `high_water_file` (none: in memory only). Only keys whose private half decrypts under
    /// `master` and matches its public half are trusted: a key row someone slipped into the
    /// database is not.
    pub async fn load(
        pool: &PgPool,
        master: &MasterKey,
        high_water_file: Option<&Path>,
    ) -> Result<AuditKeys, DomainError> {
        let mut keys = Self::load_with(pool, master, true).await?;
        keys.high_water = HighWaterMarks::load(pool, high_water_file).await?;
        Ok(keys)
    }

    /// The trusted keys, creating none (verification never writes).
    pub async fn load_trusted(pool: &PgPool, master: &MasterKey) -> Result<AuditKeys, DomainError> {
        Self::load_with(pool, master, false).await
    }

    async fn load_with(pool: &PgPool, master: &MasterKey, create: bool) -> Result<AuditKeys, DomainError> {
        let mut work = Work::system(pool, OffsetDateTime::now_utc()).await?;
        // One node creates the first key; the others wait here and then read it.
        // language=PostgreSQL
        sqlx::query!("select pg_advisory_xact_lock(hashtextextended('audit_signing_keys', 0))")
            .execute(work.conn())
            .await?;
        // language=PostgreSQL
        let rows = sqlx::query!(
            "select id, public_key, private_key_encrypted from audit_signing_keys order by created_at, id"
        )
        .fetch_all(work.conn())
        .await?;
        let mut keys = AuditKeys { signer: None, trusted: HashMap::new(), high_water: Default::default() };
        for row in rows {
            let Ok(secret) = master.decrypt(&row.private_key_encrypted, &key_context(&row.id)) else {
                tracing::error!(key_id = %row.id, "audit signing key does not decrypt under the master key; not trusted");
                continue;
            };
            let Ok(secret) = <[u8; 32]>::try_from(secret.as_slice()) else { continue };
            let signing = SigningKey::from_bytes(&secret);
            if signing.verifying_key().as_bytes()[..] != row.public_key[..]
                || key_id(&signing.verifying_key()) != row.id
            {
                tracing::error!(key_id = %row.id, "audit signing key does not match its public key; not trusted");
                continue;
            }
            keys.trusted.insert(row.id.clone(), signing.verifying_key());
            keys.signer = Some((row.id, signing));
        }
        if keys.signer.is_none() && create {
            let signing = SigningKey::generate(&mut rand::rngs::OsRng);
            let public = signing.verifying_key();
            let id = key_id(&public);
            let sealed = master.encrypt(signing.as_bytes(), &key_context(&id))?;
            // language=PostgreSQL
            sqlx::query!(
                "insert into audit_signing_keys (id, public_key, private_key_encrypted) values ($1, $2, $3)",
                id,
                public.as_bytes().as_slice(),
                sealed
            )
            .execute(work.conn())
            .await?;
            keys.trusted.insert(id.clone(), signing.verifying_key());
            keys.signer = Some((id, signing));
        }
        work.commit().await?;
        Ok(keys)
    }

    /// Keys for verification only, from base64 Ed25519 public keys (raw 32 bytes or PEM/DER SPKI).
    pub fn from_public_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<AuditKeys, DomainError> {
        let mut trusted = HashMap::new();
        for text in keys {
            let key = parse_public_key(text)?;
            trusted.insert(key_id(&key), key);
        }
        Ok(AuditKeys { signer: None, trusted, high_water: Default::default() })
    }

    pub fn public_keys(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self
            .trusted
            .iter()
            .map(|(id, key)| PublicKey {
                key_id: id.clone(),
                algorithm: "Ed25519",
                public_key: STANDARD.encode(key.as_bytes()),
                public_key_pem: pem(key),
            })
            .collect();
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        keys
    }

    /// Writes the high-water marks when they changed (after checkpoints have committed).
    pub fn save_high_water(&self) -> Result<(), DomainError> {
        self.high_water.save()
    }

    fn sign(&self, note: &str) -> Result<(String, Vec<u8>), DomainError> {
        let (id, key) = self.signer.as_ref().ok_or_else(|| DomainError::Internal("no audit signing key".into()))?;
        Ok((id.clone(), key.sign(note.as_bytes()).to_bytes().to_vec()))
    }

    /// Whether `checkpoint` carries a valid signature by a trusted key over its own fields.
    pub fn verifies(&self, checkpoint: &Checkpoint) -> bool {
        let Some(key) = self.trusted.get(&checkpoint.key_id) else { return false };
        let (Ok(root), Ok(signature)) = (hex::decode(&checkpoint.root_hash), STANDARD.decode(&checkpoint.signature))
        else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&signature) else { return false };
        let text = note(checkpoint.org_id, checkpoint.size, &root, checkpoint.signed_at.unix_timestamp());
        key.verify(text.as_bytes(), &signature).is_ok()
    }
}

/// The SubjectPublicKeyInfo DER prefix of an Ed25519 key (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

fn pem(key: &VerifyingKey) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
}

fn parse_public_key(text: &str) -> Result<VerifyingKey, DomainError> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("");
    let bytes = STANDARD
        .decode(body.trim())
        .map_err(|_| DomainError::invalid("the public key is not base64 (raw 32-byte Ed25519 key or PEM)"))?;
    let raw = match bytes.len() {
        32 => bytes,
        44 if bytes[..12] == ED25519_SPKI_PREFIX => bytes[12..].to_vec(),
        _ => return Err(DomainError::invalid("the public key is not an Ed25519 key (32 bytes raw, or PEM)")),
    };
    let raw: [u8; 32] = raw.try_into().map_err(|_| DomainError::invalid("the public key has the wrong length"))?;
    VerifyingKey::from_bytes(&raw).map_err(|_| DomainError::invalid("the public key is not a valid Ed25519 point"))
}

/// The action of the entry a log stream receives for each signed checkpoint (never an event of
/// the log itself: a checkpoint describes the log).
pub const STREAM_ACTION: &str = "audit.checkpoint";

/// A checkpoint as a log stream entry, shaped like an event: `seq` 0, the checkpoint in
/// `details` with the exact signed text, and an `id` derived from the organization and size so
/// that a retried delivery carries the same one.
pub fn stream_entry(checkpoint: &Checkpoint) -> AuditEventView {
    let digest = Sha256::digest(format!("{}:{}", checkpoint.org_id, checkpoint.size));
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    let root = hex::decode(&checkpoint.root_hash).unwrap_or_default();
    AuditEventView {
        seq: 0,
        id: uuid::Builder::from_custom_bytes(id).into_uuid(),
        occurred_at: checkpoint.signed_at,
        actor_type: "system".to_string(),
        actor_id: None,
        actor_label: "Mandate".to_string(),
        action: STREAM_ACTION.to_string(),
        target_type: Some("audit_log".to_string()),
        target_id: Some(checkpoint.org_id.to_string()),
        target_label: None,
        outcome: "success".to_string(),
        ip: None,
        user_agent: None,
        request_id: None,
        details: serde_json::json!({
            "size": checkpoint.size,
            "root_hash": checkpoint.root_hash,
            "signed_at": checkpoint.signed_at.unix_timestamp(),
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
            "signed_text": note(checkpoint.org_id, checkpoint.size, &root, checkpoint.signed_at.unix_timestamp()),
        }),
        person_id: None,
        agent_id: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// The signed checkpoints of an organization with `after < size <= through`, smallest first,
/// at most `limit`.
pub async fn between(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<Checkpoint>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query_as!(
        CheckpointRow,
        "select size, root_hash, frontier, last_hash, signed_at, key_id, signature
         from audit_checkpoints where org_id = $1 and size > $2 and size <= $3 order by size limit $4",
        org_id,
        after,
        through,
        limit
    )
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|row| stored(org_id, row).map(|c| c.checkpoint)).collect()
}

/// The leaf hash of an event with chain hash `event_hash`.
pub fn leaf(event_hash: &[u8]) -> Hash {
    merkle::leaf_hash(event_hash)
}

/// A stored checkpoint with the state needed to extend it.
pub struct StoredCheckpoint {
    pub checkpoint: Checkpoint,
    pub frontier: Frontier,
    pub last_hash: Vec<u8>,
}

struct CheckpointRow {
    size: i64,
    root_hash: Vec<u8>,
    frontier: Vec<u8>,
    last_hash: Vec<u8>,
    signed_at: OffsetDateTime,
    key_id: String,
    signature: Vec<u8>,
}

fn stored(org_id: Uuid, row: CheckpointRow) -> Result<StoredCheckpoint, DomainError> {
    let frontier = Frontier::from_bytes(row.size as u64, &row.frontier)
        .map_err(|err| DomainError::Internal(format!("checkpoint {} of {org_id}: {err}", row.size)))?;
    Ok(StoredCheckpoint {
        checkpoint: Checkpoint {
            org_id,
            size: row.size,
            root_hash: hex::encode(&row.root_hash),
            signed_at: row.signed_at,
            key_id: row.key_id,
            signature: STANDARD.encode(&row.signature),
        },
        frontier,
        last_hash: row.last_hash,
    })
}

/// The newest checkpoint of an organization.
pub async fn latest(db: impl PgExecutor<'_>, org_id: Uuid) -> Result<Option<StoredCheckpoint>, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query_as!(
        CheckpointRow,
        "select size, root_hash, frontier, last_hash, signed_at, key_id, signature
         from audit_checkpoints where org_id = $1 order by size desc limit 1",
        org_id
    )
    .fetch_optional(db)
    .await?;
    row.map(|row| stored(org_id, row)).transpose()
}

/// The checkpoint of exactly `size` events.
pub async fn at_size(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    size: i64,
) -> Result<Option<StoredCheckpoint>, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query_as!(
        CheckpointRow,
        "select size, root_hash, frontier, last_hash, signed_at, key_id, signature
         from audit_checkpoints where org_id = $1 and size = $2",
        org_id,
        size
    )
    .fetch_optional(db)
    .await?;
    row.map(|row| stored(org_id, row)).transpose()
}

/// Where an organization's tree starts: the checkpoint at the retention boundary (its frontier
/// and last chain hash), or the empty tree.
pub struct Base {
    pub size: i64,
    pub frontier: Frontier,
    pub last_hash: Vec<u8>,
    /// The signed checkpoint at the boundary (none for the empty tree).
    pub checkpoint: Option<Checkpoint>,
}

impl Base {
    pub fn genesis() -> Base {
        Base { size: 0, frontier: Frontier::new(), last_hash: GENESIS_HASH.to_vec(), checkpoint: None }
    }
}

/// The organization's retention boundary and the base of its tree.
pub async fn base(conn: &mut PgConnection, org_id: Uuid) -> Result<Base, DomainError> {
    // language=PostgreSQL
    let pruned = sqlx::query_scalar!("select pruned_through from audit_chain_heads where org_id = $1", org_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(DomainError::NotFound)?;
    if pruned == 0 {
        return Ok(Base::genesis());
    }
    let at = at_size(&mut *conn, org_id, pruned).await?.ok_or_else(|| {
        DomainError::Internal(format!("the checkpoint at the retention boundary ({pruned}) is missing"))
    })?;
    Ok(Base { size: pruned, frontier: at.frontier, last_hash: at.last_hash, checkpoint: Some(at.checkpoint) })
}

/// Signs a checkpoint of every organization whose log grew since its last one. Returns the
/// organizations and sizes checkpointed. Several nodes may run this at once: each organization
/// is extended under an advisory lock, by whichever node gets it.
pub async fn run_once(pool: &PgPool, keys: &AuditKeys, now: OffsetDateTime) -> Result<Vec<(Uuid, i64)>, DomainError> {
    // language=PostgreSQL
    let due = sqlx::query_scalar!(
        r#"select h.org_id as "org_id!" from audit_chain_heads h
           where h.last_seq > coalesce((select max(size) from audit_checkpoints c where c.org_id = h.org_id), 0)"#
    )
    .fetch_all(pool)
    .await?;
    let mut done = Vec::new();
    for org_id in due {
        match checkpoint_org(pool, keys, org_id, now).await {
            Ok(Some(size)) => done.push((org_id, size)),
            Ok(None) => {}
            Err(err) => tracing::error!(%org_id, error = %err, "could not sign an audit checkpoint"),
        }
    }
    keys.save_high_water()?;
    Ok(done)
}

/// Extends an organization's newest checkpoint with the events after it and signs the result.
/// Refuses (an error, logged by the caller) when the newest checkpoint does not verify or the
/// new events do not chain onto it: a checkpoint must never vouch for altered history.
pub async fn checkpoint_org(
    pool: &PgPool,
    keys: &AuditKeys,
    org_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<i64>, DomainError> {
    let mut work = Work::system(pool, now).await?;
    // language=PostgreSQL
    let locked =
        sqlx::query_scalar!("select pg_try_advisory_xact_lock(hashtextextended($1::text, 7))", org_id.to_string())
            .fetch_one(work.conn())
            .await?;
    if locked != Some(true) {
        return Ok(None);
    }
    let newest = latest(pool, org_id).await?;
    if !keys.high_water.allows(org_id, newest.as_ref().map(|c| &c.checkpoint)) {
        return Err(DomainError::Internal(format!(
            "the stored checkpoints of organization {org_id} fall behind one this node saw signed: \
             they were deleted or replaced; refusing to sign (run `mandate audit verify` with a kept checkpoint)"
        )));
    }
    let (mut frontier, mut prev_hash) = match newest {
        Some(last) => {
            if !keys.verifies(&last.checkpoint) || hex::encode(last.frontier.root()) != last.checkpoint.root_hash {
                return Err(DomainError::Internal(format!(
                    "checkpoint {} of organization {org_id} does not verify; refusing to extend it",
                    last.checkpoint.size
                )));
            }
            (last.frontier, last.last_hash)
        }
        None => {
            let base = base(work.conn(), org_id).await?;
            (base.frontier, base.last_hash)
        }
    };
    let start = frontier.size() as i64;
    loop {
        let batch = events_after(pool, org_id, frontier.size() as i64, BATCH).await?;
        for event in &batch {
            let seq = frontier.size() as i64 + 1;
            if event.seq != seq
                || event.prev_hash != prev_hash
                || chain_hash(&prev_hash, &event.chain_fields(org_id))[..] != event.hash[..]
            {
                return Err(DomainError::Internal(format!(
                    "event {seq} of organization {org_id} does not verify; refusing to sign a checkpoint over it"
                )));
            }
            frontier.push(leaf(&event.hash));
            prev_hash = event.hash.clone();
        }
        if (batch.len() as i64) < BATCH {
            break;
        }
    }
    let size = frontier.size() as i64;
    if size == start {
        return Ok(None);
    }
    let root = frontier.root();
    // Whole seconds: the signed text carries Unix seconds.
    let signed_at = OffsetDateTime::from_unix_timestamp(now.unix_timestamp())
        .map_err(|err| DomainError::Internal(err.to_string()))?;
    let (key_id, signature) = keys.sign(&note(org_id, size, &root, signed_at.unix_timestamp()))?;
    // language=PostgreSQL
    sqlx::query!(
        "insert into audit_checkpoints (org_id, size, root_hash, frontier, last_hash, signed_at, key_id, signature)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
        org_id,
        size,
        root.as_slice(),
        frontier.to_bytes(),
        prev_hash,
        signed_at,
        key_id,
        signature
    )
    .execute(work.conn())
    .await?;
    work.commit().await?;
    keys.high_water.raise(org_id, size, &root);
    Ok(Some(size))
}

/// Runs `run_once` every `interval` until the process ends.
pub fn spawn(pool: PgPool, keys: std::sync::Arc<AuditKeys>, interval: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = run_once(&pool, &keys, OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %err, "audit checkpoint pass failed");
            }
        }
    });
}

/// Leaf hashes of the events after the base up to `size`, checked to be contiguous.
async fn leaves(pool: &PgPool, org_id: Uuid, base: &Base, size: i64) -> Result<Vec<Hash>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select seq, hash from audit_events where org_id = $1 and seq > $2 and seq <= $3 order by seq",
        org_id,
        base.size,
        size
    )
    .fetch_all(pool)
    .await?;
    if rows.len() as i64 != size - base.size || rows.iter().enumerate().any(|(i, r)| r.seq != base.size + 1 + i as i64)
    {
        return Err(DomainError::Internal(format!(
            "events of organization {org_id} are missing below {size}; run `mandate audit verify`"
        )));
    }
    Ok(rows.iter().map(|r| leaf(&r.hash)).collect())
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

fn proof_error(err: merkle::MerkleError) -> DomainError {
    match err {
        merkle::MerkleError::OutOfRange => DomainError::invalid(err.to_string()),
        merkle::MerkleError::Pruned => DomainError::NotAllowed(err.to_string()),
        merkle::MerkleError::BadFrontier => DomainError::Internal(err.to_string()),
    }
}

/// The checkpoint to prove against: the one of `size`, or the newest.
async fn anchor(pool: &PgPool, org_id: Uuid, size: Option<i64>) -> Result<Checkpoint, DomainError> {
    let found = match size {
        Some(size) => at_size(pool, org_id, size).await?,
        None => latest(pool, org_id).await?,
    };
    found.map(|c| c.checkpoint).ok_or_else(|| match size {
        Some(size) => DomainError::invalid(format!("there is no checkpoint of size {size}")),
        None => DomainError::Conflict("no checkpoint has been signed yet; one follows within seconds".into()),
    })
}

/// RFC 9162 inclusion proof of event `seq` in the tree of a signed checkpoint (`size`, or the
/// newest).
pub async fn inclusion(
    pool: &PgPool,
    org_id: Uuid,
    seq: i64,
    size: Option<i64>,
) -> Result<InclusionProof, DomainError> {
    let checkpoint = anchor(pool, org_id, size).await?;
    if seq < 1 || seq > checkpoint.size {
        return Err(DomainError::invalid(format!(
            "event {seq} is not covered by the checkpoint of size {}; a newer checkpoint follows within seconds",
            checkpoint.size
        )));
    }
    let base = base(&mut *pool.acquire().await?, org_id).await?;
    if seq <= base.size {
        return Err(DomainError::NotAllowed(format!(
            "event {seq} was removed by retention (events up to {} are pruned)",
            base.size
        )));
    }
    let leaves = leaves(pool, org_id, &base, checkpoint.size).await?;
    let tree = Tree::new(&base.frontier, &leaves);
    let index = (seq - 1) as u64;
    let proof = tree.inclusion_proof(index, checkpoint.size as u64).map_err(proof_error)?;
    let leaf_hash = leaves[(seq - 1 - base.size) as usize];
    // language=PostgreSQL
    let event_hash = sqlx::query_scalar!("select hash from audit_events where org_id = $1 and seq = $2", org_id, seq)
        .fetch_one(pool)
        .await?;
    Ok(InclusionProof {
        seq,
        leaf_index: index as i64,
        event_hash: hex::encode(event_hash),
        leaf_hash: hex::encode(leaf_hash),
        tree_size: checkpoint.size,
        audit_path: hexes(&proof),
        checkpoint,
    })
}

/// RFC 9162 consistency proof between two signed checkpoints.
pub async fn consistency(
    pool: &PgPool,
    org_id: Uuid,
    from: i64,
    to: Option<i64>,
) -> Result<ConsistencyProof, DomainError> {
    let new = anchor(pool, org_id, to).await?;
    let old = anchor(pool, org_id, Some(from)).await?;
    if old.size > new.size {
        return Err(DomainError::invalid(format!("`from` ({}) must not be larger than `to` ({})", old.size, new.size)));
    }
    let base = base(&mut *pool.acquire().await?, org_id).await?;
    let leaves = leaves(pool, org_id, &base, new.size).await?;
    let tree = Tree::new(&base.frontier, &leaves);
    let proof = tree.consistency_proof(old.size as u64, new.size as u64).map_err(proof_error)?;
    Ok(ConsistencyProof { from: old, to: new, proof: hexes(&proof) })
}

/// Checks an inclusion proof on its own terms (what an auditor does with the JSON).
pub fn inclusion_verifies(proof: &InclusionProof, keys: &AuditKeys) -> bool {
    let decode = |s: &str| -> Option<Hash> { hex::decode(s).ok()?.try_into().ok() };
    let (Some(event_hash), Some(root)) = (hex::decode(&proof.event_hash).ok(), decode(&proof.checkpoint.root_hash))
    else {
        return false;
    };
    let Some(path) = proof.audit_path.iter().map(|h| decode(h)).collect::<Option<Vec<Hash>>>() else { return false };
    keys.verifies(&proof.checkpoint)
        && proof.tree_size == proof.checkpoint.size
        && proof.leaf_index == proof.seq - 1
        && merkle::verify_inclusion(&leaf(&event_hash), proof.leaf_index as u64, proof.tree_size as u64, &path, &root)
}

/// Checks a consistency proof and both checkpoints' signatures.
pub fn consistency_verifies(proof: &ConsistencyProof, keys: &AuditKeys) -> bool {
    let decode = |s: &str| -> Option<Hash> { hex::decode(s).ok()?.try_into().ok() };
    let (Some(old_root), Some(new_root)) = (decode(&proof.from.root_hash), decode(&proof.to.root_hash)) else {
        return false;
    };
    let Some(path) = proof.proof.iter().map(|h| decode(h)).collect::<Option<Vec<Hash>>>() else { return false };
    keys.verifies(&proof.from)
        && keys.verifies(&proof.to)
        && proof.from.org_id == proof.to.org_id
        && merkle::verify_consistency(proof.from.size as u64, proof.to.size as u64, &old_root, &new_root, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_note_names_every_field() {
        let org = Uuid::nil();
        let text = note(org, 3, &[0xab; 32], 1_700_000_000);
        assert_eq!(
            text,
            format!("mandate audit checkpoint v1\norg {org}\nsize 3\nroot {}\ntime 1700000000\n", "ab".repeat(32))
        );
    }

    #[test]
    fn public_keys_parse_raw_and_pem_and_refuse_others() {
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let raw = STANDARD.encode(key.as_bytes());
        assert_eq!(parse_public_key(&raw).unwrap(), key);
        assert_eq!(parse_public_key(&pem(&key)).unwrap(), key);
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key(&STANDARD.encode([1u8; 31])).is_err());
    }

    #[test]
    fn signatures_cover_size_root_time_and_org() {
        let signing = SigningKey::from_bytes(&[5; 32]);
        let id = key_id(&signing.verifying_key());
        let keys = AuditKeys {
            signer: Some((id.clone(), signing.clone())),
            trusted: HashMap::from([(id.clone(), signing.verifying_key())]),
            high_water: Default::default(),
        };
        let org_id = Uuid::new_v4();
        let signed_at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let root = [3u8; 32];
        let (key_id, signature) = keys.sign(&note(org_id, 10, &root, signed_at.unix_timestamp())).unwrap();
        let checkpoint = Checkpoint {
            org_id,
            size: 10,
            root_hash: hex::encode(root),
            signed_at,
            key_id,
            signature: STANDARD.encode(signature),
        };
        assert!(keys.verifies(&checkpoint));
        for tampered in [
            Checkpoint { size: 11, ..checkpoint.clone() },
            Checkpoint { root_hash: hex::encode([4u8; 32]), ..checkpoint.clone() },
            Checkpoint { org_id: Uuid::new_v4(), ..checkpoint.clone() },
            Checkpoint { signed_at: signed_at + time::Duration::seconds(1), ..checkpoint.clone() },
            Checkpoint { key_id: "unknown".into(), ..checkpoint.clone() },
        ] {
            assert!(!keys.verifies(&tampered), "{tampered:?}");
        }
        let stranger_key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let stranger = AuditKeys::from_public_keys([STANDARD.encode(stranger_key.as_bytes()).as_str()]).unwrap();
        assert!(!stranger.verifies(&checkpoint), "another key does not verify it");
    }
}
