//! Who is acting, and from where. An `AdminSession` is the proof that a signed-in admin with a
//! role is calling; domain operations take it and check the permission they need first.

use crate::model::{Permission, Role};
use crate::server::domain::DomainError;
use uuid::Uuid;

/// A signed-in admin, loaded fresh from the database on every request (so a role change or a
/// deactivation takes effect at once).
#[derive(Clone, Debug)]
pub struct AdminSession {
    pub org_id: Uuid,
    pub org_name: String,
    pub admin_id: Uuid,
    pub person_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

impl AdminSession {
    /// Fails unless this admin's role grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(match permission {
                Permission::ViewPortal => "viewing the portal",
                Permission::ViewAudit => "reading the audit trail",
                Permission::ManageAdmins => "only owners manage admins",
                Permission::ManageAgents => "managing agents needs the owner or admin role",
                Permission::ApproveScopes => "approving scopes needs the approver role or higher",
            }))
        }
    }
}

/// Who asks for an operation that admins, API keys and the operator can all perform.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'a> {
    Admin(&'a AdminSession),
    ApiKey(&'a crate::server::domain::org::api_keys::ApiKeyPrincipal),
    /// The platform operator through the CLI, acting in one organization.
    Operator {
        org_id: Uuid,
    },
}

impl Caller<'_> {
    pub fn org_id(&self) -> Uuid {
        match self {
            Caller::Admin(admin) => admin.org_id,
            Caller::ApiKey(key) => key.org_id,
            Caller::Operator { org_id } => *org_id,
        }
    }

    pub fn actor(&self) -> Actor {
        match self {
            Caller::Admin(admin) => Actor::admin(admin),
            Caller::ApiKey(key) => key.actor(),
            Caller::Operator { .. } => Actor::Operator,
        }
    }

    /// Admins need the permission; API keys and the operator act for the whole organization.
    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        match self {
            Caller::Admin(admin) => admin.require(permission),
            Caller::ApiKey(_) | Caller::Operator { .. } => Ok(()),
        }
    }

    /// The person behind the call, if a person.
    pub fn person_id(&self) -> Option<Uuid> {
        match self {
            Caller::Admin(admin) => Some(admin.person_id),
            _ => None,
        }
    }
}

/// Where a request came from; recorded with audit events.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// The author of an audit event.
#[derive(Clone, Debug)]
pub enum Actor {
    Admin {
        admin_id: Uuid,
        label: String,
    },
    /// The platform operator, through the CLI.
    Operator,
    /// An unauthenticated caller (failed sign-in).
    Anonymous,
    ApiKey {
        key_id: Uuid,
        label: String,
    },
    /// An AI agent, authenticated by its credentials or an access token.
    Agent {
        agent_id: Uuid,
        label: String,
    },
    /// A directory (the IdP's SCIM client), authenticated by the directory's bearer token.
    Directory {
        directory_id: Uuid,
        label: String,
    },
}

impl Actor {
    pub fn admin(session: &AdminSession) -> Actor {
        Actor::Admin { admin_id: session.admin_id, label: session.email.clone() }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Admin { .. } => "admin",
            Actor::Operator => "operator",
            Actor::Anonymous => "anonymous",
            Actor::ApiKey { .. } => "api_key",
            Actor::Agent { .. } => "agent",
            Actor::Directory { .. } => "directory",
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Actor::Admin { admin_id, .. } => Some(admin_id.to_string()),
            Actor::ApiKey { key_id, .. } => Some(key_id.to_string()),
            Actor::Agent { agent_id, .. } => Some(agent_id.to_string()),
            Actor::Directory { directory_id, .. } => Some(directory_id.to_string()),
            Actor::Operator | Actor::Anonymous => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Actor::Admin { label, .. }
            | Actor::ApiKey { label, .. }
            | Actor::Agent { label, .. }
            | Actor::Directory { label, .. } => label.clone(),
            Actor::Operator => "platform operator".to_string(),
            Actor::Anonymous => "anonymous".to_string(),
        }
    }
}
