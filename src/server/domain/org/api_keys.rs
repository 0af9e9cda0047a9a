//! Platform API keys: created by an owner (portal) or the operator (CLI) with the scopes the key
//! may use and an optional expiry, shown once, stored as SHA-256, revocable at once.

use crate::model::api_keys::{ApiKeyRow, ApiKeyScope};
use crate::model::Permission;
use crate::server::domain::actor::{ApiKeyPrincipal, Caller};
use crate::server::domain::Call;
use crate::server::domain::{crypto::secrets, validate, DomainError};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A key to create: what it is called, what it may do, and when it stops (never when `None`).
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub scopes: &'a [ApiKeyScope],
    pub expires_at: Option<OffsetDateTime>,
}

/// Creates a key for an organization; returns the key, which is never shown again.
/// Permission: API keys (owners only: a key's scopes are rights only an owner grants).
pub async fn create(pool: &PgPool, call: Call<'_>, key: NewApiKey<'_>) -> Result<String, DomainError> {
    call.require(Permission::ManageApiKeys)?;
    let org_id = call.org_id();
    let name = validate::label("Key name", key.name, 100)?;
    let mut scopes = key.scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(DomainError::invalid("Choose at least one scope for the key"));
    }
    if key.expires_at.is_some_and(|at| at <= call.now) {
        return Err(DomainError::invalid("The key's expiry must be in the future"));
    }
    let scope_names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
    let expires_at = key.expires_at;
    let key = secrets::generate(secrets::API_KEY_PREFIX);
    let prefix = secrets::recognisable_part(&key, secrets::API_KEY_PREFIX);
    let id = Uuid::new_v4();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into api_keys (org_id, id, name, key_prefix, key_hash, created_at, scopes, expires_at)
         select $1, $2, $3, $4, $5, $6, $7, $8 where exists (select 1 from organizations where id = $1)",
        org_id,
        id,
        name,
        prefix,
        secrets::digest(&key),
        call.now,
        &scope_names,
        expires_at
    )
    .execute(work.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    let details =
        json!({ "prefix": prefix, "scopes": scope_names, "expires_at": expires_at.map(|at| at.unix_timestamp()) });
    work.record(work.event("api_key.created").target("api_key", id, &name).details(details)).await?;
    work.commit().await?;
    Ok(key)
}

/// Finds the live (not revoked, not expired) key behind a bearer value. Reads only, except for refreshing `last_used_at`
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
        "select org_id, id, name, last_used_at, scopes from api_keys
         where key_hash = $1 and revoked_at is null and (expires_at is null or expires_at > $2)",
        secrets::digest(presented),
        now
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
    Ok(Some(ApiKeyPrincipal::authenticated(row.org_id, row.id, row.name, parse_scopes(&row.scopes))))
}

/// Stored scope names as scopes; a name this version does not know grants nothing.
fn parse_scopes(names: &[String]) -> Vec<ApiKeyScope> {
    names.iter().filter_map(|name| name.parse().ok()).collect()
}

/// The organization's keys (never the keys themselves).
/// Permission: view portal.
pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<ApiKeyRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select id, name, key_prefix, scopes, created_at, expires_at, last_used_at, revoked_at from api_keys
         where org_id = $1 order by revoked_at nulls first, created_at desc",
        caller.org_id()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ApiKeyRow {
            id: r.id,
            name: r.name,
            key_prefix: r.key_prefix,
            scopes: parse_scopes(&r.scopes),
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
        .collect())
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
