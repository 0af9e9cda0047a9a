//! Admins and pending invitations as listed in Settings → Admins.

use super::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvitationRow {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub expired: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminsOverview {
    pub admins: Vec<AdminRow>,
    pub invitations: Vec<InvitationRow>,
}

/// Returned once when an invitation is created: the link is not stored and cannot be shown again.
/// (`Debug` leaves the link out: it carries the token.)
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedInvitation {
    pub email: String,
    pub role: Role,
    pub link: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for CreatedInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedInvitation")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}
