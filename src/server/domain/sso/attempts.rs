//! Sign-in attempts in flight: created when a browser leaves for the IdP, single use, bound to
//! that browser by a cookie (which doubles as the PKCE verifier), and good for 10 minutes. A SAML
//! answer arrives cross-site, so its verified outcome is handed over to the starting browser
//! through a second single-use token.

use crate::model::connections::{SsoFailure, TestStep};
use crate::server::domain::actor::RequestMeta;
use crate::server::domain::crypto::secrets;
use crate::server::domain::sso::identity::{record_failure, Refusal, SignInAt, SsoError, SsoIdentity};
use crate::server::domain::sso::routing::Target;
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long a sign-in may stay at the IdP.
pub const ATTEMPT_LIFETIME: Duration = Duration::minutes(10);

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
    /// The IdP started it (SAML, when the connection allows it): no request of ours, no browser
    /// binding, and the session it makes is marked as such in the audit trail.
    pub idp_initiated: bool,
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
    let mut work = Work::system(pool, now).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select id, org_id, connection_id, binding_hash, nonce, purpose, next_path, test_id, expires_at, used_at
         from sso_attempts where state_hash = $1 for update",
        secrets::digest(state)
    )
    .fetch_optional(work.conn())
    .await?;
    let Some(row) = row else {
        return Err(Refusal::new(SsoFailure::UnknownState, "the state is not one Mandate issued").into());
    };
    // language=PostgreSQL
    sqlx::query!("update sso_attempts set used_at = $2 where id = $1 and used_at is null", row.id, now)
        .execute(work.conn())
        .await?;
    work.commit().await?;

    let refusal = if row.used_at.is_some() {
        Some(Refusal::new(SsoFailure::StateReplayed, "the state was already used"))
    } else if row.expires_at <= now {
        Some(Refusal::new(SsoFailure::Expired, "the sign-in started more than 10 minutes ago"))
    } else if !same_browser(binding, &row.binding_hash) {
        Some(Refusal::new(
            SsoFailure::BrowserMismatch,
            "the browser's sign-in cookie is missing or belongs to another sign-in",
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        let at = SignInAt { org_id: row.org_id, connection_id: row.connection_id, method: "oidc" };
        return Err(refused(pool, at, refusal, meta, now).await);
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
        idp_initiated: false,
    })
}

/// Whether the browser's cookie is the one the attempt was bound to (compared in constant time).
fn same_browser(binding: Option<&str>, binding_hash: &[u8]) -> bool {
    binding.is_some_and(|b| bool::from(secrets::digest(b).ct_eq(binding_hash)))
}

/// Audits a refused attempt and hands back the refusal to show (or the fault that kept it from
/// being audited).
async fn refused(
    pool: &PgPool,
    at: SignInAt<'_>,
    refusal: Refusal,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> SsoError {
    match record_failure(pool, at, &refusal, None, meta, now).await {
        Ok(()) => refusal.into(),
        Err(err) => err.into(),
    }
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
    let mut work = Work::system(pool, now).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select id, org_id, connection_id, nonce, purpose, next_path, test_id, expires_at, used_at
         from sso_attempts where state_hash = $1 and connection_id = $2 for update",
        secrets::digest(state),
        connection_id
    )
    .fetch_optional(work.conn())
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
            .execute(work.conn())
            .await?;
    }
    work.commit().await?;
    if let Some(refusal) = refusal {
        return Err(refused(pool, SignInAt { org_id, connection_id, method: "saml" }, refusal, meta, now).await);
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
        idp_initiated: false,
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
        idp_initiated: true,
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
    } else if !row.idp_initiated && !same_browser(binding, &row.binding_hash) {
        Some(Refusal::new(
            SsoFailure::BrowserMismatch,
            "the browser's sign-in cookie is missing or belongs to another sign-in",
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        let at = SignInAt { org_id: row.org_id, connection_id: row.connection_id, method: "saml" };
        return Err(refused(pool, at, refusal, meta, now).await);
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
            idp_initiated: row.idp_initiated,
        },
        identity,
        steps: steps.unwrap_or_default(),
    })
}

/// Deletes attempts that can no longer come back (housekeeping).
pub async fn delete_expired_attempts(pool: &PgPool, now: OffsetDateTime) -> Result<u64, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query!("delete from sso_attempts where expires_at < $1", now - Duration::hours(1))
        .execute(pool)
        .await?
        .rows_affected())
}
