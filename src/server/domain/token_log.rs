//! Durable record of issued tokens, with group commit. Every minted token must be on record
//! (with its audit event) before it is handed out, but one transaction per token would cap
//! throughput at the disk's fsync rate. Requests queue their record here; one writer takes
//! whatever has queued, writes it in one transaction (one multi-row insert for tokens, one per
//! organization for audit events), commits, and then answers every waiting request.

use super::actor::RequestMeta;
use super::audit::{self, NewEvent};
use super::DomainError;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most records per transaction.
const MAX_BATCH: usize = 512;

/// A token as it is kept on record.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub org_id: Uuid,
    pub jti: Uuid,
    /// The agent whose mandate the token carries (the root of a delegation chain).
    pub agent_id: Uuid,
    pub owner_id: Uuid,
    /// Sub-agents of a delegated token, the holder first.
    pub delegates: Vec<Uuid>,
    pub parent_jti: Option<Uuid>,
    pub scopes: Vec<String>,
    pub approval_ids: Vec<Uuid>,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

struct Entry {
    token: TokenRecord,
    event: NewEvent,
    meta: RequestMeta,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct TokenLog {
    sender: mpsc::Sender<Entry>,
}

impl TokenLog {
    /// Starts the writer task.
    pub fn start(pool: PgPool) -> TokenLog {
        let (sender, mut receiver) = mpsc::channel::<Entry>(MAX_BATCH * 8);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(entry) => batch.push(entry),
                        Err(_) => break,
                    }
                }
                let result = write_batch(&pool, &batch).await.map_err(|err| {
                    tracing::error!(error = %err, records = batch.len(), "could not record issued tokens");
                    err.to_string()
                });
                for entry in batch {
                    let _ = entry.done.send(result.clone());
                }
            }
        });
        TokenLog { sender }
    }

    /// Records a token and its audit event durably; returns once committed.
    pub async fn append(&self, token: TokenRecord, event: NewEvent, meta: RequestMeta) -> Result<(), DomainError> {
        let (done, wait) = oneshot::channel();
        self.sender
            .send(Entry { token, event, meta, done })
            .await
            .map_err(|_| DomainError::Internal("the token log has stopped".into()))?;
        wait.await
            .map_err(|_| DomainError::Internal("the token log has stopped".into()))?
            .map_err(|err| DomainError::Internal(format!("recording the token failed: {err}")))
    }
}

async fn write_batch(pool: &PgPool, batch: &[Entry]) -> Result<(), DomainError> {
    let now = OffsetDateTime::now_utc();
    let mut org_ids = Vec::with_capacity(batch.len());
    let mut jtis = Vec::with_capacity(batch.len());
    let mut agent_ids = Vec::with_capacity(batch.len());
    let mut owner_ids = Vec::with_capacity(batch.len());
    let mut delegates = Vec::with_capacity(batch.len());
    let mut parents = Vec::with_capacity(batch.len());
    let mut scopes = Vec::with_capacity(batch.len());
    let mut approvals = Vec::with_capacity(batch.len());
    let mut issued = Vec::with_capacity(batch.len());
    let mut expires = Vec::with_capacity(batch.len());
    for Entry { token: t, .. } in batch {
        org_ids.push(t.org_id);
        jtis.push(t.jti);
        agent_ids.push(t.agent_id);
        owner_ids.push(t.owner_id);
        // Arrays inside arrays must be rectangular in PostgreSQL, so the lists travel as text.
        delegates.push(t.delegates.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","));
        parents.push(t.parent_jti);
        scopes.push(t.scopes.join(" "));
        approvals.push(t.approval_ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","));
        issued.push(t.issued_at);
        expires.push(t.expires_at);
    }
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    sqlx::query!(
        "insert into access_tokens (org_id, jti, agent_id, owner_id, delegates, parent_jti, scopes, approval_ids, issued_at, expires_at)
         select o, j, a, w, string_to_array(d, ',')::uuid[], p, string_to_array(s, ' '), string_to_array(ap, ',')::uuid[], i, e
         from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[], $7::text[], $8::text[],
                     $9::timestamptz[], $10::timestamptz[]) as t(o, j, a, w, d, p, s, ap, i, e)",
        &org_ids,
        &jtis,
        &agent_ids,
        &owner_ids,
        &delegates,
        &parents as &[Option<Uuid>],
        &scopes,
        &approvals,
        &issued,
        &expires
    )
    .execute(&mut *tx)
    .await?;
    let mut active_agents: Vec<Uuid> =
        batch.iter().flat_map(|e| std::iter::once(e.token.agent_id).chain(e.token.delegates.iter().copied())).collect();
    active_agents.sort();
    active_agents.dedup();
    // language=PostgreSQL
    sqlx::query!(
        "update agents set last_active_at = $2 where id = any($1) and (last_active_at is null or last_active_at < $2)",
        &active_agents,
        now
    )
    .execute(&mut *tx)
    .await?;
    let events = batch.iter().map(|e| (e.event.clone(), e.meta.clone())).collect();
    audit::record_many(&mut tx, events, now).await?;
    tx.commit().await?;
    Ok(())
}
