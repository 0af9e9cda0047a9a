//! The portal session: which admin is signed in, since when. The session id is rotated at
//! sign-in; sessions end after 30 minutes idle (cookie expiry, see the router) or 12 hours after
//! sign-in (checked here), and whenever the admin is removed or deactivated.
//!
//! Between a correct password and the second factor the session holds only the pending sign-in
//! (5 minutes; nobody is signed in). An admin whom the policy requires to have a second factor
//! and who has none is signed in "to enrol": the portal lets them set one up and nothing else.

use crate::model::session::{Me, MeOrganization, MePerson};
use crate::server::domain::{org::admins, AdminSession, DomainError};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use tower_sessions::Session;
use uuid::Uuid;

pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);
const IDENTITY_KEY: &str = "admin";
const PENDING_KEY: &str = "second_step";
/// How long the second step of a password sign-in may take.
pub const SECOND_STEP_TIMEOUT: Duration = Duration::minutes(5);

#[derive(Serialize, Deserialize)]
struct SessionIdentity {
    org_id: Uuid,
    admin_id: Uuid,
    signed_in_at: i64,
    /// The same moment in milliseconds (sessions from before it have 0): a session ended at a
    /// recovery must not survive because it began in the same second.
    #[serde(default)]
    signed_in_at_ms: i64,
    /// `password`, `oidc` or `saml`.
    #[serde(default)]
    method: String,
    /// Signed in only to set up the second factor the policy requires.
    #[serde(default)]
    must_enrol: bool,
}

/// A password sign-in waiting for its second factor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub org_id: Uuid,
    pub admin_id: Uuid,
    /// When the password was checked, in Unix milliseconds.
    pub started_at_ms: i64,
}

fn unix_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A moment given in Unix milliseconds.
pub fn from_unix_millis(millis: i64) -> Result<OffsetDateTime, DomainError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|err| DomainError::Internal(err.to_string()))
}

fn session_error(err: tower_sessions::session::Error) -> DomainError {
    DomainError::Internal(format!("session store: {err}"))
}

/// Binds the session to `admin` under a fresh session id (no fixation).
pub async fn sign_in(
    session: &Session,
    admin: &AdminSession,
    method: &str,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    bind(session, admin, method, false, now).await
}

/// Binds the session to `admin` (fresh id) for setting up a required second factor only.
pub async fn sign_in_to_enrol(
    session: &Session,
    admin: &AdminSession,
    method: &str,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    bind(session, admin, method, true, now).await
}

async fn bind(
    session: &Session,
    admin: &AdminSession,
    method: &str,
    must_enrol: bool,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    session.clear().await;
    session.cycle_id().await.map_err(session_error)?;
    let identity = SessionIdentity {
        org_id: admin.org_id(),
        admin_id: admin.admin_id(),
        signed_in_at: now.unix_timestamp(),
        signed_in_at_ms: unix_millis(now),
        method: method.to_string(),
        must_enrol,
    };
    session.insert(IDENTITY_KEY, identity).await.map_err(session_error)?;
    Ok(())
}

/// Holds a password sign-in until its second factor (fresh id; nobody is signed in).
pub async fn begin_second_step(
    session: &Session,
    admin: &AdminSession,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    session.clear().await;
    session.cycle_id().await.map_err(session_error)?;
    let pending = PendingSignIn { org_id: admin.org_id(), admin_id: admin.admin_id(), started_at_ms: unix_millis(now) };
    session.insert(PENDING_KEY, pending).await.map_err(session_error)?;
    Ok(())
}

/// The password sign-in waiting for its second factor, if it has not expired.
pub async fn pending_second_step(session: &Session, now: OffsetDateTime) -> Option<PendingSignIn> {
    let pending: Option<PendingSignIn> = session.get(PENDING_KEY).await.ok().flatten();
    pending.filter(|p| unix_millis(now) - p.started_at_ms <= SECOND_STEP_TIMEOUT.whole_milliseconds() as i64)
}

/// Whether this session is signed in only to set up a required second factor.
pub async fn must_enrol(session: &Session) -> bool {
    let identity: Option<SessionIdentity> = session.get(IDENTITY_KEY).await.ok().flatten();
    identity.is_some_and(|identity| identity.must_enrol)
}

/// The required second factor is set up: the session may do everything its role allows.
pub async fn enrolled(session: &Session) -> Result<(), DomainError> {
    let identity: Option<SessionIdentity> = session.get(IDENTITY_KEY).await.map_err(session_error)?;
    if let Some(mut identity) = identity.filter(|identity| identity.must_enrol) {
        identity.must_enrol = false;
        session.insert(IDENTITY_KEY, identity).await.map_err(session_error)?;
    }
    Ok(())
}

/// The admin signed in on this session, if the session is still valid — and none while the
/// session may only set up a required second factor (so no handler can forget that rule).
pub async fn current_admin(
    pool: &PgPool,
    session: &Session,
    now: OffsetDateTime,
) -> Result<Option<AdminSession>, DomainError> {
    load_current(pool, session, now, false).await
}

/// The admin signed in on this session, also while it may only set up a required second
/// factor: for the page guard (which sends such sessions to Settings → Security) and the
/// portal's calls (where `Call::admin` refuses them everything but that).
pub async fn current_admin_enrolling(
    pool: &PgPool,
    session: &Session,
    now: OffsetDateTime,
) -> Result<Option<AdminSession>, DomainError> {
    load_current(pool, session, now, true).await
}

async fn load_current(
    pool: &PgPool,
    session: &Session,
    now: OffsetDateTime,
    enrolling: bool,
) -> Result<Option<AdminSession>, DomainError> {
    let identity: Option<SessionIdentity> = session.get(IDENTITY_KEY).await.map_err(session_error)?;
    let Some(identity) = identity else { return Ok(None) };
    if identity.must_enrol && !enrolling {
        return Ok(None);
    }
    if now.unix_timestamp() - identity.signed_in_at > ABSOLUTE_TIMEOUT.whole_seconds() {
        sign_out(session).await;
        return Ok(None);
    }
    let millis = if identity.signed_in_at_ms > 0 { identity.signed_in_at_ms } else { identity.signed_in_at * 1000 };
    let signed_in_at = from_unix_millis(millis)?;
    let admin = admins::load_signed_in(pool, identity.org_id, identity.admin_id, signed_in_at).await?;
    if admin.is_none() {
        sign_out(session).await;
    }
    Ok(admin)
}

/// How this session signed in (`password`, `oidc`, `saml`), if signed in.
pub async fn sign_in_method(session: &Session) -> Option<String> {
    let identity: Option<SessionIdentity> = session.get(IDENTITY_KEY).await.ok().flatten();
    identity.map(|identity| identity.method)
}

/// Deletes the session (server side and cookie).
pub async fn sign_out(session: &Session) {
    if let Err(err) = session.flush().await {
        tracing::warn!(error = %err, "could not delete a session");
    }
}

pub fn me(admin: &AdminSession) -> Me {
    Me {
        person: MePerson {
            id: admin.person_id(),
            email: admin.email().to_string(),
            display_name: admin.display_name().to_string(),
        },
        organization: MeOrganization { id: admin.org_id(), name: admin.org_name().to_string() },
        role: admin.role(),
        admin_id: admin.admin_id(),
    }
}
