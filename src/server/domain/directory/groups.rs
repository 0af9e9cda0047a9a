//! Directory groups and membership. A membership change is the mover case: every agent whose
//! owner gained or lost a group has its mandate recomputed on every node at once, so a scope
//! the owner may no longer hold stops working in live tokens too.

use super::filter::{push_sql, AttrPath, Column, Filter};
use super::{ChangeError, Directory, DirectoryCall};
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::error::ResultExt;
use crate::server::domain::{DomainError, Work};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

/// Most members one group may list (a bound on request and response sizes).
pub const MAX_MEMBERS: usize = 10_000;

#[derive(Clone, Debug)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Directory user ids.
    pub members: Vec<Uuid>,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: Uuid,
    pub display: String,
}

#[derive(Clone, Debug)]
pub struct GroupRecord {
    pub id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: Vec<Member>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub fn group_columns(path: &AttrPath) -> Option<Column> {
    Some(match path.key().as_str() {
        "displayname" => Column::Text("display_name"),
        "externalid" => Column::ExactText("external_id"),
        "id" => Column::ExactText("id"),
        "members" | "members.value" => Column::Members,
        "meta.created" => Column::Timestamp("created_at"),
        "meta.lastmodified" => Column::Timestamp("updated_at"),
        _ => return None,
    })
}

fn uniqueness(name: &str) -> DomainError {
    DomainError::Conflict(format!("a group named {name:?} already exists"))
}

/// The people behind directory user ids; unknown ids are refused.
async fn people_of(
    conn: &mut PgConnection,
    directory: &Directory,
    members: &[Uuid],
) -> Result<Vec<(Uuid, String)>, DomainError> {
    if members.len() > MAX_MEMBERS {
        return Err(DomainError::invalid(format!("a group can list at most {MAX_MEMBERS} members")));
    }
    let mut unique = members.to_vec();
    unique.sort();
    unique.dedup();
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select id, person_id, user_name from directory_users where org_id = $1 and directory_id = $2 and id = any($3)",
        directory.org_id(),
        directory.id(),
        &unique
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() != unique.len() {
        let known: BTreeSet<Uuid> = rows.iter().map(|r| r.id).collect();
        let missing: Vec<String> = unique.iter().filter(|id| !known.contains(id)).map(Uuid::to_string).collect();
        return Err(DomainError::invalid(format!(
            "unknown members (not users of this directory): {}",
            missing.join(", ")
        )));
    }
    Ok(rows.into_iter().map(|r| (r.person_id, r.user_name)).collect())
}

async fn members_of(
    executor: impl sqlx::PgExecutor<'_>,
    directory: &Directory,
    group_ids: &[Uuid],
) -> Result<Vec<(Uuid, Member)>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        r#"select m.group_id, u.id as user_id, coalesce(u.display_name, u.user_name) as "display!"
           from group_members m join directory_users u on u.org_id = m.org_id and u.person_id = m.person_id and u.directory_id = $2
           where m.org_id = $1 and m.group_id = any($3) order by u.user_name"#,
        directory.org_id(),
        directory.id(),
        group_ids
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.group_id, Member { user_id: r.user_id, display: r.display })).collect())
}

async fn set_members<'a>(
    work: &mut Work<'a>,
    cache: &'a Mandates,
    group_id: Uuid,
    old: &[(Uuid, String)],
    new: &[(Uuid, String)],
) -> Result<(Vec<String>, Vec<String>), DomainError> {
    let org_id = work.org_id();
    let old_ids: BTreeSet<Uuid> = old.iter().map(|(p, _)| *p).collect();
    let new_ids: BTreeSet<Uuid> = new.iter().map(|(p, _)| *p).collect();
    let added: Vec<Uuid> = new_ids.difference(&old_ids).copied().collect();
    let removed: Vec<Uuid> = old_ids.difference(&new_ids).copied().collect();
    // language=PostgreSQL
    sqlx::query!(
        "insert into group_members (org_id, group_id, person_id) select $1, $2, unnest($3::uuid[]) on conflict do nothing",
        org_id,
        group_id,
        &added
    )
    .execute(work.conn())
    .await?;
    // language=PostgreSQL
    sqlx::query!(
        "delete from group_members where org_id = $1 and group_id = $2 and person_id = any($3)",
        org_id,
        group_id,
        &removed
    )
    .execute(work.conn())
    .await?;
    for person_id in added.iter().chain(removed.iter()) {
        work.announce(cache, Change::Person { org_id, person_id: *person_id }).await?;
    }
    let names = |ids: &[Uuid], list: &[(Uuid, String)]| -> Vec<String> {
        ids.iter().filter_map(|id| list.iter().find(|(p, _)| p == id).map(|(_, n)| n.clone())).collect()
    };
    Ok((names(&added, new), names(&removed, old)))
}

fn check(input: &GroupInput) -> Result<(), DomainError> {
    let name = input.display_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(DomainError::invalid("displayName is required (at most 200 characters)"));
    }
    Ok(())
}

pub async fn create_group(
    pool: &PgPool,
    cache: &Mandates,
    call: DirectoryCall<'_>,
    input: GroupInput,
) -> Result<GroupRecord, DomainError> {
    check(&input)?;
    let (directory, now) = (call.directory, call.now);
    let org_id = directory.org_id();
    let mut work = call.begin(pool).await?;
    let people = people_of(work.conn(), directory, &input.members).await?;
    let id = Uuid::new_v4();
    // language=PostgreSQL
    sqlx::query!(
        "insert into groups (org_id, id, display_name, directory_id, external_id, version, created_at, updated_at)
         values ($1, $2, $3, $4, $5, 1, $6, $6)",
        org_id,
        id,
        input.display_name.trim(),
        directory.id(),
        input.external_id,
        now
    )
    .execute(work.conn())
    .await
    .on_constraint("groups_name_key", || uniqueness(&input.display_name))?;
    let (added, _) = set_members(&mut work, cache, id, &[], &people).await?;
    let event = work
        .event("scim.group.created")
        .target("group", id, input.display_name.trim())
        .details(json!({ "members_added": added }));
    work.record(event).await?;
    work.commit().await?;
    get_group(pool, directory, id).await
}

pub async fn get_group(pool: &PgPool, directory: &Directory, id: Uuid) -> Result<GroupRecord, DomainError> {
    let (_, mut groups) = load(pool, directory, Some(id), None, 1, 1, true).await?;
    groups.pop().ok_or(DomainError::NotFound)
}

/// A page of groups (`start` is 1-based) and the total; members only when asked for.
pub async fn list_groups(
    pool: &PgPool,
    directory: &Directory,
    filter: Option<&Filter>,
    start: i64,
    count: i64,
    with_members: bool,
) -> Result<(i64, Vec<GroupRecord>), DomainError> {
    load(pool, directory, None, filter, start, count, with_members).await
}

async fn load(
    pool: &PgPool,
    directory: &Directory,
    id: Option<Uuid>,
    filter: Option<&Filter>,
    start: i64,
    count: i64,
    with_members: bool,
) -> Result<(i64, Vec<GroupRecord>), DomainError> {
    let scoped = |select: &str| {
        let mut query = sqlx::QueryBuilder::new(select);
        query
            .push(" from groups r where r.org_id = ")
            .push_bind(directory.org_id())
            .push(" and r.directory_id = ")
            .push_bind(directory.id());
        if let Some(id) = id {
            query.push(" and r.id = ").push_bind(id);
        }
        query
    };
    let mut counting = scoped("select count(*)");
    if let Some(filter) = filter {
        counting.push(" and (");
        push_sql(&mut counting, filter, group_columns).map_err(|e| DomainError::InvalidFilter(e.0))?;
        counting.push(")");
    }
    let total: i64 = counting.build_query_scalar().fetch_one(pool).await?;
    if count == 0 {
        return Ok((total, Vec::new()));
    }
    let mut query = scoped("select r.id, r.display_name, r.external_id, r.version, r.created_at, r.updated_at");
    if let Some(filter) = filter {
        query.push(" and (");
        push_sql(&mut query, filter, group_columns).map_err(|e| DomainError::InvalidFilter(e.0))?;
        query.push(")");
    }
    query.push(" order by r.created_at, r.id limit ").push_bind(count).push(" offset ").push_bind(start - 1);
    let rows: Vec<(Uuid, String, Option<String>, i64, OffsetDateTime, OffsetDateTime)> =
        query.build_query_as().fetch_all(pool).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let members = if with_members { members_of(pool, directory, &ids).await? } else { Vec::new() };
    let groups = rows
        .into_iter()
        .map(|(id, display_name, external_id, version, created_at, updated_at)| GroupRecord {
            id,
            display_name,
            external_id,
            members: members.iter().filter(|(g, _)| *g == id).map(|(_, m)| m.clone()).collect(),
            version,
            created_at,
            updated_at,
        })
        .collect();
    Ok((total, groups))
}

/// Replaces or patches a group inside the transaction that holds it; a refusal of `change`
/// comes back as it was given.
pub async fn modify_group<E>(
    pool: &PgPool,
    cache: &Mandates,
    call: DirectoryCall<'_>,
    id: Uuid,
    if_match: Option<i64>,
    change: impl FnOnce(&GroupRecord) -> Result<GroupInput, E>,
) -> Result<GroupRecord, ChangeError<E>> {
    let (directory, now) = (call.directory, call.now);
    let org_id = directory.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select display_name, external_id, version, created_at, updated_at from groups
         where org_id = $1 and directory_id = $2 and id = $3 for update",
        org_id,
        directory.id(),
        id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    if if_match.is_some_and(|v| v != row.version) {
        return Err(DomainError::PreconditionFailed.into());
    }
    let members: Vec<Member> = members_of(work.conn(), directory, &[id]).await?.into_iter().map(|(_, m)| m).collect();
    let current = GroupRecord {
        id,
        display_name: row.display_name,
        external_id: row.external_id,
        members,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    };
    let input = change(&current).map_err(ChangeError::Refused)?;
    check(&input)?;
    let old_people =
        people_of(work.conn(), directory, &current.members.iter().map(|m| m.user_id).collect::<Vec<_>>()).await?;
    let new_people = people_of(work.conn(), directory, &input.members).await?;
    // language=PostgreSQL
    sqlx::query!(
        "update groups set display_name = $3, external_id = $4, version = version + 1, updated_at = $5 where org_id = $1 and id = $2",
        org_id,
        id,
        input.display_name.trim(),
        input.external_id,
        now
    )
    .execute(work.conn())
    .await
    .on_constraint("groups_name_key", || uniqueness(&input.display_name))?;
    let (added, removed) = set_members(&mut work, cache, id, &old_people, &new_people).await?;
    let mut details = json!({ "members_added": added, "members_removed": removed });
    if current.display_name != input.display_name.trim() {
        details["renamed_from"] = json!(current.display_name);
    }
    let event = work.event("scim.group.updated").target("group", id, input.display_name.trim()).details(details);
    work.record(event).await?;
    work.commit().await?;
    Ok(get_group(pool, directory, id).await?)
}

pub async fn delete_group(
    pool: &PgPool,
    cache: &Mandates,
    call: DirectoryCall<'_>,
    id: Uuid,
    if_match: Option<i64>,
) -> Result<(), DomainError> {
    let directory = call.directory;
    let org_id = directory.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select display_name, version from groups where org_id = $1 and directory_id = $2 and id = $3 for update",
        org_id,
        directory.id(),
        id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    if if_match.is_some_and(|v| v != row.version) {
        return Err(DomainError::PreconditionFailed);
    }
    // language=PostgreSQL
    let members =
        sqlx::query_scalar!("select person_id from group_members where org_id = $1 and group_id = $2", org_id, id)
            .fetch_all(work.conn())
            .await?;
    for person_id in &members {
        work.announce(cache, Change::Person { org_id, person_id: *person_id }).await?;
    }
    // Scope ceilings that named the group go with it: every mandate of the organization may change.
    work.announce(cache, Change::Organization { org_id }).await?;
    // language=PostgreSQL
    sqlx::query!("delete from groups where org_id = $1 and id = $2", org_id, id).execute(work.conn()).await?;
    let event = work
        .event("scim.group.deleted")
        .target("group", id, &row.display_name)
        .details(json!({ "members": members.len() }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}
