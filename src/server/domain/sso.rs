//! Single sign-on rules, whatever the protocol: which connection an email signs in through, the
//! sign-in attempts in flight (single use, bound to the browser, 10 minutes), and what an
//! identity the IdP vouched for may become — the person is found by (connection, subject), a
//! first sign-in links by email only within the organization's verified domains, and the portal
//! role comes from an IdP-group mapping or an existing admin membership. Every refusal is
//! audited with its reason; so is every success. Test connection runs are kept with their steps.

use super::actor::{Actor, Caller, RequestMeta};
use super::audit::{self, NewEvent};
use super::connections::role_mappings;
use super::{admins, domains, people, secrets, AdminSession, DomainError};
use crate::model::connections::{SsoFailure, StepStatus, TestStep};
use crate::model::{Permission, Role};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long a sign-in may stay at the IdP.
pub const ATTEMPT_LIFETIME: Duration = Duration::minutes(10);

/// What the IdP vouched for, read from the verified part of its answer only.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SsoIdentity {
    pub subject: String,
    pub email: Option<String>,
    /// `Some(false)` when the IdP says the address is not verified.
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// A sign-in that did not complete, with the detail for the audit log.
#[derive(Debug)]
pub struct Refusal {
    pub failure: SsoFailure,
    pub detail: String,
}

impl Refusal {
    pub fn new(failure: SsoFailure, detail: impl Into<String>) -> Refusal {
        Refusal { failure, detail: detail.into() }
    }
}

/// Either a refusal to show the person, or a fault of ours.
#[derive(Debug)]
pub enum SsoError {
    Refused(Refusal),
    Internal(DomainError),
}

impl From<DomainError> for SsoError {
    fn from(err: DomainError) -> Self {
        SsoError::Internal(err)
    }
}

impl From<sqlx::Error> for SsoError {
    fn from(err: sqlx::Error) -> Self {
        SsoError::Internal(err.into())
    }
}

impl From<Refusal> for SsoError {
    fn from(refusal: Refusal) -> Self {
        SsoError::Refused(refusal)
    }
}

/// A connection to send a browser to.
#[derive(Clone, Debug)]
pub struct Target {
    pub org_id: Uuid,
    pub connection_id: Uuid,
    pub kind: String,
}

/// The enabled connection that addresses at `email`'s domain sign in through: the domain must
/// be verified; with several enabled connections, the oldest.
pub async fn route_email(pool: &PgPool, email: &str) -> Result<Option<Target>, DomainError> {
    let Some(domain) = domains::of_email(email) else { return Ok(None) };
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        Target,
        "select c.org_id, c.id as connection_id, c.kind
         from organization_domains d
         join connections c on c.org_id = d.org_id and c.enabled
         where d.domain = $1 and d.verified_at is not null
         order by c.created_at limit 1",
        domain
    )
    .fetch_optional(pool)
    .await?)
}

/// A connection by id (sign-in links naming one).
pub async fn connection_target(pool: &PgPool, connection_id: Uuid) -> Result<Option<(Target, bool)>, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query!("select org_id, kind, enabled from connections where id = $1", connection_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|row| (Target { org_id: row.org_id, connection_id, kind: row.kind }, row.enabled)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Login,
    Test,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Test => "test",
        }
    }
}

/// The values of a new attempt: `state` and `nonce` go to the IdP; `binding` goes into a cookie
/// of this browser only (and doubles as the PKCE code verifier, so the database never holds it).
pub struct NewAttempt {
    pub state: String,
    pub nonce: String,
    pub binding: String,
}

fn random() -> String {
    secrets::generate("")
}

pub async fn begin_attempt(
    pool: &PgPool,
    target: &Target,
    purpose: Purpose,
    next_path: Option<&str>,
    test_id: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<NewAttempt, DomainError> {
    let attempt = NewAttempt { state: random(), nonce: random(), binding: random() };
    // language=PostgreSQL
    sqlx::query!(
        "insert into sso_attempts (id, org_id, connection_id, state_hash, binding_hash, nonce, purpose, next_path, test_id, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        Uuid::new_v4(),
        target.org_id,
        target.connection_id,
        secrets::digest(&attempt.state),
        secrets::digest(&attempt.binding),
        attempt.nonce,
        purpose.as_str(),
        next_path,
        test_id,
        now,
        now + ATTEMPT_LIFETIME
    )
    .execute(pool)
    .await?;
    Ok(attempt)
}

/// An attempt that came back, checked and used up.
#[derive(Debug)]
pub struct Attempt {
    pub id: Uuid,
    pub org_id: Uuid,
    pub connection_id: Uuid,
    pub nonce: String,
    pub purpose: Purpose,
    pub next_path: Option<String>,
    pub test_id: Option<Uuid>,
    /// The browser's cookie value (the PKCE verifier).
    pub binding: String,
}

/// Takes the attempt `state` names: known, not used before, not expired, and coming back to the
/// browser that started it. It is used up whatever the outcome; refusals are audited.
pub async fn take_attempt(
    pool: &PgPool,
    state: &str,
    binding: Option<&str>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<Attempt, SsoError> {
    if state.is_empty() || state.len() > 200 {
        return Err(Refusal::new(SsoFailure::UnknownState, "no state parameter").into());
    }
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select id, org_id, connection_id, binding_hash, nonce, purpose, next_path, test_id, expires_at, used_at
         from sso_attempts where state_hash = $1 for update",
        secrets::digest(state)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(Refusal::new(SsoFailure::UnknownState, "the state is not one Mandate issued").into());
    };
    // language=PostgreSQL
    sqlx::query!("update sso_attempts set used_at = $2 where id = $1 and used_at is null", row.id, now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let refusal = if row.used_at.is_some() {
        Some(Refusal::new(SsoFailure::StateReplayed, "the state was already used"))
    } else if row.expires_at <= now {
        Some(Refusal::new(SsoFailure::Expired, "the sign-in started more than 10 minutes ago"))
    } else if !binding.is_some_and(|b| bool::from(secrets::digest(b).ct_eq(&row.binding_hash))) {
        Some(Refusal::new(
            SsoFailure::BrowserMismatch,
            "the browser's sign-in cookie is missing or belongs to another sign-in",
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        record_failure(pool, row.org_id, row.connection_id, "oidc", &refusal, None, meta, now).await?;
        return Err(refusal.into());
    }
    Ok(Attempt {
        id: row.id,
        org_id: row.org_id,
        connection_id: row.connection_id,
        nonce: row.nonce,
        purpose: purpose_of(&row.purpose),
        next_path: row.next_path,
        test_id: row.test_id,
        binding: binding.unwrap_or_default().to_string(),
    })
}

fn purpose_of(purpose: &str) -> Purpose {
    if purpose == "test" {
        Purpose::Test
    } else {
        Purpose::Login
    }
}

/// The SAML AuthnRequest id of an attempt (an XML ID must not start with a digit).
pub fn saml_request_id(state: &str) -> String {
    format!("_{state}")
}

/// Takes the attempt a SAML response answers, by the request id it names: this connection's,
/// not used before, not expired. Used up whatever the outcome; refusals are audited.
pub async fn take_saml_attempt(
    pool: &PgPool,
    org_id: Uuid,
    connection_id: Uuid,
    request_id: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<Attempt, SsoError> {
    let state = request_id.strip_prefix('_').unwrap_or("");
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select id, org_id, connection_id, nonce, purpose, next_path, test_id, expires_at, used_at
         from sso_attempts where state_hash = $1 and connection_id = $2 for update",
        secrets::digest(state),
        connection_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let refusal = match &row {
        None => Some(Refusal::new(
            SsoFailure::SamlInResponseTo,
            format!("InResponseTo {request_id:?} is not an outstanding request of this connection"),
        )),
        Some(row) if row.used_at.is_some() => {
            Some(Refusal::new(SsoFailure::SamlInResponseTo, "the request this answers was already used"))
        }
        Some(row) if row.expires_at <= now => {
            Some(Refusal::new(SsoFailure::Expired, "the sign-in started more than 10 minutes ago"))
        }
        Some(_) => None,
    };
    if let Some(row) = &row {
        // language=PostgreSQL
        sqlx::query!("update sso_attempts set used_at = $2 where id = $1 and used_at is null", row.id, now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if let Some(refusal) = refusal {
        record_failure(pool, org_id, connection_id, "saml", &refusal, None, meta, now).await?;
        return Err(refusal.into());
    }
    let row = row.ok_or_else(|| SsoError::Internal(DomainError::Internal("attempt vanished".into())))?;
    Ok(Attempt {
        id: row.id,
        org_id: row.org_id,
        connection_id: row.connection_id,
        nonce: row.nonce,
        purpose: purpose_of(&row.purpose),
        next_path: row.next_path,
        test_id: row.test_id,
        binding: String::new(),
    })
}

/// An attempt for a sign-in the IdP started (no request of ours, no browser to bind to).
pub async fn idp_initiated_attempt(
    pool: &PgPool,
    org_id: Uuid,
    connection_id: Uuid,
    now: OffsetDateTime,
) -> Result<Attempt, DomainError> {
    let id = Uuid::new_v4();
    // language=PostgreSQL
    sqlx::query!(
        "insert into sso_attempts (id, org_id, connection_id, state_hash, binding_hash, nonce, purpose, created_at, expires_at, used_at, idp_initiated)
         values ($1, $2, $3, $4, $5, '', 'login', $6, $7, $6, true)",
        id,
        org_id,
        connection_id,
        secrets::digest(&random()),
        secrets::digest(&random()),
        now,
        now + ATTEMPT_LIFETIME
    )
    .execute(pool)
    .await?;
    Ok(Attempt {
        id,
        org_id,
        connection_id,
        nonce: String::new(),
        purpose: Purpose::Login,
        next_path: None,
        test_id: None,
        binding: String::new(),
    })
}

/// Keeps a verified outcome (or, for a Test connection run, the steps) for the browser that
/// started the sign-in; the returned token, single use, collects it.
pub async fn hand_over(
    pool: &PgPool,
    attempt_id: Uuid,
    identity: Option<&SsoIdentity>,
    steps: &[TestStep],
) -> Result<String, DomainError> {
    let token = random();
    let to_json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| DomainError::Internal(e.to_string()));
    // language=PostgreSQL
    sqlx::query!(
        "update sso_attempts set finish_token_hash = $2, identity = $3, steps = $4 where id = $1",
        attempt_id,
        secrets::digest(&token),
        identity.map(serde_json::to_value).map(to_json).transpose()?,
        to_json(serde_json::to_value(steps))?
    )
    .execute(pool)
    .await?;
    Ok(token)
}

/// What the ACS handed over.
pub struct HandedOver {
    pub attempt: Attempt,
    pub identity: Option<SsoIdentity>,
    pub steps: Vec<TestStep>,
}

/// Collects a hand-over: the token is used up, and the browser must be the one that started
/// the sign-in (except for IdP-initiated sign-ins, which have none).
pub async fn take_hand_over(
    pool: &PgPool,
    token: &str,
    binding: Option<&str>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<HandedOver, SsoError> {
    if token.is_empty() || token.len() > 100 {
        return Err(Refusal::new(SsoFailure::UnknownState, "no hand-over token").into());
    }
    // language=PostgreSQL
    let row = sqlx::query!(
        "update sso_attempts set finish_token_hash = null where finish_token_hash = $1
         returning id, org_id, connection_id, binding_hash, nonce, purpose, next_path, test_id, expires_at, identity, steps, idp_initiated",
        secrets::digest(token)
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Err(
            Refusal::new(SsoFailure::StateReplayed, "the hand-over token is unknown or was already used").into()
        );
    };
    let refusal = if row.expires_at <= now {
        Some(Refusal::new(SsoFailure::Expired, "the sign-in started more than 10 minutes ago"))
    } else if !row.idp_initiated && !binding.is_some_and(|b| bool::from(secrets::digest(b).ct_eq(&row.binding_hash))) {
        Some(Refusal::new(
            SsoFailure::BrowserMismatch,
            "the browser's sign-in cookie is missing or belongs to another sign-in",
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        record_failure(pool, row.org_id, row.connection_id, "saml", &refusal, None, meta, now).await?;
        return Err(refusal.into());
    }
    let identity =
        row.identity.map(serde_json::from_value).transpose().map_err(|e| DomainError::Internal(e.to_string()))?;
    let steps = row.steps.map(serde_json::from_value).transpose().map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(HandedOver {
        attempt: Attempt {
            id: row.id,
            org_id: row.org_id,
            connection_id: row.connection_id,
            nonce: row.nonce,
            purpose: purpose_of(&row.purpose),
            next_path: row.next_path,
            test_id: row.test_id,
            binding: binding.unwrap_or_default().to_string(),
        },
        identity,
        steps: steps.unwrap_or_default(),
    })
}

/// Audits a refused sign-in in the connection's organization.
#[allow(clippy::too_many_arguments)]
pub async fn record_failure(
    pool: &PgPool,
    org_id: Uuid,
    connection_id: Uuid,
    method: &str,
    refusal: &Refusal,
    email: Option<&str>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let detail: String = refusal.detail.chars().take(500).collect();
    let event = NewEvent::new(org_id, Actor::Anonymous, "login.failed")
        .target("connection", connection_id, email.unwrap_or("unknown person"))
        .failed()
        .details(json!({
            "method": method,
            "connection_id": connection_id,
            "reason": refusal.failure.code(),
            "detail": detail,
            "email": email,
        }));
    audit::record_alone(pool, event, meta, now).await?;
    Ok(())
}

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

async fn plan(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    identity: &SsoIdentity,
) -> Result<Plan, SsoError> {
    let email = identity.email.as_deref().map(str::trim).map(str::to_lowercase);
    let mappings = role_mappings(&mut *conn, org_id, connection_id).await?;
    let mapped = mapped_role(&identity.groups, &mappings);
    // language=PostgreSQL
    let linked = sqlx::query_scalar!(
        "select person_id from sso_identities where org_id = $1 and connection_id = $2 and subject = $3",
        org_id,
        connection_id,
        identity.subject
    )
    .fetch_optional(&mut *conn)
    .await?;
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
                return Err(
                    Refusal::new(SsoFailure::MissingClaim, format!("the IdP says {email} is not verified")).into()
                );
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
                r#"select p.id, (select i.connection_id from sso_identities i where i.org_id = p.org_id and i.person_id = p.id limit 1) as other_connection
                   from people p where p.org_id = $1 and p.email = $2"#,
                org_id,
                email
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(person) = &person {
                if let Some(other) = person.other_connection {
                    let detail = if other == connection_id {
                        format!("{email} is already linked to another subject of this connection")
                    } else {
                        format!("{email} already signs in through connection {other}")
                    };
                    return Err(Refusal::new(SsoFailure::IdentityConflict, detail).into());
                }
            }
            person.map(|p| p.id)
        }
    };
    let Some(person_id) = person_id else {
        let email = email.unwrap_or_default();
        return match mapped {
            Some(role) => Ok(Plan::NewPerson { email, name: identity.name.clone(), role }),
            None => Err(no_access(&email, identity)),
        };
    };
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select p.email, p.active, a.id as "admin_id?", a.role as "role?"
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
                attempt.org_id,
                attempt.connection_id,
                method,
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
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let enabled = sqlx::query_scalar!(
        "select enabled from connections where org_id = $1 and id = $2 for share",
        org_id,
        connection_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if enabled != Some(true) {
        return Err(Refusal::new(SsoFailure::ConnectionDisabled, "the connection is turned off or deleted").into());
    }
    let plan = plan(&mut tx, org_id, connection_id, identity).await?;
    let role = plan.role();
    let (person_id, previous_role) = match &plan {
        Plan::Existing { person_id, admin, .. } => (*person_id, admin.map(|(_, role)| role)),
        Plan::NewPerson { email, name, .. } => {
            (people::find_or_create(&mut tx, org_id, email, name.as_deref(), now).await?, None)
        }
    };
    let linked = matches!(plan, Plan::Existing { linked: true, .. });
    if linked {
        // language=PostgreSQL
        sqlx::query!(
            "update sso_identities set last_login_at = $4 where org_id = $1 and connection_id = $2 and subject = $3",
            org_id,
            connection_id,
            identity.subject,
            now
        )
        .execute(&mut *tx)
        .await?;
    } else {
        // language=PostgreSQL
        sqlx::query!(
            "insert into sso_identities (org_id, connection_id, subject, person_id, created_at, last_login_at) values ($1, $2, $3, $4, $5, $5)",
            org_id,
            connection_id,
            identity.subject,
            person_id,
            now
        )
        .execute(&mut *tx)
        .await?;
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
    .fetch_one(&mut *tx)
    .await?;
    let email = identity.email.clone().unwrap_or_default();
    audit::record(
        &mut tx,
        NewEvent::new(org_id, Actor::Admin { admin_id, label: email.clone() }, "login.succeeded")
            .target("admin", admin_id, &email)
            .details(json!({
                "method": method,
                "connection_id": connection_id,
                "subject": identity.subject,
                "role": role.as_str(),
                "previous_role": previous_role.map(Role::as_str),
                "first_sign_in": !linked,
                "groups": identity.groups,
            })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    admins::load_session(pool, org_id, admin_id)
        .await?
        .ok_or_else(|| SsoError::Internal(DomainError::Internal("the admin vanished while signing in".into())))
}

/// What signing in with `identity` would do, without doing it (Test connection's last step).
pub async fn preview(
    pool: &PgPool,
    org_id: Uuid,
    connection_id: Uuid,
    identity: &SsoIdentity,
) -> Result<TestStep, DomainError> {
    let mut conn = pool.acquire().await?;
    let step = match plan(&mut conn, org_id, connection_id, identity).await {
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

/// Starts a Test connection run (the admin then goes through the IdP).
pub async fn start_test(
    pool: &PgPool,
    caller: Caller<'_>,
    connection_id: Uuid,
    now: OffsetDateTime,
) -> Result<Uuid, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let Caller::Admin(admin) = caller else {
        return Err(DomainError::NotAllowed("Test connection runs in an admin's browser".into()));
    };
    let id = Uuid::new_v4();
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into connection_tests (org_id, id, connection_id, started_by, started_at)
         select $1, $2, $3, $4, $5 where exists (select 1 from connections where org_id = $1 and id = $3)",
        admin.org_id,
        id,
        connection_id,
        admin.admin_id,
        now
    )
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    Ok(id)
}

/// Records a Test connection run's steps and outcome (audited as `connection.tested`).
pub async fn finish_test(
    pool: &PgPool,
    org_id: Uuid,
    test_id: Uuid,
    steps: &[TestStep],
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let succeeded = !steps.is_empty() && steps.iter().all(|s| s.status == StepStatus::Ok);
    let failed_step = steps.iter().find(|s| s.status == StepStatus::Failed).map(|s| s.step.clone());
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "update connection_tests t set finished_at = $3, succeeded = $4, steps = $5
         from connections c, admins a
         where t.org_id = $1 and t.id = $2 and t.finished_at is null
           and c.org_id = t.org_id and c.id = t.connection_id and a.org_id = t.org_id and a.id = t.started_by
         returning t.connection_id, c.name, t.started_by, a.person_id",
        org_id,
        test_id,
        now,
        succeeded,
        serde_json::to_value(steps).map_err(|e| DomainError::Internal(e.to_string()))?
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    let person = people::get(&mut *tx, org_id, row.person_id).await?;
    let mut event =
        NewEvent::new(org_id, Actor::Admin { admin_id: row.started_by, label: person.email }, "connection.tested")
            .target("connection", row.connection_id, &row.name)
            .details(json!({ "succeeded": succeeded, "failed_step": failed_step, "test_id": test_id }));
    if !succeeded {
        event = event.failed();
    }
    audit::record(&mut tx, event, meta, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes attempts that can no longer come back (housekeeping).
pub async fn delete_expired_attempts(pool: &PgPool, now: OffsetDateTime) -> Result<u64, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query!("delete from sso_attempts where expires_at < $1", now - Duration::hours(1))
        .execute(pool)
        .await?
        .rows_affected())
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
