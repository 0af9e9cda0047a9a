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
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
    /// The person the event is about (an agent action's human, a changed person), when known.
    pub person_id: Option<Uuid>,
    /// The agent the event is about (acting or acted on), when known.
    pub agent_id: Option<Uuid>,
    /// Hex SHA-256 of the previous event's chain link (zeros for the first event).
    pub prev_hash: String,
    /// Hex SHA-256 of this event's chain link.
    pub hash: String,
}

/// Filters of the audit list. Empty strings mean "any".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    pub action: String,
    /// Free text matched against the actor's and the target's names.
    pub actor: String,
    pub outcome: String,
    /// A person's email or id: what they did, and what their agents did for them.
    pub person: String,
    /// An agent's name, client id or id: what it did and what was done to it.
    pub agent: String,
    /// Time range, inclusive: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` (UTC) or RFC 3339.
    pub from: String,
    pub to: String,
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

impl AuditFilter {
    /// The filter as URL query pairs (empty ones left out), for links and exports.
    pub fn query_pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("action", self.action.as_str()),
            ("actor", self.actor.as_str()),
            ("outcome", self.outcome.as_str()),
            ("person", self.person.as_str()),
            ("agent", self.agent.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChainStatus {
    /// Every event's hash matches its contents and predecessor, the tree of every stored
    /// checkpoint has its signed root, and every signature verifies.
    Intact {
        /// Events in the log (after the retention boundary).
        events: i64,
        /// Signed checkpoints verified.
        checkpoints: i64,
        /// Size of the newest signed checkpoint (events after it await the next one).
        signed_size: i64,
        /// Events `1..=pruned_through` were removed by retention at a checkpoint.
        pruned_through: i64,
    },
    Broken {
        first_bad_seq: i64,
        reason: String,
    },
}

/// A signed statement of an organization's audit log: its first `size` events have the RFC 9162
/// Merkle root `root_hash`. The Ed25519 signature covers exactly this text (LF line ends):
/// `mandate audit checkpoint v1\norg <org_id>\nsize <size>\nroot <root_hash>\ntime <unix seconds>\n`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub org_id: Uuid,
    pub size: i64,
    /// Hex SHA-256 Merkle root.
    pub root_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub signed_at: OffsetDateTime,
    /// Which published key signed (see `/api/v1/audit/keys`).
    pub key_id: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
}

/// RFC 9162 §2.1.3 inclusion proof of one event in a checkpoint's tree. The leaf is
/// `SHA-256(0x00 ‖ event_hash)` at index `seq - 1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub seq: i64,
    pub leaf_index: i64,
    pub event_hash: String,
    pub leaf_hash: String,
    pub tree_size: i64,
    /// Hex node hashes, leaf to root.
    pub audit_path: Vec<String>,
    pub checkpoint: Checkpoint,
}

/// RFC 9162 §2.1.4 consistency proof: the tree of `from` is a prefix of the tree of `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: Checkpoint,
    pub to: Checkpoint,
    pub proof: Vec<String>,
}

/// What the Audit page shows about the log's integrity before anyone clicks Verify.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditIntegrity {
    /// Events appended so far (the chain head).
    pub events: i64,
    /// The newest signed checkpoint, if one was signed yet.
    pub checkpoint: Option<Checkpoint>,
    /// Events `1..=pruned_through` were removed by retention.
    pub pruned_through: i64,
    pub retention_days: i32,
}

impl AuditEventView {
    /// The chain of authority behind a reported agent action, in plain words: who approved
    /// what, for which agent, acting for whom, with which token, doing what. `None` for events
    /// that are not agent actions.
    pub fn authority_story(&self) -> Option<Vec<String>> {
        let d = &self.details;
        if d.get("kind").and_then(|k| k.as_str()) != Some("agent_action") {
            return None;
        }
        let text = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let short = |s: String| s.chars().take(8).collect::<String>();
        let when = |s: String| match s.get(..16) {
            Some(minutes) => format!("{} UTC", minutes.replace('T', " ")),
            None => s,
        };
        let agent = text(&d["agent"], "name");
        let person = format!("{} <{}>", text(&d["person"], "name"), text(&d["person"], "email"));
        let mut lines = Vec::new();
        let approvals = d.get("approvals").and_then(|a| a.as_array()).cloned().unwrap_or_default();
        let root_agent = d
            .get("delegation")
            .and_then(|a| a.as_array())
            .and_then(|a| a.last())
            .map(|a| text(a, "name"))
            .unwrap_or_else(|| agent.clone());
        for approval in &approvals {
            let by = approval.get("approved_by").and_then(|x| x.as_str()).unwrap_or("an approver");
            let mut line = format!("{by} approved {} for agent {root_agent}", text(approval, "scope"));
            let at = text(approval, "approved_at");
            if !at.is_empty() {
                line.push_str(&format!(" on {}", when(at)));
            }
            let until = text(approval, "expires_at");
            if !until.is_empty() {
                line.push_str(&format!(", until {}", when(until)));
            }
            lines.push(line);
        }
        if approvals.is_empty() {
            lines.push("No approval stands behind the scopes used.".to_string());
        }
        let via = d
            .get("delegation")
            .and_then(|a| a.as_array())
            .filter(|a| !a.is_empty())
            .map(|a| {
                let names: Vec<String> = a.iter().map(|x| text(x, "name")).collect();
                format!(", delegated through {}", names.join(" → "))
            })
            .unwrap_or_default();
        lines.push(format!("Agent {agent} acts for {person}{via}"));
        let token = &d["token"];
        lines.push(format!(
            "Token {}… under mandate {}… carrying {} ({} when reported)",
            short(text(token, "jti")),
            short(text(token, "mandate_id")),
            token
                .get("scopes")
                .and_then(|s| s.as_array())
                .map(|s| { s.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ") })
                .unwrap_or_default(),
            text(token, "status"),
        ));
        let target = self.target_label.clone().map(|t| format!(" on {t}")).unwrap_or_default();
        let reporter = match text(&d["reported_by"], "type").as_str() {
            "api_key" => format!("reported by API key {}", text(&d["reported_by"], "name")),
            _ => "reported by the agent".to_string(),
        };
        lines.push(format!("Action {}{target}: {} ({reporter})", self.action, self.outcome));
        Some(lines)
    }
}
