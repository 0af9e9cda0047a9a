//! Directories (SCIM provisioning) as the portal and the platform API show them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryRow {
    pub id: Uuid,
    pub name: String,
    pub provider: String,
    /// The first characters of the bearer token, to recognise it.
    pub token_prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub token_rotated_at: OffsetDateTime,
    pub users: i64,
    pub active_users: i64,
    pub groups: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_event_at: Option<OffsetDateTime>,
}

/// One request of the directory's IdP and its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub method: String,
    pub path: String,
    pub event: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: i32,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryUserRow {
    pub id: Uuid,
    pub user_name: String,
    pub display_name: Option<String>,
    pub email: String,
    pub active: bool,
    pub groups: Vec<String>,
    pub active_agents: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryGroupRow {
    pub id: Uuid,
    pub display_name: String,
    pub members: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryDetail {
    pub directory: DirectoryRow,
    pub scim_base_url: String,
    pub users: Vec<DirectoryUserRow>,
    pub groups: Vec<DirectoryGroupRow>,
    pub events: Vec<DirectoryEvent>,
}

/// Shown once, at creation and at token rotation. (`Debug` leaves the token out.)
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryCredentials {
    pub directory_id: Uuid,
    pub scim_base_url: String,
    pub bearer_token: String,
}

impl std::fmt::Debug for DirectoryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryCredentials")
            .field("directory_id", &self.directory_id)
            .field("scim_base_url", &self.scim_base_url)
            .finish_non_exhaustive()
    }
}
