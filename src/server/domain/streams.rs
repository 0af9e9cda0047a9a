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
//! A disabled stream keeps its cursor and catches up when turned back on.
//!
//! Secrets (the webhook's HMAC key, the HEC token, the Datadog API key) are encrypted under the
//! master key (context `audit_stream:<id>`), never returned after creation and never logged.
//!
//! Reading needs `ViewAudit`; changing needs `ManageAgents` (owners and admins, who also manage
//! the organization's other integrations: connections and directories).

use super::actor::{Actor, Caller, RequestMeta};
use super::audit::{self, NewEvent, StoredEvent};
use super::crypto::MasterKey;
use super::error::ResultExt;
use super::{secrets, validate, DomainError};
use crate::model::audit::AuditEventView;
use crate::model::streams::{CreatedStream, StreamKind, StreamRow, StreamTestResult};
use crate::model::Permission;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
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

/// The HTTP client for destinations: no redirects followed, 10 s timeout, rustls; plus the host
/// name Splunk events name as their `host`.
#[derive(Clone, Debug)]
pub struct StreamHttp {
    client: reqwest::Client,
    host: String,
}

impl StreamHttp {
    /// `public_url` is Mandate's public base URL; its host becomes the events' `host`.
    pub fn new(public_url: &str) -> Result<StreamHttp, DomainError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(TIMEOUT_SECONDS))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|err| DomainError::Internal(format!("could not build the log stream HTTP client: {err}")))?;
        let host = reqwest::Url::parse(public_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_else(|| "mandate".to_string());
        Ok(StreamHttp { client, host })
    }
}

// ------------------------------------------------------------------------------------------
// Management

/// Creates a stream. For a webhook the answer carries the generated signing secret, which is
/// never shown again.
#[tracing::instrument(skip_all)]
pub async fn create(
    pool: &PgPool,
    master: &MasterKey,
    caller: Caller<'_>,
    input: NewStream<'_>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<CreatedStream, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
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
    let mut tx = pool.begin().await?;
    // Recording first locks the organization's chain head until commit: no other event can
    // commit between this one and the stream, so the stream's first event is its own creation.
    let seq = audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "audit_stream.created")
            .target("audit_stream", id, &name)
            .details(json!({ "kind": kind.as_str(), "destination": origin_of(&url) })),
        meta,
        now,
    )
    .await?;
    // language=PostgreSQL
    let count = sqlx::query_scalar!(r#"select count(*) as "count!" from audit_streams where org_id = $1"#, org_id)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_STREAMS {
        return Err(DomainError::Conflict(format!(
            "An organization can have at most {MAX_STREAMS} log streams; delete one first"
        )));
    }
    // language=PostgreSQL
    sqlx::query!(
        "insert into audit_streams (org_id, id, name, kind, url, secret_encrypted, cursor_seq, next_attempt_at, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        org_id,
        id,
        name,
        kind.as_str(),
        url,
        sealed,
        seq - 1,
        now
    )
    .execute(&mut *tx)
    .await
    .on_constraint("audit_streams_name_key", || {
        DomainError::Conflict(format!("A log stream named {name:?} already exists; choose another name"))
    })?;
    tx.commit().await?;
    let secret = (kind == StreamKind::Webhook).then_some(secret);
    Ok(CreatedStream { stream_id: id, kind, secret })
}

/// The organization's streams with their delivery status (never their secrets).
pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<StreamRow>, DomainError> {
    caller.require(Permission::ViewAudit)?;
    rows(pool, caller.org_id(), None).await
}

/// One stream of the caller's organization.
pub async fn get(pool: &PgPool, caller: Caller<'_>, stream_id: Uuid) -> Result<StreamRow, DomainError> {
    caller.require(Permission::ViewAudit)?;
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
pub async fn set_enabled(
    pool: &PgPool,
    caller: Caller<'_>,
    stream_id: Uuid,
    enabled: bool,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let mut tx = pool.begin().await?;
    // Waits for a delivery in flight to this stream (at most its request timeout).
    // language=PostgreSQL
    let row = sqlx::query!(
        "select name, kind, enabled from audit_streams where org_id = $1 and id = $2 for update",
        org_id,
        stream_id
    )
    .fetch_optional(&mut *tx)
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
        now
    )
    .execute(&mut *tx)
    .await?;
    let action = if enabled { "audit_stream.enabled" } else { "audit_stream.disabled" };
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), action)
            .target("audit_stream", stream_id, &row.name)
            .details(json!({ "kind": row.kind })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a stream; events not yet delivered to it are not sent.
pub async fn delete(
    pool: &PgPool,
    caller: Caller<'_>,
    stream_id: Uuid,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "delete from audit_streams where org_id = $1 and id = $2 returning name, kind, delivered_events",
        org_id,
        stream_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "audit_stream.deleted")
            .target("audit_stream", stream_id, &row.name)
            .details(json!({ "kind": row.kind, "delivered_events": row.delivered_events })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces a webhook's signing secret; returns the new one (shown once). Requests signed with
/// the old secret stop at once, so update the receiver right after.
#[tracing::instrument(skip_all)]
pub async fn rotate_secret(
    pool: &PgPool,
    master: &MasterKey,
    caller: Caller<'_>,
    stream_id: Uuid,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<String, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let secret = secrets::generate(WEBHOOK_SECRET_PREFIX);
    let sealed = master.encrypt(secret.as_bytes(), &secret_context(stream_id))?;
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select name, kind from audit_streams where org_id = $1 and id = $2 for update",
        org_id,
        stream_id
    )
    .fetch_optional(&mut *tx)
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
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "audit_stream.secret_rotated").target(
            "audit_stream",
            stream_id,
            &row.name,
        ),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(secret)
}

/// Posts one synthetic `mandate.stream.test` event to the stream's destination now and says
/// how it answered. Nothing is stored: neither an audit event nor the stream's status.
#[tracing::instrument(skip_all)]
pub async fn send_test(
    pool: &PgPool,
    master: &MasterKey,
    http: &StreamHttp,
    caller: Caller<'_>,
    stream_id: Uuid,
    now: OffsetDateTime,
) -> Result<StreamTestResult, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    // language=PostgreSQL
    let row = sqlx::query!(
        "select name, kind, url, secret_encrypted from audit_streams where org_id = $1 and id = $2",
        org_id,
        stream_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    let kind: StreamKind = row.kind.parse().map_err(DomainError::Internal)?;
    let secret = decrypt_secret(master, stream_id, &row.secret_encrypted)?;
    let event = test_event(&caller.actor(), stream_id, &row.name, now);
    let key = format!("{stream_id}:test-{}", event.id);
    let request = build_request(kind, &secret, org_id, stream_id, &http.host, &[event], &key, now)?;
    let started = std::time::Instant::now();
    let attempt = send(http, &row.url, request).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(match attempt {
        Attempt::Acknowledged { status } => StreamTestResult {
            ok: true,
            status: Some(status),
            message: format!("The destination answered HTTP {status}."),
            elapsed_ms,
        },
        Attempt::Failed { status, reason } => StreamTestResult { ok: false, status, message: reason, elapsed_ms },
    })
}

/// The synthetic event of "Send test event", shaped like a real one (`seq` 0, no chain hashes).
fn test_event(actor: &Actor, stream_id: Uuid, stream_name: &str, now: OffsetDateTime) -> AuditEventView {
    AuditEventView {
        seq: 0,
        id: Uuid::new_v4(),
        occurred_at: now,
        actor_type: actor.kind().to_string(),
        actor_id: actor.id(),
        actor_label: actor.label(),
        action: TEST_ACTION.to_string(),
        target_type: Some("audit_stream".to_string()),
        target_id: Some(stream_id.to_string()),
        target_label: Some(stream_name.to_string()),
        outcome: "success".to_string(),
        ip: None,
        user_agent: None,
        request_id: None,
        details: json!({ "test": true, "message": "A test event from Mandate: this log stream reaches you." }),
        person_id: None,
        agent_id: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

// ------------------------------------------------------------------------------------------
// Input checks

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

// ------------------------------------------------------------------------------------------
// Delivery

/// One delivery pass: every enabled stream that is due and behind the head gets its next batch
/// (one request each). Streams are claimed with `for update skip locked`, so several nodes
/// never send a stream's batch at the same time; the row stays locked until its outcome is
/// stored. Returns the number of events acknowledged in this pass.
#[tracing::instrument(skip_all)]
pub async fn deliver_due(
    pool: &PgPool,
    master: &MasterKey,
    http: &StreamHttp,
    now: OffsetDateTime,
) -> Result<usize, DomainError> {
    let mut visited: Vec<Uuid> = Vec::new();
    let mut acknowledged = 0;
    loop {
        let mut tx = pool.begin().await?;
        // Only the stream row is locked (`of s`): appending events must never wait on delivery.
        // language=PostgreSQL
        let Some(stream) = sqlx::query!(
            "select s.org_id, s.id, s.kind, s.url, s.secret_encrypted, s.cursor_seq, s.failures
             from audit_streams s join audit_chain_heads h on h.org_id = s.org_id
             where s.enabled and s.next_attempt_at <= $1 and s.cursor_seq < h.last_seq and s.id <> all($2)
             order by s.next_attempt_at
             limit 1
             for update of s skip locked",
            now,
            &visited
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            break;
        };
        visited.push(stream.id);
        let mut events = audit::events_after(pool, stream.org_id, stream.cursor_seq, BATCH_SIZE).await?;
        keep_contiguous(&mut events);
        let (Some(first), Some(last)) = (events.first().map(|e| e.seq), events.last().map(|e| e.seq)) else {
            continue;
        };
        let count = events.len();
        let attempt =
            match (stream.kind.parse::<StreamKind>(), decrypt_secret(master, stream.id, &stream.secret_encrypted)) {
                (Ok(kind), Ok(secret)) => {
                    let views: Vec<AuditEventView> = events.into_iter().map(audit::view).collect();
                    let key = idempotency_key(stream.id, first, last);
                    let request =
                        build_request(kind, &secret, stream.org_id, stream.id, &http.host, &views, &key, now)?;
                    send(http, &stream.url, request).await
                }
                (Err(err), _) => Attempt::Failed { status: None, reason: err },
                (_, Err(err)) => {
                    tracing::error!(stream_id = %stream.id, error = %err, "log stream secret cannot be decrypted");
                    Attempt::Failed {
                        status: None,
                        reason: "Mandate could not decrypt this stream's secret (was MANDATE_MASTER_KEY changed?)"
                            .into(),
                    }
                }
            };
        match attempt {
            Attempt::Acknowledged { .. } => {
                // language=PostgreSQL
                sqlx::query!(
                    "update audit_streams set cursor_seq = greatest(cursor_seq, $3),
                            delivered_events = delivered_events + $4, failures = 0,
                            next_attempt_at = $5, last_success_at = $5
                     where org_id = $1 and id = $2",
                    stream.org_id,
                    stream.id,
                    last,
                    count as i64,
                    now
                )
                .execute(&mut *tx)
                .await?;
                acknowledged += count;
            }
            Attempt::Failed { reason, .. } => {
                let failures = stream.failures.saturating_add(1);
                let next = now + backoff(failures, rand::thread_rng().gen_range(-1.0..=1.0));
                tracing::warn!(stream_id = %stream.id, org_id = %stream.org_id, failures, error = %reason, "log stream delivery failed");
                // language=PostgreSQL
                sqlx::query!(
                    "update audit_streams set failures = $3, last_error = $4, last_error_at = $5, next_attempt_at = $6
                     where org_id = $1 and id = $2",
                    stream.org_id,
                    stream.id,
                    failures,
                    reason,
                    now,
                    next
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }
    Ok(acknowledged)
}

/// Runs `deliver_due` every `interval` until the pool is closed.
pub fn spawn_delivery(
    pool: PgPool,
    master: MasterKey,
    http: StreamHttp,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(err) = deliver_due(&pool, &master, &http, OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %err, "log stream delivery pass failed");
            }
        }
    })
}

/// The wait after the `failures`-th failure in a row: 1 s doubling up to 5 min, scaled by
/// `1 + 0.2 * jitter` (`jitter` in -1..=1, drawn at random) and never above 5 min.
pub fn backoff(failures: i32, jitter: f64) -> Duration {
    let (base, max) = (BASE_BACKOFF.whole_milliseconds() as i64, MAX_BACKOFF.whole_milliseconds() as i64);
    let doublings = failures.saturating_sub(1).clamp(0, 20);
    let nominal = (base << doublings).min(max);
    let jittered = (nominal as f64 * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0))).round() as i64;
    Duration::milliseconds(jittered.min(max))
}

pub fn idempotency_key(stream_id: Uuid, first_seq: i64, last_seq: i64) -> String {
    format!("{stream_id}:{first_seq}-{last_seq}")
}

/// Cuts a batch at the first gap in `seq`. The log has none (appends commit in order); a batch
/// may start after `cursor + 1` only where retention pruned events a stream had not received.
fn keep_contiguous(events: &mut Vec<StoredEvent>) {
    let Some(first) = events.first().map(|e| e.seq) else { return };
    let contiguous = events.iter().zip(first..).take_while(|(event, expected)| event.seq == *expected).count();
    events.truncate(contiguous);
}

/// One request to a destination, before sending. Carries credentials: never printed.
pub struct Outgoing {
    pub body: Vec<u8>,
    /// Header name, value, and whether the value is a credential.
    pub headers: Vec<(&'static str, String, bool)>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(name, value, sensitive)| (*name, if *sensitive { "<redacted>" } else { value.as_str() }))
            .collect();
        f.debug_struct("Outgoing").field("headers", &headers).field("body_bytes", &self.body.len()).finish()
    }
}

#[cfg(test)]
impl Outgoing {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)).map(|(_, v, _)| v.as_str())
    }
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    stream_id: Uuid,
    organization_id: Uuid,
    events: &'a [AuditEventView],
}

/// One event in Splunk HEC's batch format.
#[derive(Serialize)]
struct HecEvent<'a> {
    /// Epoch seconds, millisecond precision.
    time: f64,
    host: &'a str,
    source: &'static str,
    sourcetype: &'static str,
    event: &'a AuditEventView,
}

/// One entry of Datadog's Logs intake (v2).
#[derive(Serialize)]
struct DatadogLog<'a> {
    ddsource: &'static str,
    service: &'static str,
    hostname: &'a str,
    ddtags: String,
    message: String,
    mandate: &'a AuditEventView,
    /// Epoch milliseconds.
    timestamp: i64,
}

/// The request of one batch for a destination kind (see the module documentation).
#[allow(clippy::too_many_arguments)]
fn build_request(
    kind: StreamKind,
    secret: &Secret,
    org_id: Uuid,
    stream_id: Uuid,
    host: &str,
    events: &[AuditEventView],
    idempotency_key: &str,
    now: OffsetDateTime,
) -> Result<Outgoing, DomainError> {
    let encode = |err: serde_json::Error| DomainError::Internal(format!("could not encode a log stream batch: {err}"));
    let mut headers = vec![
        ("Content-Type", "application/json".to_string(), false),
        ("Idempotency-Key", idempotency_key.to_string(), false),
    ];
    let body = match kind {
        StreamKind::Webhook => {
            let body =
                serde_json::to_vec(&WebhookBody { stream_id, organization_id: org_id, events }).map_err(encode)?;
            headers.push(("Mandate-Signature", signature(&secret.0, now.unix_timestamp(), &body)?, false));
            body
        }
        StreamKind::SplunkHec => {
            let mut body = Vec::new();
            for (i, event) in events.iter().enumerate() {
                if i > 0 {
                    body.push(b'\n');
                }
                let millis = (event.occurred_at.unix_timestamp_nanos() / 1_000_000) as i64;
                let entry = HecEvent {
                    time: millis as f64 / 1000.0,
                    host,
                    source: "mandate",
                    sourcetype: "mandate:audit",
                    event,
                };
                serde_json::to_writer(&mut body, &entry).map_err(encode)?;
            }
            headers.push(("Authorization", format!("Splunk {}", secret.0), true));
            body
        }
        StreamKind::Datadog => {
            let entries: Vec<DatadogLog<'_>> = events
                .iter()
                .map(|event| DatadogLog {
                    ddsource: "mandate",
                    service: "mandate",
                    hostname: host,
                    ddtags: format!("org_id:{org_id},outcome:{}", event.outcome),
                    message: datadog_message(event),
                    mandate: event,
                    timestamp: (event.occurred_at.unix_timestamp_nanos() / 1_000_000) as i64,
                })
                .collect();
            headers.push(("DD-API-KEY", secret.0.clone(), true));
            serde_json::to_vec(&entries).map_err(encode)?
        }
    };
    Ok(Outgoing { body, headers })
}

/// "dana@acme.example agent.revoked Ledger"
fn datadog_message(event: &AuditEventView) -> String {
    match &event.target_label {
        Some(target) => format!("{} {} {}", event.actor_label, event.action, target),
        None => format!("{} {}", event.actor_label, event.action),
    }
}

/// `Mandate-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, the
/// key being the whole secret string (`mnd_whsec_...`). Receivers recompute it over the raw
/// body, compare in constant time and refuse old `t` values (replays).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> Result<String, DomainError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| DomainError::Internal("HMAC refused the key".into()))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes())))
}

enum Attempt {
    Acknowledged { status: u16 },
    Failed { status: Option<u16>, reason: String },
}

async fn send(http: &StreamHttp, url: &str, request: Outgoing) -> Attempt {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut builder = http.client.post(url);
    for (name, value, sensitive) in &request.headers {
        let Ok(mut value) = HeaderValue::from_str(value) else {
            return Attempt::Failed { status: None, reason: format!("the {name} header cannot be sent") };
        };
        value.set_sensitive(*sensitive);
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Attempt::Failed { status: None, reason: format!("{name} is not a header name") };
        };
        builder = builder.header(name, value);
    }
    let response = match builder.body(request.body).send().await {
        Ok(response) => response,
        Err(err) => return Attempt::Failed { status: None, reason: describe(&err) },
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Acknowledged { status: status.as_u16() };
    }
    let excerpt = body_excerpt(response).await;
    let mut reason = format!("HTTP {status}");
    if !excerpt.is_empty() {
        reason = format!("{reason}: {excerpt}");
    }
    if status.is_redirection() {
        reason.push_str(" (redirects are not followed: give the final URL)");
    }
    Attempt::Failed { status: Some(status.as_u16()), reason }
}

/// The first `ERROR_BODY_CHARS` characters of an answer, on one line (reads at most 4 KiB).
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < 4096 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    one_line.trim().chars().take(ERROR_BODY_CHARS).collect()
}

fn describe(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if err.is_timeout() {
        format!("no answer within {TIMEOUT_SECONDS} seconds")
    } else if err.is_connect() {
        format!("could not connect: {cause}")
    } else {
        format!("the request failed: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, target: Option<&str>) -> AuditEventView {
        AuditEventView {
            seq,
            id: Uuid::from_u128(seq as u128),
            occurred_at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap(),
            actor_type: "admin".into(),
            actor_id: None,
            actor_label: "dana@acme.example".into(),
            action: "agent.revoked".into(),
            target_type: target.map(|_| "agent".into()),
            target_id: None,
            target_label: target.map(str::to_string),
            outcome: "success".into(),
            ip: None,
            user_agent: None,
            request_id: None,
            details: json!({}),
            person_id: None,
            agent_id: None,
            prev_hash: "00".into(),
            hash: "11".into(),
        }
    }

    fn build(kind: StreamKind, events: &[AuditEventView]) -> Outgoing {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap();
        let secret = Secret("tok-123".into());
        build_request(kind, &secret, Uuid::from_u128(1), Uuid::from_u128(2), "mandate.example", events, "k:1-2", now)
            .unwrap()
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Independently computed: HMAC-SHA256(key "mnd_whsec_test", "1700000000.{\"a\":1}").
        assert_eq!(
            signature("mnd_whsec_test", 1_700_000_000, br#"{"a":1}"#).unwrap(),
            "t=1700000000,v1=3adddc0b945ebc74a2c314620fabb1fc19be531f2dda76a5bee91eb577266737"
        );
    }

    #[test]
    fn webhook_batches_are_signed_json_with_the_stream_and_organization() {
        let out = build(StreamKind::Webhook, &[event(1, None), event(2, Some("Ledger"))]);
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(body["stream_id"], Uuid::from_u128(2).to_string());
        assert_eq!(body["organization_id"], Uuid::from_u128(1).to_string());
        assert_eq!(body["events"].as_array().unwrap().len(), 2);
        assert_eq!(body["events"][1]["seq"], 2);
        assert_eq!(body["events"][1]["id"], Uuid::from_u128(2).to_string());
        assert_eq!(out.header("Idempotency-Key"), Some("k:1-2"));
        assert_eq!(out.header("Content-Type"), Some("application/json"));
        assert_eq!(out.header("Mandate-Signature").unwrap(), signature("tok-123", 1_700_000_100, &out.body).unwrap());
        assert!(out.header("Authorization").is_none());
    }

    #[test]
    fn splunk_batches_are_newline_separated_hec_events() {
        let out = build(StreamKind::SplunkHec, &[event(1, None), event(2, None)]);
        let text = String::from_utf8(out.body.clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["time"], 1_700_000_000.123);
        assert_eq!(lines[0]["host"], "mandate.example");
        assert_eq!(lines[0]["source"], "mandate");
        assert_eq!(lines[0]["sourcetype"], "mandate:audit");
        assert_eq!(lines[1]["event"]["seq"], 2);
        assert_eq!(out.header("Authorization"), Some("Splunk tok-123"));
        assert_eq!(out.header("Idempotency-Key"), Some("k:1-2"));
        assert!(out.header("Mandate-Signature").is_none());
    }

    #[test]
    fn datadog_batches_are_arrays_of_log_entries() {
        let out = build(StreamKind::Datadog, &[event(1, Some("Ledger")), event(2, None)]);
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        let entries = body.as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["ddsource"], "mandate");
        assert_eq!(entries[0]["service"], "mandate");
        assert_eq!(entries[0]["ddtags"], format!("org_id:{},outcome:success", Uuid::from_u128(1)));
        assert_eq!(entries[0]["message"], "dana@acme.example agent.revoked Ledger");
        assert_eq!(entries[1]["message"], "dana@acme.example agent.revoked");
        assert_eq!(entries[0]["timestamp"], 1_700_000_000_123_i64);
        assert_eq!(entries[0]["mandate"]["seq"], 1);
        assert_eq!(out.header("DD-API-KEY"), Some("tok-123"));
        assert!(!format!("{out:?}").contains("tok-123"), "credentials are not printed");
    }

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes_with_jitter() {
        assert_eq!(backoff(1, 0.0), Duration::seconds(1));
        assert_eq!(backoff(2, 0.0), Duration::seconds(2));
        assert_eq!(backoff(5, 0.0), Duration::seconds(16));
        assert_eq!(backoff(9, 0.0), Duration::seconds(256));
        assert_eq!(backoff(10, 0.0), Duration::minutes(5));
        assert_eq!(backoff(i32::MAX, 0.0), Duration::minutes(5));
        assert_eq!(backoff(0, 0.0), Duration::seconds(1));
        assert_eq!(backoff(1, -1.0), Duration::milliseconds(800));
        assert_eq!(backoff(1, 1.0), Duration::milliseconds(1200));
        assert_eq!(backoff(4, 5.0), Duration::milliseconds(9600), "jitter is clamped to ±20%");
        for failures in 1..40 {
            for jitter in [-1.0, -0.5, 0.0, 0.5, 1.0] {
                let wait = backoff(failures, jitter);
                assert!(wait >= Duration::milliseconds(800) && wait <= Duration::minutes(5), "{failures} {jitter}");
            }
        }
        assert_eq!(backoff(12, -1.0), Duration::minutes(4));
    }

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
