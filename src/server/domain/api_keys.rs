//! Platform API keys: created by an owner (portal) or the operator (CLI), shown once, stored as
//! SHA-256, revocable at once.

use super::actor::{Actor, Caller, RequestMeta};
use super::audit::{self, NewEvent};
use super::{secrets, validate, DomainError};
use crate::model::api_keys::ApiKeyRow;
use crate::model::Permission;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// The organization an API key acts for.
#[derive(Clone, Debug)]
pub struct ApiKeyPrincipal {
    pub org_id: Uuid,
    pub key_id: Uuid,
    pub name: String,
}

impl ApiKeyPrincipal {
    pub fn actor(&self) -> Actor {
        Actor::ApiKey { key_id: self.key_id, label: format!("API key {}", self.name) }
    }
}

/// Creates a key for an organization; returns the key, which is never shown again.
pub async fn create(
    pool: &PgPool,
    caller: Caller<'_>,
    name: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<String, DomainError> {
    caller.require(Permission::ManageAdmins)?;
    let org_id = caller.org_id();
    let name = validate::label("Key name", name, 100)?;
    let key = secrets::generate(secrets::API_KEY_PREFIX);
    let prefix = secrets::recognisable_part(&key, secrets::API_KEY_PREFIX);
    let id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into api_keys (org_id, id, name, key_prefix, key_hash, created_at)
         select $1, $2, $3, $4, $5, $6 where exists (select 1 from organizations where id = $1)",
        org_id,
        id,
        name,
        prefix,
        secrets::digest(&key),
        now
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "api_key.created")
            .target("api_key", id, &name)
            .details(json!({ "prefix": prefix })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
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
    Ok(Some(ApiKeyPrincipal { org_id: row.org_id, key_id: row.id, name: row.name }))
}

/// The organization's keys (never the keys themselves).
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
pub async fn revoke(
    pool: &PgPool,
    caller: Caller<'_>,
    key_id: Uuid,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    caller.require(Permission::ManageAdmins)?;
    let org_id = caller.org_id();
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let name = sqlx::query_scalar!(
        "update api_keys set revoked_at = $3 where org_id = $1 and id = $2 and revoked_at is null returning name",
        org_id,
        key_id,
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "api_key.revoked").target("api_key", key_id, &name),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
