//! Audit events as the Audit page and the platform API show them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEventView {
    pub seq: i64,
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
    /// Hex SHA-256 of this event's chain link.
    pub hash: String,
}

/// Filters of the audit list. Empty strings mean "any".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub action: String,
    pub actor: String,
    pub outcome: String,
    /// Show events with a sequence number below this one (paging backwards in time).
    pub before_seq: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `before_seq` to get the next (older) page; `None` on the last page.
    pub next_before_seq: Option<i64>,
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChainStatus {
    Intact { events: i64 },
    Broken { first_bad_seq: i64, reason: String },
}
