//! Delivery of log streams: each pass sends every due stream its next batch (one request) and
//! moves its cursor only on a 2xx; failures back off exponentially. "Send test event" posts one
//! synthetic event the same way without storing anything. (The module above explains the
//! outbox and the at-least-once guarantee.)

use super::formats::{build_request, Batch, Outgoing};
use super::{
    decrypt_secret, StreamHttp, BASE_BACKOFF, BATCH_SIZE, ERROR_BODY_CHARS, MAX_BACKOFF, TEST_ACTION, TIMEOUT_SECONDS,
};
use crate::model::audit::AuditEventView;
use crate::model::streams::{StreamKind, StreamTestResult};
use crate::model::Permission;
use crate::server::domain::actor::{Actor, Caller};
use crate::server::domain::audit::{self, checkpoints, StoredEvent};
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Checkpoints per request (one is signed every few seconds, so a batch rarely holds more than one).
const CHECKPOINTS_PER_BATCH: i64 = 50;

/// Prefix of the webhook signing secrets Mandate generates.
/// Posts one synthetic `mandate.stream.test` event to the stream's destination now and says
/// how it answered. Nothing is stored: neither an audit event nor the stream's status.
/// Permission: log streams.
#[tracing::instrument(skip_all)]
pub async fn send_test(
    pool: &PgPool,
    master: &MasterKey,
    http: &StreamHttp,
    caller: Caller<'_>,
    stream_id: Uuid,
    now: OffsetDateTime,
) -> Result<StreamTestResult, DomainError> {
    caller.require(Permission::ManageStreams)?;
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
    let request = build_request(
        kind,
        &secret,
        Batch { org_id, stream_id, host: &http.host, events: &[event], idempotency_key: &key },
        now,
    )?;
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
        let mut work = Work::system(pool, now).await?;
        // Only the stream row is locked (`of s`): appending events must never wait on delivery.
        // language=PostgreSQL
        let Some(stream) = sqlx::query!(
            "select s.org_id, s.id, s.kind, s.url, s.secret_encrypted, s.cursor_seq, s.checkpoint_cursor, s.failures
             from audit_streams s join audit_chain_heads h on h.org_id = s.org_id
             where s.enabled and s.next_attempt_at <= $1 and s.id <> all($2)
               and (s.cursor_seq < h.last_seq
                    or exists (select 1 from audit_checkpoints c
                               where c.org_id = s.org_id and c.size > s.checkpoint_cursor and c.size <= s.cursor_seq))
             order by s.next_attempt_at
             limit 1
             for update of s skip locked",
            now,
            &visited
        )
        .fetch_optional(work.conn())
        .await?
        else {
            break;
        };
        visited.push(stream.id);
        let mut events = audit::events_after(pool, stream.org_id, stream.cursor_seq, BATCH_SIZE).await?;
        keep_contiguous(&mut events);
        let (first, last) = match (events.first(), events.last()) {
            (Some(first), Some(last)) => (first.seq, last.seq),
            _ => (stream.cursor_seq + 1, stream.cursor_seq),
        };
        // Each signed checkpoint follows the events it covers, so a copy lives outside the database.
        let signed =
            checkpoints::between(pool, stream.org_id, stream.checkpoint_cursor, last, CHECKPOINTS_PER_BATCH).await?;
        let checkpoint_cursor = signed.last().map_or(stream.checkpoint_cursor, |c| c.size);
        if events.is_empty() && signed.is_empty() {
            continue;
        }
        let count = events.len();
        let attempt =
            match (stream.kind.parse::<StreamKind>(), decrypt_secret(master, stream.id, &stream.secret_encrypted)) {
                (Ok(kind), Ok(secret)) => {
                    let mut entries: Vec<AuditEventView> = events.into_iter().map(audit::view).collect();
                    entries.extend(signed.iter().map(checkpoints::stream_entry));
                    let key = idempotency_key(stream.id, first, last, signed.last().map(|c| c.size));
                    let request = build_request(
                        kind,
                        &secret,
                        Batch {
                            org_id: stream.org_id,
                            stream_id: stream.id,
                            host: &http.host,
                            events: &entries,
                            idempotency_key: &key,
                        },
                        now,
                    )?;
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
                            checkpoint_cursor = greatest(checkpoint_cursor, $6),
                            delivered_events = delivered_events + $4, failures = 0,
                            next_attempt_at = $5, last_success_at = $5
                     where org_id = $1 and id = $2",
                    stream.org_id,
                    stream.id,
                    last,
                    count as i64,
                    now,
                    checkpoint_cursor
                )
                .execute(work.conn())
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
                .execute(work.conn())
                .await?;
            }
        }
        work.commit().await?;
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

/// `<stream>:<first_seq>-<last_seq>`, and `+c<size>` when the batch ends with checkpoints (the
/// largest one's size). A batch of only checkpoints has `first_seq > last_seq`.
pub fn idempotency_key(stream_id: Uuid, first_seq: i64, last_seq: i64, last_checkpoint: Option<i64>) -> String {
    match last_checkpoint {
        Some(size) => format!("{stream_id}:{first_seq}-{last_seq}+c{size}"),
        None => format!("{stream_id}:{first_seq}-{last_seq}"),
    }
}

/// Cuts a batch at the first gap in `seq`. The log has none (appends commit in order); a batch
/// may start after `cursor + 1` only where retention pruned events a stream had not received.
fn keep_contiguous(events: &mut Vec<StoredEvent>) {
    let Some(first) = events.first().map(|e| e.seq) else { return };
    let contiguous = events.iter().zip(first..).take_while(|(event, expected)| event.seq == *expected).count();
    events.truncate(contiguous);
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
    let outgoing = match builder.body(request.body).build() {
        Ok(outgoing) => outgoing,
        Err(err) => return Attempt::Failed { status: None, reason: describe(&err) },
    };
    if let Err(reason) = http.policy.check_url(outgoing.url()) {
        return Attempt::Failed { status: None, reason };
    }
    let response = match http.client.execute(outgoing).await {
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
}
