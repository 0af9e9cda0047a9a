//! Directories: SCIM endpoints an organization's IdP provisions people and groups through.
//!
//! - this file  the directories themselves (bearer tokens, the events feed)
//! - `users`    provisioned users: joiner, mover (email and name), leaver and rejoiner
//! - `groups`   provisioned groups and their members (group ceilings follow them)
//! - `filter`   the SCIM filter language, parsed and bounded, turned into SQL
//! - `people`   the people of an organization (agent owners and admins), wherever they came from
//! - `leaver`   the one rule for a person who leaves, from SCIM or the portal

pub mod filter;
pub mod groups;
pub mod leaver;
pub mod people;
pub mod users;

use crate::model::directories::{DirectoryDetail, DirectoryEvent, DirectoryGroupRow, DirectoryRow, DirectoryUserRow};
use crate::model::Permission;
use crate::server::domain::actor::{Actor, Caller, RequestMeta};
use crate::server::domain::Call;
use crate::server::domain::{crypto::secrets, validate, DomainError, Work};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of directory bearer tokens.
pub const TOKEN_PREFIX: &str = "mnd_scim_";
pub const PROVIDERS: [&str; 5] = ["okta", "entra", "google", "jumpcloud", "generic"];

/// A directory, as proven by its bearer token. Built only by `authenticate` (and, for the
/// platform operator, `for_operator`).
#[derive(Clone, Debug)]
pub struct Directory {
    org_id: Uuid,
    id: Uuid,
    name: String,
}

impl Directory {
    /// The platform operator acting as one of an organization's directories (the demo seeder
    /// provisions people the way an IdP would). Never reachable from a request.
    pub async fn for_operator(pool: &PgPool, org_id: Uuid, directory_id: Uuid) -> Result<Directory, DomainError> {
        // language=PostgreSQL
        let name =
            sqlx::query_scalar!("select name from directories where org_id = $1 and id = $2", org_id, directory_id)
                .fetch_optional(pool)
                .await?
                .ok_or(DomainError::NotFound)?;
        Ok(Directory { org_id, id: directory_id, name })
    }

    pub fn org_id(&self) -> Uuid {
        self.org_id
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn actor(&self) -> Actor {
        Actor::Directory { directory_id: self.id, label: format!("directory {}", self.name) }
    }
}

/// One call from a directory (its IdP's SCIM client): the proven directory, from where, when.
#[derive(Clone, Copy, Debug)]
pub struct DirectoryCall<'a> {
    pub directory: &'a Directory,
    pub meta: &'a RequestMeta,
    pub now: OffsetDateTime,
}

impl<'a> DirectoryCall<'a> {
    /// Begins a unit of work in the directory's organization, audited as the directory.
    pub async fn begin(&self, pool: &PgPool) -> Result<Work<'a>, DomainError> {
        Work::begin(pool, self.directory.org_id(), self.directory.actor(), self.meta, self.now).await
    }
}

/// Why a change computed by the caller (a SCIM PUT or PATCH) did not happen: the caller's own
/// refusal, handed back as it was given, or a rule of the domain.
#[derive(Debug)]
pub enum ChangeError<E> {
    Refused(E),
    Domain(DomainError),
}

impl<E> From<DomainError> for ChangeError<E> {
    fn from(err: DomainError) -> Self {
        ChangeError::Domain(err)
    }
}

impl<E> From<sqlx::Error> for ChangeError<E> {
    fn from(err: sqlx::Error) -> Self {
        ChangeError::Domain(err.into())
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

/// Permission: directories.
pub async fn create(
    pool: &PgPool,
    call: Call<'_>,
    name: &str,
    provider: &str,
) -> Result<CreatedDirectory, DomainError> {
    call.require(Permission::ManageDirectories)?;
    let name = validate::label("Directory name", name, 100)?;
    let provider = PROVIDERS
        .into_iter()
        .find(|p| *p == provider.trim().to_ascii_lowercase())
        .ok_or_else(|| DomainError::invalid("Provider must be okta, entra, google, jumpcloud or generic"))?;
    let org_id = call.org_id();
    let id = Uuid::new_v4();
    let token = secrets::generate(TOKEN_PREFIX);
    let prefix = secrets::recognisable_part(&token, TOKEN_PREFIX);
    let mut work = call.begin(pool).await?;
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
        call.now
    )
    .execute(work.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    work.record(
        work.event("directory.created").target("directory", id, &name).details(json!({ "provider": provider })),
    )
    .await?;
    work.commit().await?;
    Ok(CreatedDirectory { directory_id: id, bearer_token: token })
}

/// Replaces a directory's bearer token; the old one stops working at once.
/// Permission: directories.
pub async fn rotate_token(pool: &PgPool, call: Call<'_>, directory_id: Uuid) -> Result<String, DomainError> {
    call.require(Permission::ManageDirectories)?;
    let org_id = call.org_id();
    let token = secrets::generate(TOKEN_PREFIX);
    let prefix = secrets::recognisable_part(&token, TOKEN_PREFIX);
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let name = sqlx::query_scalar!(
        "update directories set token_hash = $3, token_prefix = $4, token_rotated_at = $5 where org_id = $1 and id = $2 returning name",
        org_id,
        directory_id,
        secrets::digest(&token),
        prefix,
        call.now
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    work.record(work.event("directory.token_rotated").target("directory", directory_id, &name)).await?;
    work.commit().await?;
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

/// Permission: view portal.
pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<DirectoryRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    rows(pool, caller.org_id(), None).await
}

async fn rows(pool: &PgPool, org_id: Uuid, id: Option<Uuid>) -> Result<Vec<DirectoryRow>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        DirectoryRow,
        r#"select d.id, d.name, d.provider, d.token_prefix, d.token_rotated_at,
                  (select count(*) from directory_users u where u.org_id = d.org_id and u.directory_id = d.id) as "users!",
                  (select count(*) from directory_users u where u.org_id = d.org_id and u.directory_id = d.id and u.active) as "active_users!",
                  (select count(*) from groups g where g.org_id = d.org_id and g.directory_id = d.id) as "groups!",
                  (select max(e.occurred_at) from directory_events e where e.org_id = d.org_id and e.directory_id = d.id) as last_event_at
           from directories d where d.org_id = $1 and ($2::uuid is null or d.id = $2) order by d.created_at"#,
        org_id,
        id
    )
    .fetch_all(pool)
    .await?)
}

/// One SCIM request's outcome, for the directory's events feed.
pub struct FeedEntry<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// What happened, e.g. `user.deactivated`.
    pub event: &'a str,
    /// The resource type and id the request was about, if known.
    pub resource: Option<(&'a str, String)>,
    pub status: u16,
    /// Why a refused request was refused.
    pub detail: &'a str,
}

/// Records one SCIM request's outcome in the feed (writes and refusals; reads are not kept).
/// The feed is the directory's own operational log, not the audit chain: the changes it
/// describes are audited by the domain when they happen.
pub async fn record_event(pool: &PgPool, call: DirectoryCall<'_>, entry: FeedEntry<'_>) -> Result<(), DomainError> {
    let FeedEntry { method, path, event, resource, status, detail } = entry;
    let (directory, meta, now) = (call.directory, call.meta, call.now);
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
        directory.org_id(),
        directory.id(),
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
/// Permission: view portal.
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

/// A directory with its users, groups and newest events, for the portal (`base_url` is the
/// public URL the SCIM base path hangs from).
/// Permission: view portal.
pub async fn detail(
    pool: &PgPool,
    caller: Caller<'_>,
    directory_id: Uuid,
    base_url: &str,
) -> Result<DirectoryDetail, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    let directory = rows(pool, org_id, Some(directory_id)).await?.into_iter().next().ok_or(DomainError::NotFound)?;
    // language=PostgreSQL
    let users = sqlx::query_as!(
        DirectoryUserRow,
        r#"select u.id, u.user_name, u.display_name, p.email, u.active,
                  coalesce((select array_agg(g.display_name order by g.display_name) from group_members m
                            join groups g on g.org_id = m.org_id and g.id = m.group_id
                            where m.org_id = u.org_id and m.person_id = u.person_id and g.directory_id = u.directory_id), '{}') as "groups!",
                  (select count(*) from agents a where a.org_id = u.org_id and a.owner_id = u.person_id and a.status = 'active') as "active_agents!"
           from directory_users u join people p on p.org_id = u.org_id and p.id = u.person_id
           where u.org_id = $1 and u.directory_id = $2 order by u.user_name limit 500"#,
        org_id,
        directory_id
    )
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let groups = sqlx::query_as!(
        DirectoryGroupRow,
        r#"select g.id, g.display_name, (select count(*) from group_members m where m.org_id = g.org_id and m.group_id = g.id) as "members!"
           from groups g where g.org_id = $1 and g.directory_id = $2 order by g.display_name limit 500"#,
        org_id,
        directory_id
    )
    .fetch_all(pool)
    .await?;
    let events = events(pool, caller, directory_id, 100).await?;
    Ok(DirectoryDetail {
        directory,
        scim_base_url: format!("{base_url}{}", scim_base_path(directory_id)),
        users,
        groups,
        events,
    })
}
