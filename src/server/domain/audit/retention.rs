//! Retention: events older than the organization's retention period (365 days by default) are
//! removed, but only up to a signed checkpoint, never past an event a log stream has not
//! delivered yet, and always with an audit event saying what was removed. The checkpoint at the
//! boundary stays: its last chain hash anchors the chain and its frontier the Merkle tree, so
//! what remains verifies exactly as before.

use super::{record, NewEvent};
use crate::server::domain::actor::{Actor, RequestMeta};
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use serde_json::json;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// What one retention pass removed from one organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub org_id: Uuid,
    pub pruned_through: i64,
    pub events_removed: i64,
}

/// Applies retention to every organization; returns what was removed.
pub async fn run_once(pool: &PgPool, now: OffsetDateTime) -> Result<Vec<Applied>, DomainError> {
    // language=PostgreSQL
    let orgs = sqlx::query_scalar!("select org_id from audit_chain_heads order by org_id").fetch_all(pool).await?;
    let mut applied = Vec::new();
    for org_id in orgs {
        if let Some(done) = apply(pool, org_id, now).await? {
            applied.push(done);
        }
    }
    Ok(applied)
}

/// Moves an organization's retention boundary to the newest checkpoint whose events are all
/// older than the retention period (and delivered to every enabled stream), deleting them.
pub async fn apply(pool: &PgPool, org_id: Uuid, now: OffsetDateTime) -> Result<Option<Applied>, DomainError> {
    // language=PostgreSQL
    let org = sqlx::query!(
        "select o.audit_retention_days, h.pruned_through
         from organizations o join audit_chain_heads h on h.org_id = o.id where o.id = $1",
        org_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    let cutoff = now - Duration::days(org.audit_retention_days as i64);
    // The newest checkpoint below the first event that must stay (too recent, or undelivered).
    // language=PostgreSQL
    let boundary = sqlx::query_scalar!(
        r#"select max(c.size) as "size" from audit_checkpoints c
           where c.org_id = $1 and c.size > $2
             and c.size < coalesce((select min(seq) from audit_events
                                    where org_id = $1 and seq > $2 and occurred_at >= $3), 9223372036854775807)
             and c.size <= coalesce((select min(cursor_seq) from audit_streams where org_id = $1 and enabled),
                                    9223372036854775807)"#,
        org_id,
        org.pruned_through,
        cutoff
    )
    .fetch_one(pool)
    .await?;
    let Some(boundary) = boundary else { return Ok(None) };
    let housekeeping = RequestMeta::default();
    let mut work = Work::begin(pool, org_id, Actor::Operator, &housekeeping, now).await?;
    // The event first: it locks the chain head, so no append interleaves with the pruning.
    let event = NewEvent::new(org_id, Actor::Operator, "audit.retention_applied").details(json!({
        "retention_days": org.audit_retention_days,
        "removed_before": cutoff.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "pruned_through": boundary,
        "events_removed": boundary - org.pruned_through,
        "anchor": format!("checkpoint {boundary}"),
    }));
    record(work.conn(), event, &RequestMeta::default(), now).await?;
    // Under the head lock now: another node may have pruned since we looked.
    // language=PostgreSQL
    let current = sqlx::query_scalar!("select pruned_through from audit_chain_heads where org_id = $1", org_id)
        .fetch_one(work.conn())
        .await?;
    if current != org.pruned_through {
        return Ok(None);
    }
    // language=PostgreSQL
    sqlx::query!("update audit_chain_heads set pruned_through = $2 where org_id = $1", org_id, boundary)
        .execute(work.conn())
        .await?;
    // language=PostgreSQL
    let removed = sqlx::query!("delete from audit_events where org_id = $1 and seq <= $2", org_id, boundary)
        .execute(work.conn())
        .await?
        .rows_affected() as i64;
    work.commit().await?;
    tracing::info!(%org_id, pruned_through = boundary, removed, "audit retention applied");
    Ok(Some(Applied { org_id, pruned_through: boundary, events_removed: removed }))
}

/// Sets an organization's retention period.
/// Permission: retention (owners; keys with `retention:write`).
pub async fn set_days(
    pool: &PgPool,
    caller: crate::server::domain::Caller<'_>,
    days: i32,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    caller.require(crate::model::Permission::ManageRetention)?;
    if !(30..=36500).contains(&days) {
        return Err(DomainError::invalid("retention must be between 30 and 36500 days"));
    }
    let org_id = caller.org_id();
    let mut work = Work::begin(pool, org_id, caller.actor(), meta, now).await?;
    // language=PostgreSQL
    let previous =
        sqlx::query_scalar!("select audit_retention_days from organizations where id = $1 for update", org_id)
            .fetch_one(work.conn())
            .await?;
    // language=PostgreSQL
    sqlx::query!("update organizations set audit_retention_days = $2 where id = $1", org_id, days)
        .execute(work.conn())
        .await?;
    let event = NewEvent::new(org_id, caller.actor(), "audit.retention_changed")
        .details(json!({ "from_days": previous, "to_days": days }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}
