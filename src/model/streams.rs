//! Log streams (audit events pushed to a customer's webhook, Splunk or Datadog) as Settings →
//! Log streams and the platform API show them. A stream's secret is never in these types,
//! except once, in `CreatedStream`, for the webhook secret Mandate generated.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a stream sends events, and so the request format it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// JSON batches signed with an HMAC secret that Mandate generates.
    Webhook,
    /// Splunk HTTP Event Collector (the token is the user's).
    SplunkHec,
    /// Datadog Logs intake (the API key is the user's).
    Datadog,
}

impl StreamKind {
    pub const ALL: [StreamKind; 3] = [StreamKind::Webhook, StreamKind::SplunkHec, StreamKind::Datadog];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Webhook => "webhook",
            StreamKind::SplunkHec => "splunk_hec",
            StreamKind::Datadog => "datadog",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            StreamKind::Webhook => "Webhook (HMAC-signed)",
            StreamKind::SplunkHec => "Splunk HTTP Event Collector",
            StreamKind::Datadog => "Datadog Logs",
        }
    }

    /// An example destination URL for the form.
    pub fn url_placeholder(self) -> &'static str {
        match self {
            StreamKind::Webhook => "https://siem.example.com/mandate/events",
            StreamKind::SplunkHec => "https://splunk.example.com:8088/services/collector/event",
            StreamKind::Datadog => "https://http-intake.logs.datadoghq.com/api/v2/logs",
        }
    }

    /// What the user must give as the stream's secret (`None`: Mandate generates it).
    pub fn secret_label(self) -> Option<&'static str> {
        match self {
            StreamKind::Webhook => None,
            StreamKind::SplunkHec => Some("HEC token"),
            StreamKind::Datadog => Some("Datadog API key"),
        }
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StreamKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StreamKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s.trim())
            .ok_or_else(|| format!("unknown stream kind {s:?}: expected webhook, splunk_hec or datadog"))
    }
}

/// How a stream is doing, for its badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    /// Turned off: keeps its place in the log and catches up when turned back on.
    Disabled,
    /// The last attempt failed; the next one is at `next_attempt_at`.
    Retrying,
    /// The last attempt (if any) succeeded.
    Healthy,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Disabled => "disabled",
            StreamStatus::Retrying => "retrying",
            StreamStatus::Healthy => "healthy",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRow {
    pub id: Uuid,
    pub name: String,
    pub kind: StreamKind,
    pub url: String,
    pub enabled: bool,
    pub status: StreamStatus,
    /// Every event up to this sequence number was acknowledged by the destination.
    pub cursor_seq: i64,
    pub delivered_events: i64,
    /// Events recorded but not yet acknowledged.
    pub lag: i64,
    /// Failed attempts in a row (0 after a success).
    pub failures: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// The last failure's reason (kept after a later success, with its time).
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl StreamRow {
    pub fn status_of(enabled: bool, failures: i32) -> StreamStatus {
        match (enabled, failures) {
            (false, _) => StreamStatus::Disabled,
            (true, 0) => StreamStatus::Healthy,
            (true, _) => StreamStatus::Retrying,
        }
    }
}

/// A stream just created. `secret` is the webhook's signing secret, shown this once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedStream {
    pub stream_id: Uuid,
    pub kind: StreamKind,
    pub secret: Option<String>,
}

impl fmt::Debug for CreatedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedStream")
            .field("stream_id", &self.stream_id)
            .field("kind", &self.kind)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The outcome of "Send test event" (nothing is stored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamTestResult {
    /// The destination answered 2xx.
    pub ok: bool,
    /// The HTTP status, when the destination answered at all.
    pub status: Option<u16>,
    /// "HTTP 200 OK", or what went wrong.
    pub message: String,
    pub elapsed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_names_only() {
        for kind in StreamKind::ALL {
            assert_eq!(kind.as_str().parse::<StreamKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!("splunk".parse::<StreamKind>().is_err());
    }

    #[test]
    fn status_follows_enabled_and_failures() {
        assert_eq!(StreamRow::status_of(false, 3), StreamStatus::Disabled);
        assert_eq!(StreamRow::status_of(true, 0), StreamStatus::Healthy);
        assert_eq!(StreamRow::status_of(true, 2), StreamStatus::Retrying);
    }

    #[test]
    fn created_streams_do_not_print_their_secret() {
        let created =
            CreatedStream { stream_id: Uuid::nil(), kind: StreamKind::Webhook, secret: Some("mnd_whsec_x".into()) };
        assert!(!format!("{created:?}").contains("mnd_whsec_x"));
    }
}
