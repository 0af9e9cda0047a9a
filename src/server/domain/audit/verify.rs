//! Verification of an organization's audit log: the hash chain event by event, the Merkle tree
//! of every signed checkpoint, and every checkpoint's signature. The same `Verifier` runs over
//! the database (`verify`, `mandate audit verify`) and over an exported file with only the
//! public key (`verify_export`), so an auditor's offline check is exactly the server's check.
//!
//! What each check catches: an altered, deleted or reordered event breaks the chain at that
//! event; a tail cut off (with the head moved back) or history rewritten with a recomputed chain
//! no longer matches the signed checkpoints, and a checkpoint kept outside (`--checkpoint`)
//! catches it even when the stored checkpoints were deleted too.

use super::checkpoints::{self, AuditKeys, Base};
use super::{canonical_json, chain_hash, events_after, ChainFields, StoredEvent};
use crate::model::audit::{AuditEventView, ChainStatus, Checkpoint};
use crate::server::domain::audit::merkle::Frontier;
use crate::server::domain::DomainError;
use sqlx::PgPool;
use std::collections::VecDeque;
use uuid::Uuid;

/// A break: the first sequence number that does not verify, and why.
type Broken = (i64, String);

/// Walks events in order and checks each against its predecessor and the signed checkpoints.
pub struct Verifier {
    org_id: Uuid,
    next_seq: i64,
    prev_hash: Vec<u8>,
    tree: Frontier,
    /// Signed checkpoints still ahead, smallest first.
    pending: VecDeque<Checkpoint>,
    /// The size of the last checkpoint matched (a rewrite lies after it).
    matched_size: i64,
    checkpoints: i64,
    signed_size: i64,
    base_size: i64,
    /// Whether an event recorded the pruning that produced the base (required when pruned).
    pruning_recorded: bool,
}

impl Verifier {
    /// Starts at `base` (genesis, or the retention boundary) with the checkpoints to check.
    /// Every checkpoint's signature is checked first.
    pub fn new(org_id: Uuid, keys: &AuditKeys, base: Base, checkpoints: Vec<Checkpoint>) -> Result<Self, Broken> {
        if let Some(boundary) = &base.checkpoint {
            if !keys.verifies(boundary) || hex::encode(base.frontier.root()) != boundary.root_hash {
                return Err((
                    base.size,
                    format!("the checkpoint at the retention boundary ({}) does not verify", base.size),
                ));
            }
        }
        let mut pending: Vec<Checkpoint> = checkpoints.into_iter().filter(|c| c.size > base.size).collect();
        pending.sort_by_key(|c| c.size);
        for checkpoint in &pending {
            if checkpoint.org_id != org_id {
                return Err((
                    checkpoint.size,
                    format!("checkpoint {} belongs to another organization", checkpoint.size),
                ));
            }
            if !keys.verifies(checkpoint) {
                return Err((
                    checkpoint.size,
                    format!(
                        "checkpoint {} does not carry a valid signature by a trusted key (key {})",
                        checkpoint.size, checkpoint.key_id
                    ),
                ));
            }
        }
        let signed_size = pending.last().map(|c| c.size).unwrap_or(base.size);
        Ok(Verifier {
            org_id,
            next_seq: base.size + 1,
            prev_hash: base.last_hash,
            tree: base.frontier,
            pending: pending.into(),
            matched_size: base.size,
            checkpoints: 0,
            signed_size,
            base_size: base.size,
            pruning_recorded: base.size == 0,
        })
    }

    /// Checks the next event, and that its filter columns (`subjects`: person, agent) say what
    /// its hashed fields say.
    pub fn push(
        &mut self,
        fields: &ChainFields<'_>,
        prev_hash: &[u8],
        hash: &[u8],
        subjects: (Option<Uuid>, Option<Uuid>),
    ) -> Result<(), Broken> {
        let seq = self.next_seq;
        if fields.seq != seq {
            return Err((seq, format!("event {seq} is missing (next stored event is {})", fields.seq)));
        }
        if fields.org_id != self.org_id {
            return Err((seq, "the event belongs to another organization".into()));
        }
        if prev_hash != self.prev_hash {
            return Err((seq, "its link to the previous event does not match".into()));
        }
        if chain_hash(&self.prev_hash, fields)[..] != hash[..] {
            return Err((seq, "its contents do not match its hash (the event was altered)".into()));
        }
        if subjects != fields.subjects() {
            return Err((
                seq,
                "its person or agent columns do not match its contents (the event was re-labelled)".into(),
            ));
        }
        if fields.action == "audit.retention_applied"
            && serde_json::from_str::<serde_json::Value>(fields.details)
                .is_ok_and(|d| d["pruned_through"].as_i64() == Some(self.base_size))
        {
            self.pruning_recorded = true;
        }
        self.tree.push(checkpoints::leaf(hash));
        self.prev_hash = hash.to_vec();
        self.next_seq += 1;
        while let Some(checkpoint) = self.pending.front() {
            if checkpoint.size != seq {
                break;
            }
            if hex::encode(self.tree.root()) != checkpoint.root_hash {
                return Err((
                    self.matched_size + 1,
                    format!(
                        "events {}..={seq} do not match signed checkpoint {seq} (its Merkle root differs): \
                         history after event {} was rewritten",
                        self.matched_size + 1,
                        self.matched_size
                    ),
                ));
            }
            self.matched_size = seq;
            self.checkpoints += 1;
            self.pending.pop_front();
        }
        Ok(())
    }

    /// Ends the walk: every checkpoint must have been reached, and the head (when known) must
    /// match the last event.
    pub fn finish(self, head: Option<(i64, &[u8])>) -> ChainStatus {
        let last = self.next_seq - 1;
        if !self.pruning_recorded {
            return ChainStatus::Broken {
                first_bad_seq: self.base_size,
                reason: format!(
                    "events up to {} are gone, but no audit.retention_applied event records that retention removed them",
                    self.base_size
                ),
            };
        }
        if let Some(checkpoint) = self.pending.front() {
            return ChainStatus::Broken {
                first_bad_seq: last + 1,
                reason: format!(
                    "signed checkpoint {} vouches for {} events but the log ends at event {last}: events were removed",
                    checkpoint.size, checkpoint.size
                ),
            };
        }
        if let Some((last_seq, last_hash)) = head {
            if last_seq != last || last_hash != self.prev_hash.as_slice() {
                return ChainStatus::Broken {
                    first_bad_seq: last + 1,
                    reason: format!(
                        "the chain head records {last_seq} events but only {} are intact in the log",
                        last - self.base_size
                    ),
                };
            }
        }
        ChainStatus::Intact {
            events: last - self.base_size,
            checkpoints: self.checkpoints,
            signed_size: self.signed_size,
            pruned_through: self.base_size,
        }
    }
}

fn broken((first_bad_seq, reason): Broken) -> ChainStatus {
    ChainStatus::Broken { first_bad_seq, reason }
}

/// Verifies an organization's log in the database against its stored checkpoints.
pub async fn verify(pool: &PgPool, keys: &AuditKeys, org_id: Uuid) -> Result<ChainStatus, DomainError> {
    verify_with(pool, keys, org_id, None).await
}

/// As `verify`, also checking a checkpoint kept outside the database (an earlier download of
/// `/api/v1/audit/checkpoint`): catches truncation and rewriting even if every stored
/// checkpoint was deleted or replaced.
pub async fn verify_with(
    pool: &PgPool,
    keys: &AuditKeys,
    org_id: Uuid,
    external: Option<&Checkpoint>,
) -> Result<ChainStatus, DomainError> {
    const BATCH: i64 = 5_000;
    // One snapshot: events appended (or pruned) while we walk must not look like tampering.
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    sqlx::query!("set transaction isolation level repeatable read, read only").execute(&mut *tx).await?;
    // language=PostgreSQL
    let head = sqlx::query!("select last_seq, last_hash from audit_chain_heads where org_id = $1", org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DomainError::NotFound)?;
    let base = checkpoints::base(&mut tx, org_id).await?;
    let mut signed: Vec<Checkpoint> = checkpoints::between(&mut *tx, org_id, base.size - 1, i64::MAX, i64::MAX).await?;
    if let Some(external) = external {
        if external.size < base.size {
            return Ok(ChainStatus::Broken {
                first_bad_seq: external.size.max(1),
                reason: format!(
                    "the kept checkpoint covers {} events, which are gone: retention removed events up to {}. \
                     If that pruning is legitimate (see the audit.retention_applied event), keep a newer checkpoint",
                    external.size, base.size
                ),
            });
        }
        // A stored checkpoint of the same size must be the same statement.
        signed.retain(|c| c.size != external.size || c == external);
        if !signed.contains(external) {
            signed.push(external.clone());
        }
    }
    let mut verifier = match Verifier::new(org_id, keys, base, signed) {
        Ok(verifier) => verifier,
        Err(err) => return Ok(broken(err)),
    };
    let mut after = verifier.next_seq - 1;
    loop {
        let batch = events_after(&mut *tx, org_id, after, BATCH).await?;
        for event in &batch {
            let subjects = (event.person_id, event.agent_id);
            if let Err(err) = verifier.push(&event.chain_fields(org_id), &event.prev_hash, &event.hash, subjects) {
                return Ok(broken(err));
            }
        }
        match batch.last() {
            Some(last) if batch.len() as i64 == BATCH => after = last.seq,
            _ => break,
        }
    }
    Ok(verifier.finish(Some((head.last_seq, &head.last_hash))))
}

/// Verifies an NDJSON export (one `AuditEventView` per line, in sequence order from the first
/// event) against a signed checkpoint, with only public keys: no database, no server. Only the
/// events the checkpoint covers are verified; later lines are ignored (a newer checkpoint
/// covers them).
pub fn verify_export(
    lines: impl Iterator<Item = std::io::Result<String>>,
    checkpoint: &Checkpoint,
    keys: &AuditKeys,
) -> Result<ChainStatus, DomainError> {
    let mut verifier = match Verifier::new(checkpoint.org_id, keys, Base::genesis(), vec![checkpoint.clone()]) {
        Ok(verifier) => verifier,
        Err(err) => return Ok(broken(err)),
    };
    for (number, line) in lines.enumerate() {
        if verifier.next_seq > checkpoint.size {
            break;
        }
        let line = line.map_err(|err| DomainError::invalid(format!("could not read the export: {err}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: AuditEventView = serde_json::from_str(&line)
            .map_err(|err| DomainError::invalid(format!("line {} is not an exported event: {err}", number + 1)))?;
        let stored = stored_from_view(&event)
            .ok_or_else(|| DomainError::invalid(format!("line {} has a malformed hash", number + 1)))?;
        let subjects = (stored.person_id, stored.agent_id);
        if let Err(err) =
            verifier.push(&stored.chain_fields(checkpoint.org_id), &stored.prev_hash, &stored.hash, subjects)
        {
            return Ok(broken(err));
        }
    }
    Ok(verifier.finish(None))
}

/// An exported event back in stored form (details re-canonicalised: exactly the hashed bytes).
fn stored_from_view(event: &AuditEventView) -> Option<StoredEvent> {
    Some(StoredEvent {
        seq: event.seq,
        id: event.id,
        occurred_at: event.occurred_at,
        actor_type: event.actor_type.clone(),
        actor_id: event.actor_id.clone(),
        actor_label: event.actor_label.clone(),
        action: event.action.clone(),
        target_type: event.target_type.clone(),
        target_id: event.target_id.clone(),
        target_label: event.target_label.clone(),
        outcome: event.outcome.clone(),
        ip: event.ip.clone(),
        user_agent: event.user_agent.clone(),
        request_id: event.request_id.clone(),
        details: canonical_json(&event.details),
        prev_hash: hex::decode(&event.prev_hash).ok()?,
        hash: hex::decode(&event.hash).ok()?,
        person_id: event.person_id,
        agent_id: event.agent_id,
    })
}
