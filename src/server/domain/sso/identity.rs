//! What an IdP vouched for, and the ways a sign-in is refused. Every refusal is audited in the
//! connection's organization with its reason (`login.failed`).

use crate::model::connections::SsoFailure;
use crate::server::domain::actor::{Actor, RequestMeta};
use crate::server::domain::audit::{self, NewEvent};
use crate::server::domain::DomainError;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// What the IdP vouched for, read from the verified part of its answer only.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SsoIdentity {
    /// The OIDC issuer or SAML entity id the answer was verified against: the identity is
    /// linked under it, and refused if the connection has meanwhile been repointed.
    pub issuer: String,
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

/// Where a sign-in was attempted: the connection (and its organization) and the protocol.
#[derive(Clone, Copy, Debug)]
pub struct SignInAt<'a> {
    pub org_id: Uuid,
    pub connection_id: Uuid,
    /// `oidc` or `saml`.
    pub method: &'a str,
}

/// Audits a refused sign-in in the connection's organization (repeats summarised per window).
pub async fn record_failure(
    pool: &PgPool,
    at: SignInAt<'_>,
    refusal: &Refusal,
    email: Option<&str>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let SignInAt { org_id, connection_id, method } = at;
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
    audit::failures::record(pool, event, meta, now).await?;
    Ok(())
}
