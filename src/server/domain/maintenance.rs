//! Housekeeping that keeps unbounded tables bounded: expired sign-in throttles, SSO attempts and token records
//! long past their expiry (the audit trail keeps what happened). Run periodically by `serve`.

use crate::server::domain::DomainError;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

/// Token records are kept this long after they expire, for investigations.
pub const TOKEN_RETENTION: Duration = Duration::days(7);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub throttles: u64,
    pub tokens: u64,
    pub sso_attempts: u64,
    pub saml_assertion_ids: u64,
}

pub async fn prune(pool: &PgPool, now: OffsetDateTime) -> Result<Pruned, DomainError> {
    // language=PostgreSQL
    let throttles = sqlx::query!(
        "delete from login_throttle where window_started_at < $1 and (locked_until is null or locked_until < $2)",
        now - Duration::days(1),
        now
    )
    .execute(pool)
    .await?
    .rows_affected();
    // language=PostgreSQL
    let tokens = sqlx::query!("delete from access_tokens where expires_at < $1", now - TOKEN_RETENTION)
        .execute(pool)
        .await?
        .rows_affected();
    let sso_attempts = crate::server::domain::sso::attempts::delete_expired_attempts(pool, now).await?;
    let saml_assertion_ids = crate::server::domain::sso::saml::delete_expired_assertion_ids(pool, now).await?;
    Ok(Pruned { throttles, tokens, sso_attempts, saml_assertion_ids })
}
