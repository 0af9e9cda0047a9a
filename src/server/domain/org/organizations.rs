//! Organizations: created by the platform operator together with the owner's setup link.

use crate::model::Role;
use crate::server::domain::actor::{Actor, RequestMeta};
use crate::server::domain::audit;
use crate::server::domain::{org::admins, validate, DomainError, Work};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A new organization and the one-time token of its owner's setup link.
pub struct CreatedOrganization {
    pub org_id: Uuid,
    pub setup_token: String,
}

impl std::fmt::Debug for CreatedOrganization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedOrganization").field("org_id", &self.org_id).finish_non_exhaustive()
    }
}

/// Creates an organization, its audit chain, its optional (unverified) email domain and an
/// owner invitation for `admin_email`, all in one transaction.
pub async fn create(
    pool: &PgPool,
    name: &str,
    admin_email: &str,
    domain: Option<&str>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<CreatedOrganization, DomainError> {
    let name = validate::label("Organization name", name, 200)?;
    let admin_email = validate::email(admin_email)?;
    let domain = domain.map(validate::domain).transpose()?;
    let org_id = Uuid::new_v4();

    let mut work = Work::begin(pool, org_id, Actor::Operator, meta, now).await?;
    // language=PostgreSQL
    sqlx::query!("insert into organizations (id, name, created_at) values ($1, $2, $3)", org_id, name, now)
        .execute(work.conn())
        .await?;
    audit::start_chain(work.conn(), org_id).await?;
    let event =
        work.event("organization.created").target("organization", org_id, &name).details(json!({ "domain": domain }));
    work.record(event).await?;
    if let Some(domain) = &domain {
        // language=PostgreSQL
        sqlx::query!(
            "insert into organization_domains (org_id, domain, created_at) values ($1, $2, $3)",
            org_id,
            domain,
            now
        )
        .execute(work.conn())
        .await?;
    }
    let invitation = admins::create_invitation(&mut work, None, &admin_email, Role::Owner, None).await?;
    work.commit().await?;
    Ok(CreatedOrganization { org_id, setup_token: invitation.token })
}

/// The organization's display name, if it exists.
pub async fn name(pool: &PgPool, org_id: Uuid) -> Result<Option<String>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!("select name from organizations where id = $1", org_id).fetch_optional(pool).await?)
}

/// Finds an organization by exact name (the demo seeding uses it to stay idempotent).
pub async fn find_by_name(pool: &PgPool, name: &str) -> Result<Option<Uuid>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!("select id from organizations where name = $1 order by created_at limit 1", name)
        .fetch_optional(pool)
        .await?)
}
