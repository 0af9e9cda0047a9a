//! The login plan: what an identity the IdP vouched for may become. The person is found by
//! (connection, issuer, subject); a first sign-in links by email only to a person who is not an
//! admin, only within the organization's verified domains and only when the IdP vouches for
//! the email; an admin links an identity to their account by running Test connection while
//! signed in. The portal role comes from an IdP-group mapping or an existing admin membership.
//! Every refusal is audited with its reason, and so is every success.

use crate::model::connections::{SsoFailure, StepStatus, TestStep};
use crate::model::Role;
use crate::server::domain::actor::{Actor, RequestMeta};
use crate::server::domain::audit::NewEvent;
use crate::server::domain::sso::attempts::Attempt;
use crate::server::domain::sso::fields::role_mappings;
use crate::server::domain::sso::identity::{record_failure, Refusal, SignInAt, SsoError, SsoIdentity};
use crate::server::domain::Work;
use crate::server::domain::{directory::people, org::admins, sso::domains, AdminSession, DomainError};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// What an identity becomes in the organization.
#[derive(Debug)]
enum Plan {
    Existing { person_id: Uuid, email: String, linked: bool, admin: Option<(Uuid, Role)>, role: Role },
    NewPerson { email: String, name: Option<String>, role: Role },
}

impl Plan {
    fn role(&self) -> Role {
        match self {
            Plan::Existing { role, .. } | Plan::NewPerson { role, .. } => *role,
        }
    }

    fn describe(&self) -> String {
        match self {
            Plan::Existing { email, linked: true, role, .. } => {
                format!("{email} signs in as {} (already linked)", role.label())
            }
            Plan::Existing { email, linked: false, role, .. } => {
                format!("{email} signs in as {} (linked on first sign-in)", role.label())
            }
            Plan::NewPerson { email, role, .. } => format!("{email} joins as {} through a group mapping", role.label()),
        }
    }
}

/// The most powerful role the IdP groups map to.
fn mapped_role(groups: &[String], mappings: &[crate::model::connections::RoleMapping]) -> Option<Role> {
    let rank = |role: Role| Role::ALL.iter().position(|r| *r == role).unwrap_or(usize::MAX);
    mappings.iter().filter(|m| groups.contains(&m.group)).map(|m| m.role).min_by_key(|r| rank(*r))
}

/// What a connection trusts an identity by: the IdP it now points at (OIDC issuer or SAML
/// entity id) and whether an owner said that IdP verifies emails.
pub(crate) struct ConnectionTrust {
    pub issuer: String,
    pub trusts_idp_email: bool,
}

pub(crate) async fn connection_trust(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
) -> Result<ConnectionTrust, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select coalesce(oidc_issuer, saml_idp_entity_id) as "issuer!", trusts_idp_email from connections
           where org_id = $1 and id = $2"#,
        org_id,
        connection_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok(ConnectionTrust { issuer: row.issuer, trusts_idp_email: row.trusts_idp_email })
}

impl ConnectionTrust {
    /// Refuses an identity verified against an IdP the connection no longer points at (an
    /// owner repointed it while the sign-in was under way).
    pub fn ensure_same_idp(&self, identity: &SsoIdentity) -> Result<(), Refusal> {
        if identity.issuer == self.issuer {
            Ok(())
        } else {
            Err(Refusal::new(
                SsoFailure::UnknownState,
                "the connection was pointed at another identity provider while this sign-in was under way",
            ))
        }
    }

    /// Whether the identity's email may link it to a person: the IdP verified it, per sign-in
    /// (`email_verified: true`) or for every email (an owner's setting on the connection).
    pub fn vouches_for_email(&self, identity: &SsoIdentity) -> bool {
        identity.email_verified == Some(true) || (self.trusts_idp_email && identity.email_verified != Some(false))
    }
}

/// The person an identity is linked to through this connection and its current IdP.
pub(crate) async fn linked_person(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    trust: &ConnectionTrust,
    subject: &str,
) -> Result<Option<Uuid>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        "select person_id from sso_identities where org_id = $1 and connection_id = $2 and issuer = $3 and subject = $4",
        org_id,
        connection_id,
        trust.issuer,
        subject
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// Links an identity to a person (first sign-in, or its holder confirming while signed in).
/// `false` when the identity was linked meanwhile (a concurrent sign-in or test run).
pub(crate) async fn link(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    trust: &ConnectionTrust,
    subject: &str,
    person_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, DomainError> {
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into sso_identities (org_id, connection_id, issuer, subject, person_id, created_at, last_login_at)
         values ($1, $2, $3, $4, $5, $6, $6) on conflict do nothing",
        org_id,
        connection_id,
        trust.issuer,
        subject,
        person_id,
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The subject as the audit trail shows it: a digest that correlates one person's sign-ins
/// within the organization without disclosing the IdP's identifier.
pub(crate) fn subject_digest(org_id: Uuid, trust: &ConnectionTrust, subject: &str) -> String {
    let digest = crate::server::domain::crypto::secrets::digest(&format!("{org_id}\n{}\n{subject}", trust.issuer));
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// What `identity` becomes through the connection, given what the connection trusts.
async fn plan(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    trust: &ConnectionTrust,
    identity: &SsoIdentity,
) -> Result<Plan, SsoError> {
    let email = identity.email.as_deref().map(str::trim).map(str::to_lowercase);
    trust.ensure_same_idp(identity)?;
    let mappings = role_mappings(&mut *conn, org_id, connection_id).await?;
    let mapped = mapped_role(&identity.groups, &mappings);
    let linked = linked_person(&mut *conn, org_id, connection_id, trust, &identity.subject).await?;
    let person_id = match linked {
        Some(person_id) => Some(person_id),
        None => {
            let Some(email) = email.as_deref() else {
                return Err(Refusal::new(
                    SsoFailure::MissingClaim,
                    "the ID token has no email claim (check the claim mapping)",
                )
                .into());
            };
            if identity.email_verified == Some(false) {
                return Err(Refusal::new(
                    SsoFailure::EmailNotVerified,
                    format!("the IdP says {email} is not verified"),
                )
                .into());
            }
            let domain = domains::of_email(email).unwrap_or_default();
            // language=PostgreSQL
            let verified = sqlx::query_scalar!(
                r#"select exists (select 1 from organization_domains where org_id = $1 and domain = $2 and verified_at is not null) as "verified!""#,
                org_id,
                domain
            )
            .fetch_one(&mut *conn)
            .await?;
            if !verified {
                return Err(Refusal::new(
                    SsoFailure::DomainNotVerified,
                    format!("{domain} is not a verified domain of this organization"),
                )
                .into());
            }
            // language=PostgreSQL
            let person = sqlx::query!(
                r#"select p.id, exists (select 1 from admins a where a.org_id = p.org_id and a.person_id = p.id) as "admin!",
                          (select i.connection_id from sso_identities i where i.org_id = p.org_id and i.person_id = p.id limit 1) as other_connection
                   from people p where p.org_id = $1 and p.email = $2"#,
                org_id,
                email
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(person) = &person {
                // An email claim never links to an admin account: whoever controls the IdP (or
                // the connection) would otherwise sign in as that admin.
                if person.admin {
                    return Err(Refusal::new(
                        SsoFailure::NotLinked,
                        format!("{email} is an admin whose account is not linked to this identity; an email alone never links to an admin (its holder links it by running Test connection while signed in)"),
                    )
                    .into());
                }
                if let Some(other) = person.other_connection {
                    let detail = if other == connection_id {
                        format!("{email} is already linked to another subject of this connection")
                    } else {
                        format!("{email} already signs in through connection {other}")
                    };
                    return Err(Refusal::new(SsoFailure::IdentityConflict, detail).into());
                }
                if !trust.vouches_for_email(identity) {
                    return Err(Refusal::new(
                        SsoFailure::EmailNotVerified,
                        format!("the IdP did not say {email} is verified and the connection is not marked as an IdP that verifies emails, so it does not link to the person with that email"),
                    )
                    .into());
                }
            }
            person.map(|p| p.id)
        }
    };
    let Some(person_id) = person_id else {
        let email = email.unwrap_or_default();
        return match mapped {
            // The new person gets this email for good (invitations and SCIM find people by
            // email), so the IdP must vouch for it here too.
            Some(_) if !trust.vouches_for_email(identity) => Err(Refusal::new(
                SsoFailure::EmailNotVerified,
                format!("the IdP did not say {email} is verified and the connection is not marked as an IdP that verifies emails, so no person is created with it"),
            )
            .into()),
            Some(role) => Ok(Plan::NewPerson { email, name: identity.name.clone(), role }),
            None => Err(no_access(&email, identity)),
        };
    };
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select p.email, p.active, p.admin_removed_at, a.id as "admin_id?", a.role as "role?"
           from people p left join admins a on a.org_id = p.org_id and a.person_id = p.id
           where p.org_id = $1 and p.id = $2"#,
        org_id,
        person_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !row.active {
        return Err(Refusal::new(SsoFailure::PersonInactive, format!("{} is deactivated", row.email)).into());
    }
    let admin = match (row.admin_id, row.role) {
        (Some(id), Some(role)) => Some((id, role.parse::<Role>().map_err(DomainError::Internal)?)),
        _ => None,
    };
    let role = match (admin, mapped) {
        (Some((_, Role::Owner)), _) => Role::Owner,
        (None, Some(_)) if row.admin_removed_at.is_some() => {
            return Err(Refusal::new(
                SsoFailure::NoAccess,
                format!("an owner removed {} from the portal; only a new invitation brings them back", row.email),
            )
            .into())
        }
        (_, Some(mapped)) => mapped,
        (Some((_, current)), None) => current,
        (None, None) => return Err(no_access(&row.email, identity)),
    };
    Ok(Plan::Existing { person_id, email: row.email, linked: linked.is_some(), admin, role })
}

fn no_access(email: &str, identity: &SsoIdentity) -> SsoError {
    Refusal::new(
        SsoFailure::NoAccess,
        format!(
            "{email} is not an admin and no group maps to a role (groups sent: {})",
            if identity.groups.is_empty() { "none".to_string() } else { identity.groups.join(", ") }
        ),
    )
    .into()
}

/// Signs in the identity the IdP vouched for: links it on first sign-in, creates or updates the
/// admin membership a group mapping grants, and audits the outcome either way.
pub async fn complete_login(
    pool: &PgPool,
    attempt: &Attempt,
    method: &str,
    identity: &SsoIdentity,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<AdminSession, SsoError> {
    match apply_login(pool, attempt, method, identity, meta, now).await {
        Err(SsoError::Refused(refusal)) => {
            record_failure(
                pool,
                SignInAt { org_id: attempt.org_id, connection_id: attempt.connection_id, method },
                &refusal,
                identity.email.as_deref(),
                meta,
                now,
            )
            .await?;
            Err(SsoError::Refused(refusal))
        }
        other => other,
    }
}

async fn apply_login(
    pool: &PgPool,
    attempt: &Attempt,
    method: &str,
    identity: &SsoIdentity,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<AdminSession, SsoError> {
    let (org_id, connection_id) = (attempt.org_id, attempt.connection_id);
    let mut work = Work::begin(pool, org_id, Actor::Anonymous, meta, now).await?;
    // language=PostgreSQL
    let enabled = sqlx::query_scalar!(
        "select enabled from connections where org_id = $1 and id = $2 for share",
        org_id,
        connection_id
    )
    .fetch_optional(work.conn())
    .await?;
    if enabled != Some(true) {
        return Err(Refusal::new(SsoFailure::ConnectionDisabled, "the connection is turned off or deleted").into());
    }
    let trust = connection_trust(work.conn(), org_id, connection_id).await?;
    let plan = plan(work.conn(), org_id, connection_id, &trust, identity).await?;
    let role = plan.role();
    let (person_id, previous_role) = match &plan {
        Plan::Existing { person_id, admin, .. } => (*person_id, admin.map(|(_, role)| role)),
        Plan::NewPerson { email, name, .. } => {
            // Created here or not at all: a person who appeared since the plan was made (an
            // invitation, SCIM) is not adopted by this identity.
            let Some(person_id) = people::create(work.conn(), org_id, email, name.as_deref(), now).await? else {
                return Err(Refusal::new(
                    SsoFailure::IdentityConflict,
                    format!("{email} joined the organization another way while signing in; sign in again"),
                )
                .into());
            };
            (person_id, None)
        }
    };
    let linked = matches!(plan, Plan::Existing { linked: true, .. });
    if linked {
        // language=PostgreSQL
        sqlx::query!(
            "update sso_identities set last_login_at = $5 where org_id = $1 and connection_id = $2 and issuer = $3 and subject = $4",
            org_id,
            connection_id,
            trust.issuer,
            identity.subject,
            now
        )
        .execute(work.conn())
        .await?;
    } else if !link(work.conn(), org_id, connection_id, &trust, &identity.subject, person_id, now).await? {
        return Err(Refusal::new(
            SsoFailure::IdentityConflict,
            "this identity was linked at the same moment; sign in again",
        )
        .into());
    }
    // language=PostgreSQL
    let admin_id = sqlx::query_scalar!(
        "insert into admins (org_id, id, person_id, role, last_login_at, created_at) values ($1, $2, $3, $4, $5, $5)
         on conflict (org_id, person_id) do update set role = excluded.role, last_login_at = excluded.last_login_at
         returning id",
        org_id,
        Uuid::new_v4(),
        person_id,
        role.as_str(),
        now
    )
    .fetch_one(work.conn())
    .await?;
    let email = identity.email.clone().unwrap_or_default();
    work.record(
        NewEvent::new(org_id, Actor::Admin { admin_id, label: email.clone() }, "login.succeeded")
            .target("admin", admin_id, &email)
            .details(json!({
                "method": method,
                "connection_id": connection_id,
                "subject_digest": subject_digest(org_id, &trust, &identity.subject),
                "role": role.as_str(),
                "previous_role": previous_role.map(Role::as_str),
                "first_sign_in": !linked,
                "idp_initiated": attempt.idp_initiated,
                "groups": identity.groups,
            })),
    )
    .await?;
    work.commit().await?;
    admins::load_session(pool, org_id, admin_id)
        .await?
        .ok_or_else(|| SsoError::Internal(DomainError::Internal("the admin vanished while signing in".into())))
}

/// What signing in with `identity` would do, without doing it (Test connection's last step).
pub(crate) async fn preview(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    trust: &ConnectionTrust,
    identity: &SsoIdentity,
) -> Result<TestStep, DomainError> {
    let step = match plan(conn, org_id, connection_id, trust, identity).await {
        Ok(plan) => TestStep { step: "Mapped identity".into(), status: StepStatus::Ok, detail: plan.describe() },
        Err(SsoError::Refused(refusal)) => TestStep {
            step: "Mapped identity".into(),
            status: StepStatus::Failed,
            detail: format!("{} — {}", refusal.detail, refusal.failure.message()),
        },
        Err(SsoError::Internal(err)) => return Err(err),
    };
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::connections::RoleMapping;

    #[test]
    fn the_most_powerful_mapped_role_wins() {
        let mappings = vec![
            RoleMapping { group: "auditors".into(), role: Role::Auditor },
            RoleMapping { group: "admins".into(), role: Role::Admin },
        ];
        let groups = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(mapped_role(&groups(&["auditors", "admins"]), &mappings), Some(Role::Admin));
        assert_eq!(mapped_role(&groups(&["auditors"]), &mappings), Some(Role::Auditor));
        assert_eq!(mapped_role(&groups(&["Admins"]), &mappings), None, "group names compare exactly");
        assert_eq!(mapped_role(&[], &mappings), None);
    }
}
