//! Log streams: an organization's HTTP destinations — a signed webhook, a Splunk HTTP Event
//! Collector or Datadog Logs — that receive every audit event of the organization.
//!
//! The audit log itself is the outbox. Events commit in the same transaction as the change they
//! record, their `seq` is gap-free per organization and commits in order (appending locks the
//! organization's `audit_chain_heads` row). Each stream keeps a cursor: every event with
//! `seq <= cursor_seq` was acknowledged (2xx) by the destination. `deliver_due` sends the next
//! batch (at most `BATCH_SIZE` events, one request) and moves the cursor only on a 2xx; a
//! failed, refused or timed-out batch is sent again after an exponential backoff (1 s doubling
//! to 5 min, ±20% jitter). Delivery is therefore at least once: every event carries its `id` and
//! `seq`, and every request `Idempotency-Key: <stream_id>:<first_seq>-<last_seq>`. A retry starts
//! at the same event but may carry more events than the failed attempt (the batch is cut again
//! from the current log), so its key can differ: receivers that need exactly-once drop events
//! whose `id` they already have.
//!
//! A new stream starts with its own `audit_stream.created` event: it receives the events
//! recorded from its creation on, not the history before it (export that from the Audit page).
//! Each signed checkpoint follows the events it covers as an entry of action `audit.checkpoint`
//! (the checkpoint and its exact signed text in `details`), so a copy of every checkpoint lives
//! outside the database; `checkpoint_cursor` is the size of the last one acknowledged.
//! A disabled stream keeps its cursor and catches up when turned back on.
//!
//! Files: this one holds the streams themselves (create, list, turn on or off, delete, rotate
//! the secret) and the checks of their input; `delivery` sends batches and test events;
//! `formats` shapes a batch for each kind of destination.
//!
//! Secrets (the webhook's HMAC key, the HEC token, the Datadog API key) are encrypted under the
//! master key (context `audit_stream:<id>`), never returned after creation and never logged.
//!
//! Reading needs `ViewAudit`; changing needs `ManageAgents` (owners and admins, who also manage
//! the organization's other integrations: connections and directories).

pub mod delivery;
pub mod formats;

use crate::model::streams::{CreatedStream, StreamKind, StreamRow};
use crate::model::Permission;
use crate::server::domain::actor::Caller;
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::error::ResultExt;
use crate::server::domain::outbound::{self, OutboundPolicy};
use crate::server::domain::Call;
use crate::server::domain::{crypto::secrets, validate, DomainError};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// Prefix of the webhook signing secrets Mandate generates.
pub const WEBHOOK_SECRET_PREFIX: &str = "mnd_whsec_";
/// Where a Datadog stream sends when no URL is given (the US1 site; any site's intake works).
pub const DATADOG_DEFAULT_URL: &str = "https://http-intake.logs.datadoghq.com/api/v2/logs";
/// Events per request (Datadog accepts at most 1000 entries per request).
pub const BATCH_SIZE: i64 = 500;
pub const USER_AGENT: &str = "Mandate-Audit-Stream/1";
/// The action of the synthetic event "Send test event" posts (never recorded).
pub const TEST_ACTION: &str = "mandate.stream.test";
/// Streams per organization: each one is a request per batch of every event.
pub const MAX_STREAMS: i64 = 20;
const MAX_URL_CHARS: usize = 2048;
const MAX_SECRET_CHARS: usize = 1024;
const BASE_BACKOFF: Duration = Duration::seconds(1);
const MAX_BACKOFF: Duration = Duration::minutes(5);
/// How much of a refusing destination's answer is kept in `last_error`.
const ERROR_BODY_CHARS: usize = 200;
const TIMEOUT_SECONDS: u64 = 10;

fn secret_context(stream_id: Uuid) -> String {
    format!("audit_stream:{stream_id}")
}

/// A stream's secret, decrypted. Never printed.
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What an admin or API client asks for. `secret` is the HEC token or Datadog API key (empty
/// for webhooks: Mandate generates their secret).
pub struct NewStream<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub url: &'a str,
    pub secret: &'a str,
}

impl std::fmt::Debug for NewStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewStream")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The HTTP client for destinations, under the outbound policy (public addresses only unless
/// allowed, no redirects followed, 10 s timeout); plus the host name Splunk events name as
/// their `host`.
#[derive(Clone, Debug)]
pub struct StreamHttp {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
    host: String,
}

impl StreamHttp {
    /// `public_url` is Mandate's public base URL; its host becomes the events' `host`.
    pub fn new(policy: &Arc<OutboundPolicy>, public_url: &str) -> Result<StreamHttp, DomainError> {
        let timeout = std::time::Duration::from_secs(TIMEOUT_SECONDS);
        let client = outbound::client(policy, timeout, USER_AGENT)
            .map_err(|err| DomainError::Internal(format!("could not build the log stream HTTP client: {err:#}")))?;
        let host = reqwest::Url::parse(public_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_else(|| "mandate".to_string());
        Ok(StreamHttp { client, policy: policy.clone(), host })
    }
}

/// Creates a stream. For a webhook the answer carries the generated signing secret, which is
/// never shown again.
/// Permission: log streams.
#[tracing::instrument(skip_all)]
pub async fn create(
    pool: &PgPool,
    master: &MasterKey,
    call: Call<'_>,
    input: NewStream<'_>,
) -> Result<CreatedStream, DomainError> {
    call.require(Permission::ManageStreams)?;
    let org_id = call.org_id();
    let name = validate::label("Stream name", input.name, 100)?;
    let kind: StreamKind = input.kind.parse().map_err(DomainError::Invalid)?;
    let url = destination_url(kind, input.url)?;
    let secret = match kind.secret_label() {
        None if !input.secret.trim().is_empty() => {
            return Err(DomainError::invalid(
                "Leave the secret empty for a webhook: Mandate generates its signing secret",
            ))
        }
        None => secrets::generate(WEBHOOK_SECRET_PREFIX),
        Some(label) => given_secret(label, input.secret)?,
    };
    let id = Uuid::new_v4();
    let sealed = master.encrypt(secret.as_bytes(), &secret_context(id))?;
    let mut work = call.begin(pool).await?;
    // Recording first locks the organization's chain head until commit: no other event can
    // commit between this one and the stream, so the stream's first event is its own creation.
    let seq = work
        .record(
            work.event("audit_stream.created")
                .target("audit_stream", id, &name)
                .details(json!({ "kind": kind.as_str(), "destination": origin_of(&url) })),
        )
        .await?;
    // language=PostgreSQL
    let count = sqlx::query_scalar!(r#"select count(*) as "count!" from audit_streams where org_id = $1"#, org_id)
        .fetch_one(work.conn())
        .await?;
    if count >= MAX_STREAMS {
        return Err(DomainError::Conflict(format!(
            "An organization can have at most {MAX_STREAMS} log streams; delete one first"
        )));
    }
    // language=PostgreSQL
    sqlx::query!(
        "insert into audit_streams (org_id, id, name, kind, url, secret_encrypted, cursor_seq, checkpoint_cursor,
                                    next_attempt_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8)",
        org_id,
        id,
        name,
        kind.as_str(),
        url,
        sealed,
        seq - 1,
        call.now
    )
    .execute(work.conn())
    .await
    .on_constraint("audit_streams_name_key", || {
        DomainError::Conflict(format!("A log stream named {name:?} already exists; choose another name"))
    })?;
    work.commit().await?;
    let secret = (kind == StreamKind::Webhook).then_some(secret);
    Ok(CreatedStream { stream_id: id, kind, secret })
}

/// The organization's streams with their delivery status (never their secrets).
/// Permission: read audit.
pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<StreamRow>, DomainError> {
    caller.require(Permission::ReadAudit)?;
    rows(pool, caller.org_id(), None).await
}

/// One stream of the caller's organization.
/// Permission: read audit.
pub async fn get(pool: &PgPool, caller: Caller<'_>, stream_id: Uuid) -> Result<StreamRow, DomainError> {
    caller.require(Permission::ReadAudit)?;
    rows(pool, caller.org_id(), Some(stream_id)).await?.into_iter().next().ok_or(DomainError::NotFound)
}

async fn rows(pool: &PgPool, org_id: Uuid, stream_id: Option<Uuid>) -> Result<Vec<StreamRow>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        r#"select s.id, s.name, s.kind, s.url, s.enabled, s.cursor_seq, s.delivered_events,
                  greatest(h.last_seq - s.cursor_seq, 0) as "lag!", s.failures, s.next_attempt_at,
                  s.last_success_at, s.last_error, s.last_error_at, s.created_at
           from audit_streams s join audit_chain_heads h on h.org_id = s.org_id
           where s.org_id = $1 and ($2::uuid is null or s.id = $2)
           order by s.created_at, s.name"#,
        org_id,
        stream_id
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(StreamRow {
                id: row.id,
                name: row.name,
                kind: row.kind.parse().map_err(DomainError::Internal)?,
                url: row.url,
                enabled: row.enabled,
                status: StreamRow::status_of(row.enabled, row.failures),
                cursor_seq: row.cursor_seq,
                delivered_events: row.delivered_events,
                lag: row.lag,
                failures: row.failures,
                next_attempt_at: row.next_attempt_at,
                last_success_at: row.last_success_at,
                last_error: row.last_error,
                last_error_at: row.last_error_at,
                created_at: row.created_at,
            })
        })
        .collect()
}

/// Turns a stream on or off. Turning it on retries at once (failures reset); it resumes at its
/// cursor, so it catches up on what was recorded meanwhile.
/// Permission: log streams.
pub async fn set_enabled(pool: &PgPool, call: Call<'_>, stream_id: Uuid, enabled: bool) -> Result<(), DomainError> {
    call.require(Permission::ManageStreams)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // Waits for a delivery in flight to this stream (at most its request timeout).
    // language=PostgreSQL
    let row = sqlx::query!(
        "select name, kind, enabled from audit_streams where org_id = $1 and id = $2 for update",
        org_id,
        stream_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    if row.enabled == enabled {
        return Ok(());
    }
    // language=PostgreSQL
    sqlx::query!(
        "update audit_streams set enabled = $3, failures = case when $3 then 0 else failures end,
                next_attempt_at = $4
         where org_id = $1 and id = $2",
        org_id,
        stream_id,
        enabled,
        call.now
    )
    .execute(work.conn())
    .await?;
    let action = if enabled { "audit_stream.enabled" } else { "audit_stream.disabled" };
    work.record(work.event(action).target("audit_stream", stream_id, &row.name).details(json!({ "kind": row.kind })))
        .await?;
    work.commit().await?;
    Ok(())
}

/// Deletes a stream; events not yet delivered to it are not sent.
/// Permission: log streams.
pub async fn delete(pool: &PgPool, call: Call<'_>, stream_id: Uuid) -> Result<(), DomainError> {
    call.require(Permission::ManageStreams)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "delete from audit_streams where org_id = $1 and id = $2 returning name, kind, delivered_events",
        org_id,
        stream_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    work.record(
        work.event("audit_stream.deleted")
            .target("audit_stream", stream_id, &row.name)
            .details(json!({ "kind": row.kind, "delivered_events": row.delivered_events })),
    )
    .await?;
    work.commit().await?;
    Ok(())
}

/// Replaces a webhook's signing secret; returns the new one (shown once). Requests signed with
/// the old secret stop at once, so update the receiver right after.
/// Permission: log streams.
#[tracing::instrument(skip_all)]
pub async fn rotate_secret(
    pool: &PgPool,
    master: &MasterKey,
    call: Call<'_>,
    stream_id: Uuid,
) -> Result<String, DomainError> {
    call.require(Permission::ManageStreams)?;
    let org_id = call.org_id();
    let secret = secrets::generate(WEBHOOK_SECRET_PREFIX);
    let sealed = master.encrypt(secret.as_bytes(), &secret_context(stream_id))?;
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select name, kind from audit_streams where org_id = $1 and id = $2 for update",
        org_id,
        stream_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    if row.kind != StreamKind::Webhook.as_str() {
        return Err(DomainError::invalid(
            "Only webhook secrets are generated by Mandate; for Splunk or Datadog, delete the stream and add it again with the new token",
        ));
    }
    // language=PostgreSQL
    sqlx::query!(
        "update audit_streams set secret_encrypted = $3 where org_id = $1 and id = $2",
        org_id,
        stream_id,
        sealed
    )
    .execute(work.conn())
    .await?;
    work.record(work.event("audit_stream.secret_rotated").target("audit_stream", stream_id, &row.name)).await?;
    work.commit().await?;
    Ok(secret)
}

/// A destination URL: absolute http(s), no user name or password, at most 2048 characters;
/// https unless the host is this machine's loopback (127.0.0.1, ::1, localhost). An empty
/// Datadog URL means the US1 intake.
pub fn destination_url(kind: StreamKind, input: &str) -> Result<String, DomainError> {
    let input = input.trim();
    let input = if input.is_empty() && kind == StreamKind::Datadog { DATADOG_DEFAULT_URL } else { input };
    let example = kind.url_placeholder();
    if input.is_empty() {
        return Err(DomainError::invalid(format!("The destination URL is required, e.g. {example}")));
    }
    if input.chars().count() > MAX_URL_CHARS {
        return Err(DomainError::invalid(format!("The destination URL must be at most {MAX_URL_CHARS} characters")));
    }
    let url = reqwest::Url::parse(input)
        .map_err(|err| DomainError::invalid(format!("{input:?} is not a valid URL ({err}); e.g. {example}")))?;
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" => {}
        "http" if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => {}
        "http" => return Err(DomainError::invalid(
            "The destination URL must use https:// (plain http:// is accepted only for 127.0.0.1, ::1 and localhost)",
        )),
        _ => return Err(DomainError::invalid(format!("The destination URL must start with https://, e.g. {example}"))),
    }
    if host.is_empty() {
        return Err(DomainError::invalid(format!("The destination URL needs a host, e.g. {example}")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(
            "The destination URL must not contain a user name or password: give the token in its own field",
        ));
    }
    if url.fragment().is_some() {
        return Err(DomainError::invalid("The destination URL must not contain a #fragment"));
    }
    Ok(url.to_string())
}

/// A token or API key the user gives: printable, no spaces (it goes into a header).
fn given_secret(label: &str, input: &str) -> Result<String, DomainError> {
    let value = input.trim();
    if value.is_empty() {
        return Err(DomainError::invalid(format!("The {label} is required")));
    }
    if value.chars().count() > MAX_SECRET_CHARS || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DomainError::invalid(format!(
            "The {label} must be at most {MAX_SECRET_CHARS} printable characters without spaces"
        )));
    }
    Ok(value.to_string())
}

/// `scheme://host[:port]` of a checked URL: what audit details say about a destination (a
/// path or query might carry a token).
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url).map(|url| url.origin().ascii_serialization()).unwrap_or_default()
}

fn decrypt_secret(master: &MasterKey, stream_id: Uuid, sealed: &[u8]) -> Result<Secret, DomainError> {
    let plain = master.decrypt(sealed, &secret_context(stream_id))?;
    String::from_utf8(plain)
        .map(Secret)
        .map_err(|_| DomainError::Internal(format!("the secret of log stream {stream_id} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        let webhook = StreamKind::Webhook;
        assert_eq!(destination_url(webhook, " https://siem.example/hook ").unwrap(), "https://siem.example/hook");
        assert_eq!(destination_url(webhook, "http://127.0.0.1:8080/in").unwrap(), "http://127.0.0.1:8080/in");
        assert!(destination_url(webhook, "http://localhost/in").is_ok());
        assert!(destination_url(webhook, "http://[::1]:9/in").is_ok());
        assert_eq!(destination_url(StreamKind::Datadog, "").unwrap(), DATADOG_DEFAULT_URL);
        assert!(destination_url(StreamKind::Datadog, "https://http-intake.logs.datadoghq.eu/api/v2/logs").is_ok());
        let message = |url: &str| match destination_url(webhook, url) {
            Err(DomainError::Invalid(message)) => message,
            other => panic!("{url:?} should be refused, got {other:?}"),
        };
        assert!(message("http://siem.example/hook").contains("https"));
        assert!(message("http://127.0.0.1.evil.example/hook").contains("https"));
        assert!(message("https://user:pw@siem.example/hook").contains("user name or password"));
        assert!(message("ftp://siem.example/").contains("https://"));
        assert!(message("").contains("required"));
        assert!(message("siem.example/hook").contains("not a valid URL"));
        assert!(message(&format!("https://siem.example/{}", "a".repeat(2048))).contains("2048"));
        assert!(message("https://siem.example/#x").contains("fragment"));
    }

    #[test]
    fn given_secrets_are_required_and_header_safe() {
        assert_eq!(given_secret("HEC token", " abc-123 ").unwrap(), "abc-123");
        assert!(given_secret("HEC token", "  ").is_err());
        assert!(given_secret("HEC token", "a b").is_err());
        assert!(given_secret("HEC token", "a\r\nX-Evil: 1").is_err());
    }

    #[test]
    fn audit_details_name_only_the_destination_origin() {
        assert_eq!(origin_of("https://siem.example:8443/in?token=x"), "https://siem.example:8443");
    }

    #[test]
    fn secrets_are_not_printed() {
        let input = NewStream { name: "n", kind: "datadog", url: "", secret: "dd-key-1" };
        assert!(!format!("{input:?}").contains("dd-key-1"));
        assert!(!format!("{:?}", Secret("dd-key-1".into())).contains("dd-key-1"));
    }
}
