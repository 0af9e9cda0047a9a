//! Platform API keys: created by an owner (portal) or the operator (CLI), shown once, stored as
//! SHA-256, revocable at once.

use crate::model::api_keys::ApiKeyRow;
use crate::model::Permission;
use crate::server::domain::actor::{ApiKeyPrincipal, Caller};
use crate::server::domain::Call;
use crate::server::domain::{crypto::secrets, validate, DomainError};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Creates a key for an organization; returns the key, which is never shown again.
/// Permission: API keys.
pub async fn create(pool: &PgPool, call: Call<'_>, name: &str) -> Result<String, DomainError> {
    call.require(Permission::ManageApiKeys)?;
    let org_id = call.org_id();
    let name = validate::label("Key name", name, 100)?;
    let key = secrets::generate(secrets::API_KEY_PREFIX);
    let prefix = secrets::recognisable_part(&key, secrets::API_KEY_PREFIX);
    let id = Uuid::new_v4();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into api_keys (org_id, id, name, key_prefix, key_hash, created_at)
         select $1, $2, $3, $4, $5, $6 where exists (select 1 from organizations where id = $1)",
        org_id,
        id,
        name,
        prefix,
        secrets::digest(&key),
        call.now
    )
    .execute(work.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    work.record(work.event("api_key.created").target("api_key", id, &name).details(json!({ "prefix": prefix })))
        .await?;
    work.commit().await?;
    Ok(key)
}

/// Finds the live key behind a bearer value. Reads only, except for refreshing `last_used_at`
/// at most once a minute (this sits on the introspection path).
pub async fn authenticate(
    pool: &PgPool,
    presented: &str,
    now: OffsetDateTime,
) -> Result<Option<ApiKeyPrincipal>, DomainError> {
    if !secrets::looks_like(presented, secrets::API_KEY_PREFIX) {
        return Ok(None);
    }
    // language=PostgreSQL
    let Some(row) = sqlx::query!(
        "select org_id, id, name, last_used_at from api_keys where key_hash = $1 and revoked_at is null",
        secrets::digest(presented)
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    if row.last_used_at.is_none_or(|at| now - at > time::Duration::minutes(1)) {
        // language=PostgreSQL
        sqlx::query!("update api_keys set last_used_at = $3 where org_id = $1 and id = $2", row.org_id, row.id, now)
            .execute(pool)
            .await?;
    }
    Ok(Some(ApiKeyPrincipal::authenticated(row.org_id, row.id, row.name)))
}

/// The organization's keys (never the keys themselves).
/// Permission: view portal.
pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<ApiKeyRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        ApiKeyRow,
        "select id, name, key_prefix, created_at, last_used_at, revoked_at from api_keys where org_id = $1
         order by revoked_at nulls first, created_at desc",
        caller.org_id()
    )
    .fetch_all(pool)
    .await?)
}

/// Revokes a key: the next request with it is refused.
/// Permission: API keys.
pub async fn revoke(pool: &PgPool, call: Call<'_>, key_id: Uuid) -> Result<(), DomainError> {
    call.require(Permission::ManageApiKeys)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let name = sqlx::query_scalar!(
        "update api_keys set revoked_at = $3 where org_id = $1 and id = $2 and revoked_at is null returning name",
        org_id,
        key_id,
        call.now
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    work.record(work.event("api_key.revoked").target("api_key", key_id, &name)).await?;
    work.commit().await?;
    Ok(())
}
