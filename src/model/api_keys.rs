//! Platform API keys as Settings → API keys lists them (the keys themselves are never stored),
//! and the scopes a key can hold: the one table of what a key may do.

use crate::model::Permission;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// What an API key may do. A key holds the scopes an owner chose when creating it; every
/// `/api/v1` route, introspection and revocation checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApiKeyScope {
    /// Introspect and revoke agents' access tokens (a resource server).
    #[serde(rename = "introspect")]
    Introspect,
    /// Report agent actions, each with the access token the agent presented.
    #[serde(rename = "audit:write")]
    AuditWrite,
    /// Read and export the audit trail, its checkpoints and proofs.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read agents and scope requests, and list connections, directories and log streams (never secrets).
    #[serde(rename = "agents:read")]
    AgentsRead,
    /// Register, revoke agents and rotate their secrets; request scopes for them.
    #[serde(rename = "agents:write")]
    AgentsWrite,
    /// Approve or deny scope requests (never high-risk ones: those need a person).
    #[serde(rename = "approvals:decide")]
    ApprovalsDecide,
    /// Create directories (SCIM).
    #[serde(rename = "directories:write")]
    DirectoriesWrite,
    /// Create and change SSO connections.
    #[serde(rename = "sso:write")]
    SsoWrite,
    /// Create, change and delete log streams.
    #[serde(rename = "streams:write")]
    StreamsWrite,
    /// Change how long the audit trail is kept.
    #[serde(rename = "retention:write")]
    RetentionWrite,
    /// Invite admins and change their roles.
    #[serde(rename = "admins:write")]
    AdminsWrite,
}

impl ApiKeyScope {
    pub const ALL: [ApiKeyScope; 11] = [
        ApiKeyScope::Introspect,
        ApiKeyScope::AuditWrite,
        ApiKeyScope::AuditRead,
        ApiKeyScope::AgentsRead,
        ApiKeyScope::AgentsWrite,
        ApiKeyScope::ApprovalsDecide,
        ApiKeyScope::DirectoriesWrite,
        ApiKeyScope::SsoWrite,
        ApiKeyScope::StreamsWrite,
        ApiKeyScope::RetentionWrite,
        ApiKeyScope::AdminsWrite,
    ];

    /// A new key's scopes unless the owner chooses others: the resource-server profile.
    pub const DEFAULT: [ApiKeyScope; 2] = [ApiKeyScope::Introspect, ApiKeyScope::AuditWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyScope::Introspect => "introspect",
            ApiKeyScope::AuditWrite => "audit:write",
            ApiKeyScope::AuditRead => "audit:read",
            ApiKeyScope::AgentsRead => "agents:read",
            ApiKeyScope::AgentsWrite => "agents:write",
            ApiKeyScope::ApprovalsDecide => "approvals:decide",
            ApiKeyScope::DirectoriesWrite => "directories:write",
            ApiKeyScope::SsoWrite => "sso:write",
            ApiKeyScope::StreamsWrite => "streams:write",
            ApiKeyScope::RetentionWrite => "retention:write",
            ApiKeyScope::AdminsWrite => "admins:write",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ApiKeyScope::Introspect => "Introspect and revoke agents' access tokens",
            ApiKeyScope::AuditWrite => "Report agent actions, with the token the agent presented",
            ApiKeyScope::AuditRead => "Read and export the audit trail, checkpoints and proofs",
            ApiKeyScope::AgentsRead => "Read agents and scope requests; list connections, directories and streams",
            ApiKeyScope::AgentsWrite => "Register and revoke agents, rotate their secrets, request scopes",
            ApiKeyScope::ApprovalsDecide => "Approve or deny scope requests (never high-risk ones)",
            ApiKeyScope::DirectoriesWrite => "Create SCIM directories",
            ApiKeyScope::SsoWrite => "Create and change SSO connections",
            ApiKeyScope::StreamsWrite => "Create, change and delete log streams",
            ApiKeyScope::RetentionWrite => "Change how long the audit trail is kept",
            ApiKeyScope::AdminsWrite => "Invite admins and change their roles",
        }
    }

    /// The scope a key needs for an operation that names `permission`; `None`: keys never may
    /// (people, the scope catalog, API keys, organization settings).
    pub fn granting(permission: Permission) -> Option<ApiKeyScope> {
        use Permission::*;
        match permission {
            ViewPortal => Some(ApiKeyScope::AgentsRead),
            ReadAudit => Some(ApiKeyScope::AuditRead),
            ManageAgents => Some(ApiKeyScope::AgentsWrite),
            DecideApprovals => Some(ApiKeyScope::ApprovalsDecide),
            ManageSso | ChangeSsoTrust => Some(ApiKeyScope::SsoWrite),
            ManageDirectories => Some(ApiKeyScope::DirectoriesWrite),
            ManageStreams => Some(ApiKeyScope::StreamsWrite),
            ManageRetention => Some(ApiKeyScope::RetentionWrite),
            ManageAdmins => Some(ApiKeyScope::AdminsWrite),
            ManageScopes | ChangeScopeRisk | ManagePeople | ManageApiKeys | ManageOrganization => None,
        }
    }

    /// Parses a key's lifetime in days (`90` or `90d`, 1 to 3650).
    pub fn parse_days(text: &str) -> Result<i64, String> {
        text.trim()
            .trim_end_matches('d')
            .parse()
            .ok()
            .filter(|days| (1..=3650).contains(days))
            .ok_or_else(|| format!("{text:?} is not a number of days between 1 and 3650, such as 90d"))
    }

    /// Parses a comma- or space-separated list; an unknown scope is an error naming it.
    pub fn parse_list(input: &str) -> Result<Vec<ApiKeyScope>, String> {
        let mut scopes = input
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

impl fmt::Display for ApiKeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiKeyScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiKeyScope::ALL.into_iter().find(|scope| scope.as_str() == s.trim()).ok_or_else(|| {
            let known = ApiKeyScope::ALL.map(ApiKeyScope::as_str).join(", ");
            format!("unknown API key scope {s:?}: expected one of {known}")
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    /// The first characters, to recognise a key.
    pub key_prefix: String,
    pub scopes: Vec<ApiKeyScope>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiKeyRow {
    /// Keys from before scopes existed were migrated to every scope: the portal asks to narrow them.
    pub fn holds_every_scope(&self) -> bool {
        ApiKeyScope::ALL.iter().all(|scope| self.scopes.contains(scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_their_names_and_refuse_unknown_ones() {
        assert_eq!(
            ApiKeyScope::parse_list("introspect, audit:write introspect").unwrap(),
            vec![ApiKeyScope::Introspect, ApiKeyScope::AuditWrite]
        );
        for scope in ApiKeyScope::ALL {
            assert_eq!(scope.as_str().parse::<ApiKeyScope>(), Ok(scope));
            assert_eq!(serde_json::to_value(scope).unwrap(), scope.as_str());
        }
        let unknown = ApiKeyScope::parse_list("introspect,agents:admin").unwrap_err();
        assert!(unknown.contains("agents:admin") && unknown.contains("audit:read"), "{unknown}");
    }
}
