//! The wire formats of log stream destinations: a webhook body signed with HMAC-SHA256
//! (`Mandate-Signature: t=…,v1=…`), Splunk HEC's newline-separated events, and Datadog's Logs
//! intake array. Requests carry credentials and are never printed.

use super::Secret;
use crate::model::audit::AuditEventView;
use crate::model::streams::StreamKind;
use crate::server::domain::DomainError;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of the webhook signing secrets Mandate generates.
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

/// One batch of events for one stream.
pub(super) struct Batch<'a> {
    pub org_id: Uuid,
    pub stream_id: Uuid,
    /// The host events name as their origin (Mandate's public host).
    pub host: &'a str,
    pub events: &'a [AuditEventView],
    pub idempotency_key: &'a str,
}

/// The request of one batch for a destination kind (see the module documentation).
pub(super) fn build_request(
    kind: StreamKind,
    secret: &Secret,
    batch: Batch<'_>,
    now: OffsetDateTime,
) -> Result<Outgoing, DomainError> {
    let Batch { org_id, stream_id, host, events, idempotency_key } = batch;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let batch = Batch {
            org_id: Uuid::from_u128(1),
            stream_id: Uuid::from_u128(2),
            host: "mandate.example",
            events,
            idempotency_key: "k:1-2",
        };
        build_request(kind, &secret, batch, now).unwrap()
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
}
