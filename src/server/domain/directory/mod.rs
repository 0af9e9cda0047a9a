//! Directories: SCIM endpoints an organization's IdP provisions people and groups through.
//! This module owns the directories themselves (bearer tokens, the events feed); `users` and
//! `groups` own the provisioned resources and the joiner / mover / leaver rules.

pub mod filter;
pub mod groups;
pub mod users;

use super::actor::{Actor, Caller, RequestMeta};
use super::audit::{self, NewEvent};
use super::{secrets, validate, DomainError};
use crate::model::Permission;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of directory bearer tokens.
pub const TOKEN_PREFIX: &str = "mnd_scim_";
pub const PROVIDERS: [&str; 5] = ["okta", "entra", "google", "jumpcloud", "generic"];

/// A directory, as proven by its bearer token.
#[derive(Clone, Debug)]
pub struct Directory {
    pub org_id: Uuid,
    pub id: Uuid,
    pub name: String,
}

impl Directory {
    pub fn actor(&self) -> Actor {
        Actor::Directory { directory_id: self.id, label: format!("directory {}", self.name) }
    }
}

/// A new directory and its bearer token (shown once).
pub struct CreatedDirectory {
    pub directory_id: Uuid,
    pub bearer_token: String,
}

/// The SCIM base path of a directory.
pub fn scim_base_path(directory_id: Uuid) -> String {
    format!("/scim/v2/{directory_id}")
}

pub async fn create(
    pool: &PgPool,
    caller: Caller<'_>,
    name: &str,
    provider: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<CreatedDirectory, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let name = validate::label("Directory name", name, 100)?;
    let provider = PROVIDERS
        .into_iter()
        .find(|p| *p == provider.trim().to_ascii_lowercase())
        .ok_or_else(|| DomainError::invalid("Provider must be okta, entra, google, jumpcloud or generic"))?;
    let org_id = caller.org_id();
    let id = Uuid::new_v4();
    let token = secrets::generate(TOKEN_PREFIX);
    let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 4).collect();
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into directories (org_id, id, name, provider, token_hash, token_prefix, token_rotated_at, created_at)
         select $1, $2, $3, $4, $5, $6, $7, $7 where exists (select 1 from organizations where id = $1)",
        org_id,
        id,
        name,
        provider,
        secrets::digest(&token),
        prefix,
        now
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "directory.created")
            .target("directory", id, &name)
            .details(json!({ "provider": provider })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedDirectory { directory_id: id, bearer_token: token })
}

/// Replaces a directory's bearer token; the old one stops working at once.
pub async fn rotate_token(
    pool: &PgPool,
    caller: Caller<'_>,
    directory_id: Uuid,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<String, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let token = secrets::generate(TOKEN_PREFIX);
    let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 4).collect();
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let name = sqlx::query_scalar!(
        "update directories set token_hash = $3, token_prefix = $4, token_rotated_at = $5 where org_id = $1 and id = $2 returning name",
        org_id,
        directory_id,
        secrets::digest(&token),
        prefix,
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "directory.token_rotated").target("directory", directory_id, &name),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// The directory behind a bearer token.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Directory>, DomainError> {
    if !secrets::looks_like(token, TOKEN_PREFIX) {
        return Ok(None);
    }
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        Directory,
        "select org_id, id, name from directories where token_hash = $1",
        secrets::digest(token)
    )
    .fetch_optional(pool)
    .await?)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryRow {
    pub id: Uuid,
    pub name: String,
    pub provider: String,
    pub token_prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub token_rotated_at: OffsetDateTime,
    pub users: i64,
    pub active_users: i64,
    pub groups: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_event_at: Option<OffsetDateTime>,
}

pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<DirectoryRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        DirectoryRow,
        r#"select d.id, d.name, d.provider, d.token_prefix, d.token_rotated_at,
                  (select count(*) from directory_users u where u.org_id = d.org_id and u.directory_id = d.id) as "users!",
                  (select count(*) from directory_users u where u.org_id = d.org_id and u.directory_id = d.id and u.active) as "active_users!",
                  (select count(*) from groups g where g.org_id = d.org_id and g.directory_id = d.id) as "groups!",
                  (select max(e.occurred_at) from directory_events e where e.org_id = d.org_id and e.directory_id = d.id) as last_event_at
           from directories d where d.org_id = $1 order by d.created_at"#,
        caller.org_id()
    )
    .fetch_all(pool)
    .await?)
}

/// One entry of a directory's events feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub method: String,
    pub path: String,
    pub event: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: i32,
    pub detail: String,
}

/// Records one SCIM request's outcome in the feed (writes and refusals; reads are not kept).
#[allow(clippy::too_many_arguments)]
pub async fn record_event(
    pool: &PgPool,
    directory: &Directory,
    method: &str,
    path: &str,
    event: &str,
    resource: Option<(&str, String)>,
    status: u16,
    detail: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let (resource_type, resource_id) = match resource {
        Some((kind, id)) => (Some(kind.to_string()), Some(id)),
        None => (None, None),
    };
    let detail: String = detail.chars().take(1000).collect();
    let path: String = path.chars().take(500).collect();
    // language=PostgreSQL
    sqlx::query!(
        "insert into directory_events (org_id, directory_id, id, occurred_at, method, path, event, resource_type, resource_id, status, detail, request_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        directory.org_id,
        directory.id,
        Uuid::new_v4(),
        now,
        method,
        path,
        event,
        resource_type,
        resource_id,
        i32::from(status),
        detail,
        meta.request_id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest events of a directory.
pub async fn events(
    pool: &PgPool,
    caller: Caller<'_>,
    directory_id: Uuid,
    limit: i64,
) -> Result<Vec<DirectoryEvent>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        DirectoryEvent,
        "select occurred_at, method, path, event, resource_type, resource_id, status, detail
         from directory_events where org_id = $1 and directory_id = $2 order by occurred_at desc limit $3",
        caller.org_id(),
        directory_id,
        limit.clamp(1, 500)
    )
    .fetch_all(pool)
    .await?)
}
