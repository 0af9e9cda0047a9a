//! Agents, their scopes and approvals, the scope catalog and people, as the portal and the
//! platform API show them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonRef {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub active: bool,
}

/// One scope of an agent and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentScope {
    pub request_id: Uuid,
    pub scope: String,
    pub risk: String,
    /// approved, pending, denied, expired, withdrawn or cancelled
    pub status: String,
    /// Approved, unexpired and allowed by the owner's groups: part of the mandate.
    pub in_mandate: bool,
    /// Approved but a group ceiling excludes the owner.
    pub blocked_by_ceiling: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    pub reason: String,
    pub decision_note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub client_id: String,
    pub owner: PersonRef,
    /// active or revoked
    pub status: String,
    pub scopes: Vec<AgentScope>,
    pub live_tokens: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_active_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentDetail {
    pub agent: AgentRow,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_reason: Option<String>,
    /// Agents that may receive this agent's tokens by token exchange.
    pub delegates: Vec<DelegateRow>,
    pub events: Vec<super::audit::AuditEventView>,
}

/// An agent designated to receive another agent's tokens by token exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DelegateRow {
    pub agent_id: Uuid,
    pub name: String,
    pub client_id: String,
    pub status: String,
    pub designated_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub designated_at: OffsetDateTime,
}

/// Filters of the agent list; empty strings mean "any".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentFilter {
    pub search: String,
    pub owner: String,
    pub status: String,
    pub scope: String,
}

/// Returned once at registration and at secret rotation: the secret is not stored.
/// (`Debug` leaves the secret out.)
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCredentials {
    pub agent_id: Uuid,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for AgentCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCredentials")
            .field("agent_id", &self.agent_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What a revocation would end, shown before confirming.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RevocationImpact {
    pub agents: Vec<String>,
    pub live_tokens: i64,
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScopeRequestRow {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub agent_name: String,
    pub owner: PersonRef,
    pub scope: String,
    pub scope_description: String,
    pub risk: String,
    pub reason: String,
    pub requested_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    pub status: String,
    /// The owner's groups do not allow this scope: approving it would not widen the mandate.
    pub blocked_by_ceiling: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRef {
    pub id: Uuid,
    pub display_name: String,
}

/// A group a scope's ceiling names. A deleted group stays in the ceiling (allowing no one) until
/// an admin changes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CeilingGroup {
    pub id: Uuid,
    pub display_name: String,
    pub deleted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScopeRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub risk: String,
    pub max_token_lifetime_seconds: i32,
    /// Empty: open to everyone.
    pub ceiling_groups: Vec<CeilingGroup>,
    pub agents_holding: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScopeCatalog {
    pub scopes: Vec<ScopeRow>,
    pub groups: Vec<GroupRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonRow {
    pub person: PersonRef,
    pub is_admin: bool,
    pub groups: Vec<String>,
    pub active_agents: i64,
    pub live_tokens: i64,
}
