//! Portal roles and what each may do. The one table of permissions, used by the server to
//! authorize and by the UI to hide controls the admin cannot use.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Approver,
    Auditor,
}

/// Something an admin may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// See the portal: dashboard, lists, settings pages.
    ViewPortal,
    /// Read the audit trail and check its integrity.
    ViewAudit,
    /// Invite admins, change roles, revoke invitations.
    ManageAdmins,
    /// Register, change and revoke agents; manage connections and directories.
    ManageAgents,
    /// Approve or deny scope requests.
    ApproveScopes,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Approver, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Approver => "Approver",
            Role::Auditor => "Auditor",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::Owner => "Full control, including admins and organization settings",
            Role::Admin => "Manages agents, connections and directories",
            Role::Approver => "Approves or denies agents' scope requests",
            Role::Auditor => "Read-only access, including the audit trail",
        }
    }

    /// The permission table. Owners can do everything; auditors only read.
    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => matches!(permission, ViewPortal | ViewAudit | ManageAgents | ApproveScopes),
            Role::Approver => matches!(permission, ViewPortal | ViewAudit | ApproveScopes),
            Role::Auditor => matches!(permission, ViewPortal | ViewAudit),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown role {s:?}: expected owner, admin, approver or auditor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_table_is_pinned() {
        use Permission::*;
        let all = [ViewPortal, ViewAudit, ManageAdmins, ManageAgents, ApproveScopes];
        let allowed = |role: Role| all.iter().filter(|p| role.can(**p)).copied().collect::<Vec<_>>();
        assert_eq!(allowed(Role::Owner), all.to_vec());
        assert_eq!(allowed(Role::Admin), vec![ViewPortal, ViewAudit, ManageAgents, ApproveScopes]);
        assert_eq!(allowed(Role::Approver), vec![ViewPortal, ViewAudit, ApproveScopes]);
        assert_eq!(allowed(Role::Auditor), vec![ViewPortal, ViewAudit]);
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!(" Admin ".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
