//! Durable record of issued tokens. Every minted token must be on record (with its audit event)
//! before it is handed out; `GroupCommit` writes whatever has queued in one transaction (one
//! multi-row insert for tokens, one per organization for audit events).

use crate::server::domain::actor::RequestMeta;
use crate::server::domain::audit::{self, NewEvent};
use crate::server::domain::group_commit::GroupCommit;
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use sqlx::PgPool;
use time::OffsetDateTime;
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

/// A token, its audit event and the request it came from.
type Entry = (TokenRecord, NewEvent, RequestMeta);

#[derive(Clone)]
pub struct TokenLog {
    commit: GroupCommit<Entry, ()>,
}

impl TokenLog {
    /// Starts the writer task.
    pub fn start(pool: PgPool) -> TokenLog {
        TokenLog { commit: GroupCommit::start("token log", pool, MAX_BATCH, write_batch) }
    }

    /// Records a token and its audit event durably; returns once committed.
    pub async fn append(&self, token: TokenRecord, event: NewEvent, meta: RequestMeta) -> Result<(), DomainError> {
        self.commit.submit((token, event, meta)).await
    }
}

async fn write_batch(pool: PgPool, batch: Vec<Entry>) -> Result<Vec<()>, DomainError> {
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
    for (t, _, _) in &batch {
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
    let mut work = Work::system(&pool, OffsetDateTime::now_utc()).await?;
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
    .execute(work.conn())
    .await?;
    let mut active_agents: Vec<Uuid> =
        batch.iter().flat_map(|(t, _, _)| std::iter::once(t.agent_id).chain(t.delegates.iter().copied())).collect();
    active_agents.sort();
    active_agents.dedup();
    // language=PostgreSQL
    sqlx::query!(
        "update agents set last_active_at = $2 where id = any($1) and (last_active_at is null or last_active_at < $2)",
        &active_agents,
        now
    )
    .execute(work.conn())
    .await?;
    let count = batch.len();
    let events = batch.into_iter().map(|(_, event, meta)| (event, meta)).collect();
    audit::record_many(work.conn(), events, now).await?;
    work.commit().await?;
    Ok(vec![(); count])
}
