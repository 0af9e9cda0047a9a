//! Who is acting, and from where. The proofs of who is calling — `AdminSession` (a signed-in
//! admin with a role), `ApiKeyPrincipal` (a live platform API key) and, in `directory`, the
//! `Directory` a SCIM token proves — have private fields: only the domain builds them, where it
//! authenticates the caller, and the platform operator (CLI, demo seeder) through constructors
//! named `for_operator`. Domain operations take them and check the permission they need first.

use crate::model::api_keys::ApiKeyScope;
use crate::model::{Permission, Role};
use crate::server::domain::DomainError;
use uuid::Uuid;

/// A signed-in admin, loaded fresh from the database on every request (so a role change or a
/// deactivation takes effect at once). Built only by `org::admins::load_session`.
#[derive(Clone, Debug)]
pub struct AdminSession {
    org_id: Uuid,
    org_name: String,
    admin_id: Uuid,
    person_id: Uuid,
    email: String,
    display_name: String,
    role: Role,
}

impl AdminSession {
    /// The proof, once the session's admin was loaded and found active.
    pub(in crate::server::domain) fn authenticated(
        org_id: Uuid,
        org_name: String,
        admin_id: Uuid,
        person_id: Uuid,
        email: String,
        display_name: String,
        role: Role,
    ) -> AdminSession {
        AdminSession { org_id, org_name, admin_id, person_id, email, display_name, role }
    }

    pub fn org_id(&self) -> Uuid {
        self.org_id
    }

    pub fn org_name(&self) -> &str {
        &self.org_name
    }

    pub fn admin_id(&self) -> Uuid {
        self.admin_id
    }

    pub fn person_id(&self) -> Uuid {
        self.person_id
    }

    pub fn email(&self) -> &str {
        &self.email
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Fails unless this admin's role grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(permission.refusal()))
        }
    }
}

/// The organization an API key acts for. Built only by `org::api_keys::authenticate` (and, for
/// the platform operator, `for_operator`).
#[derive(Clone, Debug)]
pub struct ApiKeyPrincipal {
    org_id: Uuid,
    key_id: Uuid,
    name: String,
    scopes: Vec<ApiKeyScope>,
}

impl ApiKeyPrincipal {
    /// The proof, once a presented key matched a live one.
    pub(in crate::server::domain) fn authenticated(
        org_id: Uuid,
        key_id: Uuid,
        name: String,
        scopes: Vec<ApiKeyScope>,
    ) -> ApiKeyPrincipal {
        ApiKeyPrincipal { org_id, key_id, name, scopes }
    }

    /// The platform operator acting through one of an organization's keys (the demo seeder's
    /// resource server). Never reachable from a request.
    pub fn for_operator(org_id: Uuid, key_id: Uuid, name: String, scopes: Vec<ApiKeyScope>) -> ApiKeyPrincipal {
        ApiKeyPrincipal { org_id, key_id, name, scopes }
    }

    pub fn scopes(&self) -> &[ApiKeyScope] {
        &self.scopes
    }

    /// Fails unless an owner gave this key `scope`.
    pub fn require(&self, scope: ApiKeyScope) -> Result<(), DomainError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(DomainError::NotAllowed(format!(
                "This API key does not hold the {scope} scope. An owner can create a key that holds it in Settings → API keys."
            )))
        }
    }

    pub fn org_id(&self) -> Uuid {
        self.org_id
    }

    pub fn key_id(&self) -> Uuid {
        self.key_id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn actor(&self) -> Actor {
        Actor::ApiKey { key_id: self.key_id, label: format!("API key {}", self.name) }
    }
}

/// Who asks for an operation that admins, API keys and the operator can all perform.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'a> {
    Admin(&'a AdminSession),
    ApiKey(&'a ApiKeyPrincipal),
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

    /// Admins need the permission in their role, API keys the scope that grants it (some
    /// permissions no key can hold); the operator acts for the whole organization.
    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        match self {
            Caller::Admin(admin) => admin.require(permission),
            Caller::ApiKey(key) => match ApiKeyScope::granting(permission) {
                Some(scope) => key.require(scope),
                None => Err(DomainError::NotAllowed(format!(
                    "API keys cannot do this: {}. Sign in to the portal.",
                    permission.refusal()
                ))),
            },
            Caller::Operator { .. } => Ok(()),
        }
    }

    /// The admin behind the call, if an admin.
    pub fn admin_id(&self) -> Option<Uuid> {
        match self {
            Caller::Admin(admin) => Some(admin.admin_id),
            _ => None,
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
