//! Refused sign-ins by someone not yet authenticated, summarised per window: anyone can cause
//! them (a password guesser, junk posted to a SAML ACS), and the audit trail is append-only, so
//! one event each would let a stranger grow it without bound. The first failure of a window for
//! the same action, target and reason is recorded in full; later ones in the window are only
//! counted (with a sample of the client addresses), and a summary event with the count closes
//! the window: at the next such failure after it, or when `flush_expired` finds it.

use crate::server::domain::actor::{Actor, RequestMeta};
use crate::server::domain::audit::{self, NewEvent, Target};
use crate::server::domain::{DomainError, Work};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use std::borrow::Cow;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long one window lasts from its first failure.
pub const WINDOW: Duration = Duration::minutes(5);
/// Client addresses kept per window (a sample for the summary, not an inventory).
const MAX_ADDRESSES: i32 = 20;

/// The request details of a summary: it stands for many requests (their addresses are listed).
static NO_REQUEST: RequestMeta = RequestMeta { ip: None, user_agent: None, request_id: None };

/// What identifies a stream of repeated failures: action, target and reason.
fn window_key(event: &NewEvent) -> String {
    let (kind, id, label) = match &event.target {
        Some(target) => (target.kind.as_ref(), target.id.as_str(), target.label.as_str()),
        None => ("", "", ""),
    };
    let reason = event.details.get("reason").and_then(Value::as_str).unwrap_or("");
    format!("{}|{kind}:{id}:{label}|{reason}", event.action)
}

/// Records a refused sign-in, in full if it opens a window, or by counting it. Returns whether
/// the event itself was recorded.
pub async fn record(
    pool: &PgPool,
    event: NewEvent,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<bool, DomainError> {
    let key = window_key(&event);
    let mut work = Work::begin(pool, event.org_id, Actor::Anonymous, meta, now).await?;
    // One failure of a window at a time: the count and the choice to record are exact.
    // language=PostgreSQL
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended($1::text || $2, 11))", event.org_id.to_string(), key)
        .execute(work.conn())
        .await?;
    // language=PostgreSQL
    let counted = sqlx::query_scalar!(
        "update audit_failure_windows set repeated = repeated + 1, last_at = $3,
                addresses = case when $4::text is null or $4 = any(addresses) or cardinality(addresses) >= $5
                                 then addresses else addresses || $4 end
         where org_id = $1 and key = $2 and window_started_at > $6
         returning repeated",
        event.org_id,
        key,
        now,
        meta.ip,
        MAX_ADDRESSES,
        now - WINDOW
    )
    .fetch_optional(work.conn())
    .await?;
    if counted.is_some() {
        work.commit().await?;
        return Ok(false);
    }
    if let Some(summary) = close_window(work.conn(), event.org_id, &key).await? {
        // The summary is of earlier requests, not of this one.
        audit::record(work.conn(), summary, &NO_REQUEST, now).await?;
    }
    let target = event.target.as_ref();
    // language=PostgreSQL
    sqlx::query!(
        "insert into audit_failure_windows (org_id, key, window_started_at, last_at, addresses, action, target_type,
                                            target_id, target_label, details)
         values ($1, $2, $3, $3, case when $4::text is null then '{}'::text[] else array[$4] end, $5, $6, $7, $8, $9)",
        event.org_id,
        key,
        now,
        meta.ip,
        event.action.as_ref(),
        target.map(|t| t.kind.as_ref()),
        target.map(|t| t.id.as_str()),
        target.map(|t| t.label.as_str()),
        event.details
    )
    .execute(work.conn())
    .await?;
    work.record(event).await?;
    work.commit().await?;
    Ok(true)
}

/// Removes a window; returns its summary event when failures were counted in it.
async fn close_window(conn: &mut PgConnection, org_id: Uuid, key: &str) -> Result<Option<NewEvent>, DomainError> {
    // language=PostgreSQL
    let Some(window) = sqlx::query!(
        "delete from audit_failure_windows where org_id = $1 and key = $2
         returning window_started_at, last_at, repeated, addresses, action, target_type, target_id, target_label, details",
        org_id,
        key
    )
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    if window.repeated == 0 {
        return Ok(None);
    }
    let mut details = window.details;
    if let Some(fields) = details.as_object_mut() {
        fields.insert(
            "repeated".into(),
            json!({
                "count": window.repeated,
                "window_started_at": window.window_started_at.unix_timestamp(),
                "last_at": window.last_at.unix_timestamp(),
                "addresses": window.addresses,
            }),
        );
    }
    let mut summary = NewEvent::new(org_id, Actor::Anonymous, window.action).failed().details(details);
    if let (Some(kind), Some(id)) = (window.target_type, window.target_id) {
        summary.target = Some(Target { kind: Cow::Owned(kind), id, label: window.target_label.unwrap_or_default() });
    }
    Ok(Some(summary))
}

/// Closes every window that has ended, recording the summaries of those that counted
/// failures. Returns the number of summaries recorded. Several nodes may run it at once.
pub async fn flush_expired(pool: &PgPool, now: OffsetDateTime) -> Result<usize, DomainError> {
    // language=PostgreSQL
    let expired =
        sqlx::query!("select org_id, key from audit_failure_windows where window_started_at <= $1", now - WINDOW)
            .fetch_all(pool)
            .await?;
    let mut summaries = 0;
    for window in expired {
        let mut work = Work::begin(pool, window.org_id, Actor::Anonymous, &NO_REQUEST, now).await?;
        // language=PostgreSQL
        sqlx::query!(
            "select pg_advisory_xact_lock(hashtextextended($1::text || $2, 11))",
            window.org_id.to_string(),
            window.key
        )
        .execute(work.conn())
        .await?;
        // language=PostgreSQL
        let still_expired = sqlx::query_scalar!(
            "select 1 as \"one!\" from audit_failure_windows
             where org_id = $1 and key = $2 and window_started_at <= $3",
            window.org_id,
            window.key,
            now - WINDOW
        )
        .fetch_optional(work.conn())
        .await?;
        if still_expired.is_none() {
            continue;
        }
        if let Some(summary) = close_window(work.conn(), window.org_id, &window.key).await? {
            work.record(summary).await?;
            summaries += 1;
        }
        work.commit().await?;
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_per_action_target_and_reason() {
        let org = Uuid::new_v4();
        let failure = |label: &str, reason: &str| {
            NewEvent::new(org, Actor::Anonymous, "login.failed")
                .target("admin", "a1", label)
                .details(json!({ "reason": reason, "method": "password" }))
        };
        let key = window_key(&failure("dana@acme.example", "bad_credentials"));
        assert_eq!(key, "login.failed|admin:a1:dana@acme.example|bad_credentials");
        assert_ne!(key, window_key(&failure("dana@acme.example", "throttled")));
        assert_ne!(key, window_key(&failure("sam@acme.example", "bad_credentials")));
    }
}
