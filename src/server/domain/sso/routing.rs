//! Which connection a browser signs in through: by the email's verified domain, or by a
//! connection named in a sign-in link.

use crate::server::domain::sso::domains;
use crate::server::domain::DomainError;
use sqlx::PgPool;
use uuid::Uuid;

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
