//! The signed-in admin as the portal and `GET /auth/me` see them.

use super::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub person: MePerson,
    pub organization: MeOrganization,
    pub role: Role,
    pub admin_id: Uuid,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MePerson {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeOrganization {
    pub id: Uuid,
    pub name: String,
}

/// What the setup page shows about an invitation before the password is chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvitationPreview {
    pub organization_name: String,
    pub email: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}
