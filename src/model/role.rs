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

/// Something an admin may be allowed to do: one permission per resource, so each domain
/// operation names exactly what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// See the portal: dashboard, lists, settings pages.
    ViewPortal,
    /// Read the audit trail, export it and check its integrity.
    ReadAudit,
    /// Register agents, rotate their secrets, request scopes for them, revoke them.
    ManageAgents,
    /// Approve, deny or withdraw scope requests.
    DecideApprovals,
    /// The scope catalog and its group ceilings.
    ManageScopes,
    /// A catalog scope's risk level after creation (the four-eyes rule hangs on it).
    ChangeScopeRisk,
    /// SSO connections (test, turn off, delete) and email domains.
    ManageSso,
    /// What a connection trusts: creating one, turning it on, changing its issuer, client,
    /// certificates, metadata, claims or role mappings. Whoever holds it decides who signs in.
    ChangeSsoTrust,
    /// SCIM directories and their tokens.
    ManageDirectories,
    /// Audit log streams.
    ManageStreams,
    /// People: deactivate, reactivate, group membership by hand.
    ManagePeople,
    /// Invite admins, change roles, withdraw invitations.
    ManageAdmins,
    /// Platform API keys.
    ManageApiKeys,
    /// Organization settings: password sign-in policy.
    ManageOrganization,
    /// How long the audit trail is kept.
    ManageRetention,
}

impl Permission {
    pub const ALL: [Permission; 15] = [
        Permission::ViewPortal,
        Permission::ReadAudit,
        Permission::ManageAgents,
        Permission::DecideApprovals,
        Permission::ManageScopes,
        Permission::ChangeScopeRisk,
        Permission::ManageSso,
        Permission::ChangeSsoTrust,
        Permission::ManageDirectories,
        Permission::ManageStreams,
        Permission::ManagePeople,
        Permission::ManageAdmins,
        Permission::ManageApiKeys,
        Permission::ManageOrganization,
        Permission::ManageRetention,
    ];

    /// Why a role without this permission is refused, in words an admin can act on.
    pub fn refusal(self) -> &'static str {
        match self {
            Permission::ViewPortal => "viewing the portal",
            Permission::ReadAudit => "reading the audit trail",
            Permission::ManageAgents => "managing agents needs the owner or admin role",
            Permission::DecideApprovals => "deciding scope requests needs the approver role or higher",
            Permission::ManageScopes => "managing the scope catalog needs the owner or admin role",
            Permission::ChangeScopeRisk => "only owners change a scope's risk level",
            Permission::ManageSso => "managing single sign-on needs the owner or admin role",
            Permission::ChangeSsoTrust => {
                "only owners create connections, turn them on or change what they trust (issuer, client, certificates, claims, role mappings)"
            }
            Permission::ManageDirectories => "managing directories needs the owner or admin role",
            Permission::ManageStreams => "managing log streams needs the owner or admin role",
            Permission::ManagePeople => "managing people needs the owner or admin role",
            Permission::ManageAdmins => "only owners manage admins",
            Permission::ManageApiKeys => "only owners manage API keys",
            Permission::ManageOrganization => "only owners change organization settings",
            Permission::ManageRetention => "only owners change how long the audit trail is kept",
        }
    }
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

    /// The permission table. Owners can do everything; admins run the organization's
    /// integrations and agents but not its admins, keys or settings; approvers decide scope
    /// requests; auditors only read.
    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => matches!(
                permission,
                ViewPortal
                    | ReadAudit
                    | ManageAgents
                    | DecideApprovals
                    | ManageScopes
                    | ManageSso
                    | ManageDirectories
                    | ManageStreams
                    | ManagePeople
            ),
            Role::Approver => matches!(permission, ViewPortal | ReadAudit | DecideApprovals),
            Role::Auditor => matches!(permission, ViewPortal | ReadAudit),
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
        let allowed = |role: Role| Permission::ALL.iter().filter(|p| role.can(**p)).copied().collect::<Vec<_>>();
        assert_eq!(allowed(Role::Owner), Permission::ALL.to_vec());
        assert_eq!(
            allowed(Role::Admin),
            vec![
                ViewPortal,
                ReadAudit,
                ManageAgents,
                DecideApprovals,
                ManageScopes,
                ManageSso,
                ManageDirectories,
                ManageStreams,
                ManagePeople
            ]
        );
        assert_eq!(allowed(Role::Approver), vec![ViewPortal, ReadAudit, DecideApprovals]);
        assert_eq!(allowed(Role::Auditor), vec![ViewPortal, ReadAudit]);
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
