//! Directory users and the lifecycle they drive. Joiner: a new active user becomes a person
//! (or takes over an existing person with that email who no directory manages yet). Leaver:
//! `active=false` or deletion deactivates the person and, in the same transaction, revokes
//! every agent acting for them (their tokens go inactive everywhere, their pending scope
//! requests are cancelled, their portal sessions end). Reactivation revives the person, not
//! the agents. An email change updates the person's address and never links to another one.

use super::filter::{push_sql, AttrPath, Column, Filter};
use super::Directory;
use crate::model::agents::GroupRef;
use crate::server::domain::actor::RequestMeta;
use crate::server::domain::agents::{end_agents_of_person, EndedAgents};
use crate::server::domain::audit::{self, NewEvent};
use crate::server::domain::error::ResultExt;
use crate::server::domain::mandate::{Change, Changes, Mandates};
use crate::server::domain::DomainError;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// What the SCIM layer extracted from a user resource.
#[derive(Clone, Debug)]
pub struct UserInput {
    /// The representation to store (the SCIM layer normalised it).
    pub resource: Value,
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    /// `[{value, type, primary}]`
    pub emails: Value,
    /// The person's address: the primary email, else the first, else the user name.
    pub email: String,
    /// The person's name as the portal shows it.
    pub person_name: String,
}

#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: Uuid,
    pub person_id: Uuid,
    pub resource: Value,
    pub active: bool,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub groups: Vec<GroupRef>,
}

/// Which attributes user filters can name.
pub fn user_columns(path: &AttrPath) -> Option<Column> {
    Some(match path.key().as_str() {
        "username" => Column::Text("user_name"),
        "externalid" => Column::ExactText("external_id"),
        "id" => Column::ExactText("id"),
        "displayname" => Column::Text("display_name"),
        "active" => Column::Bool("active"),
        "emails" | "emails.value" => Column::JsonArray { column: "emails", key: "value" },
        "emails.type" => Column::JsonArray { column: "emails", key: "type" },
        "meta.created" => Column::Timestamp("created_at"),
        "meta.lastmodified" => Column::Timestamp("updated_at"),
        _ => return None,
    })
}

fn uniqueness(user_name: &str) -> DomainError {
    DomainError::Conflict(format!("a user with userName {user_name:?} already exists in this directory"))
}

fn check(input: &UserInput) -> Result<(), DomainError> {
    if input.user_name.trim().is_empty() || input.user_name.len() > 256 {
        return Err(DomainError::invalid("userName is required (at most 256 characters)"));
    }
    if input.email.len() > 320 {
        return Err(DomainError::invalid("the email address is too long"));
    }
    Ok(())
}

/// Deactivates a person inside a transaction: their agents end, their tokens stop.
async fn deactivate_person(
    conn: &mut PgConnection,
    changes: &mut Changes,
    org_id: Uuid,
    person_id: Uuid,
    now: OffsetDateTime,
) -> Result<EndedAgents, DomainError> {
    // language=PostgreSQL
    sqlx::query!(
        "update people set active = false, deactivated_at = $3 where org_id = $1 and id = $2",
        org_id,
        person_id,
        now
    )
    .execute(&mut *conn)
    .await?;
    let ended = end_agents_of_person(conn, changes, org_id, person_id, "owner left the directory", now).await?;
    changes.add(conn, Change::Person { org_id, person_id }).await?;
    Ok(ended)
}

async fn reactivate_person(
    conn: &mut PgConnection,
    changes: &mut Changes,
    org_id: Uuid,
    person_id: Uuid,
) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!(
        "update people set active = true, deactivated_at = null where org_id = $1 and id = $2",
        org_id,
        person_id
    )
    .execute(&mut *conn)
    .await?;
    changes.add(conn, Change::Person { org_id, person_id }).await
}

pub async fn create_user(
    pool: &PgPool,
    mandates: &Mandates,
    directory: &Directory,
    input: UserInput,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<UserRecord, DomainError> {
    check(&input)?;
    let org_id = directory.org_id;
    let mut tx = pool.begin().await?;
    let email = input.email.to_lowercase();
    // language=PostgreSQL
    let existing = sqlx::query!(
        r#"select p.id, p.active, exists(select 1 from directory_users u where u.org_id = p.org_id and u.person_id = p.id) as "managed!"
           from people p where p.org_id = $1 and p.email = $2 for update of p"#,
        org_id,
        email
    )
    .fetch_optional(&mut *tx)
    .await?;
    let mut changes = Changes::default();
    let (person_id, was_active) = match existing {
        Some(person) if person.managed => {
            return Err(DomainError::Conflict(format!("{email} already belongs to another directory user")));
        }
        Some(person) => {
            // language=PostgreSQL
            sqlx::query!(
                "update people set display_name = $3 where org_id = $1 and id = $2",
                org_id,
                person.id,
                input.person_name
            )
            .execute(&mut *tx)
            .await?;
            (person.id, person.active)
        }
        None => {
            let id = Uuid::new_v4();
            // language=PostgreSQL
            sqlx::query!(
                "insert into people (org_id, id, email, display_name, active, deactivated_at, created_at)
                 values ($1, $2, $3, $4, $5, case when $5 then null else $6::timestamptz end, $6)",
                org_id,
                id,
                email,
                input.person_name,
                input.active,
                now
            )
            .execute(&mut *tx)
            .await?;
            (id, input.active)
        }
    };
    let id = Uuid::new_v4();
    // language=PostgreSQL
    sqlx::query!(
        "insert into directory_users (org_id, directory_id, id, person_id, user_name, external_id, display_name, active, emails, resource,
                                      version, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11)",
        org_id,
        directory.id,
        id,
        person_id,
        input.user_name,
        input.external_id,
        input.display_name,
        input.active,
        input.emails,
        input.resource,
        now
    )
    .execute(&mut *tx)
    .await
    .on_constraint("directory_users_user_name_key", || uniqueness(&input.user_name))?;
    let mut details = json!({ "user_name": input.user_name, "person_id": person_id, "active": input.active });
    if was_active && !input.active {
        let ended = deactivate_person(&mut tx, &mut changes, org_id, person_id, now).await?;
        details["revoked_agents"] = ended.agents_json();
        details["revoked_tokens"] = json!(ended.live_tokens);
    }
    audit::record(
        &mut tx,
        NewEvent::new(org_id, directory.actor(), "scim.user.created")
            .target("person", person_id, &email)
            .details(details),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    changes.apply_to(mandates);
    Ok(UserRecord {
        id,
        person_id,
        resource: input.resource,
        active: input.active,
        version: 1,
        created_at: now,
        updated_at: now,
        groups: Vec::new(),
    })
}

struct Row {
    id: Uuid,
    person_id: Uuid,
    resource: Value,
    active: bool,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

async fn groups_of(
    executor: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    directory_id: Uuid,
    person_ids: &[Uuid],
) -> Result<Vec<(Uuid, GroupRef)>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select m.person_id, g.id, g.display_name from group_members m join groups g on g.org_id = m.org_id and g.id = m.group_id
         where m.org_id = $1 and g.directory_id = $2 and m.person_id = any($3) order by g.display_name",
        org_id,
        directory_id,
        person_ids
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.person_id, GroupRef { id: r.id, display_name: r.display_name })).collect())
}

fn record(row: Row, groups: &[(Uuid, GroupRef)]) -> UserRecord {
    UserRecord {
        id: row.id,
        person_id: row.person_id,
        resource: row.resource,
        active: row.active,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        groups: groups.iter().filter(|(p, _)| *p == row.person_id).map(|(_, g)| g.clone()).collect(),
    }
}

pub async fn get_user(pool: &PgPool, directory: &Directory, id: Uuid) -> Result<UserRecord, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query_as!(
        Row,
        "select id, person_id, resource, active, version, created_at, updated_at from directory_users
         where org_id = $1 and directory_id = $2 and id = $3",
        directory.org_id,
        directory.id,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    let groups = groups_of(pool, directory.org_id, directory.id, &[row.person_id]).await?;
    Ok(record(row, &groups))
}

/// A page of users (`start` is 1-based), and how many match in all.
pub async fn list_users(
    pool: &PgPool,
    directory: &Directory,
    filter: Option<&Filter>,
    start: i64,
    count: i64,
) -> Result<(i64, Vec<UserRecord>), DomainError> {
    let mut query = sqlx::QueryBuilder::new("select count(*) from directory_users r where r.org_id = ");
    query.push_bind(directory.org_id).push(" and r.directory_id = ").push_bind(directory.id);
    if let Some(filter) = filter {
        query.push(" and (");
        push_sql(&mut query, filter, user_columns).map_err(|e| DomainError::InvalidFilter(e.0))?;
        query.push(")");
    }
    let total: i64 = query.build_query_scalar().fetch_one(pool).await?;
    if count == 0 {
        return Ok((total, Vec::new()));
    }
    let mut query =
        sqlx::QueryBuilder::new("select id, person_id, resource, active, version, created_at, updated_at from directory_users r where r.org_id = ");
    query.push_bind(directory.org_id).push(" and r.directory_id = ").push_bind(directory.id);
    if let Some(filter) = filter {
        query.push(" and (");
        push_sql(&mut query, filter, user_columns).map_err(|e| DomainError::InvalidFilter(e.0))?;
        query.push(")");
    }
    query.push(" order by r.created_at, r.id limit ").push_bind(count).push(" offset ").push_bind(start - 1);
    let rows: Vec<(Uuid, Uuid, Value, bool, i64, OffsetDateTime, OffsetDateTime)> =
        query.build_query_as().fetch_all(pool).await?;
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(id, person_id, resource, active, version, created_at, updated_at)| Row {
            id,
            person_id,
            resource,
            active,
            version,
            created_at,
            updated_at,
        })
        .collect();
    let people: Vec<Uuid> = rows.iter().map(|r| r.person_id).collect();
    let groups = groups_of(pool, directory.org_id, directory.id, &people).await?;
    Ok((total, rows.into_iter().map(|r| record(r, &groups)).collect()))
}

/// Replaces or patches a user: `change` turns the current record into the new input, inside the
/// transaction that holds the row (so concurrent PATCHes apply one after the other).
#[allow(clippy::too_many_arguments)]
pub async fn modify_user(
    pool: &PgPool,
    mandates: &Mandates,
    directory: &Directory,
    id: Uuid,
    if_match: Option<i64>,
    change: impl FnOnce(&UserRecord) -> Result<UserInput, DomainError>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<UserRecord, DomainError> {
    let org_id = directory.org_id;
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let row = sqlx::query_as!(
        Row,
        "select id, person_id, resource, active, version, created_at, updated_at from directory_users
         where org_id = $1 and directory_id = $2 and id = $3 for update",
        org_id,
        directory.id,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    if if_match.is_some_and(|v| v != row.version) {
        return Err(DomainError::PreconditionFailed);
    }
    let groups = groups_of(&mut *tx, org_id, directory.id, &[row.person_id]).await?;
    let current = record(row, &groups);
    let input = change(&current)?;
    check(&input)?;
    let person_id = current.person_id;
    let email = input.email.to_lowercase();
    // language=PostgreSQL
    let person =
        sqlx::query!("select email, active from people where org_id = $1 and id = $2 for update", org_id, person_id)
            .fetch_one(&mut *tx)
            .await?;
    if person.email != email {
        // language=PostgreSQL
        sqlx::query!("update people set email = $3 where org_id = $1 and id = $2", org_id, person_id, email)
            .execute(&mut *tx)
            .await
            .on_constraint("people_org_email_key", || {
                DomainError::Conflict(format!("{email} already belongs to another person"))
            })?;
    }
    // language=PostgreSQL
    sqlx::query!(
        "update people set display_name = $3 where org_id = $1 and id = $2",
        org_id,
        person_id,
        input.person_name
    )
    .execute(&mut *tx)
    .await?;
    let version = current.version + 1;
    // language=PostgreSQL
    sqlx::query!(
        "update directory_users set user_name = $3, external_id = $4, display_name = $5, active = $6, emails = $7, resource = $8,
                version = $9, updated_at = $10
         where org_id = $1 and id = $2",
        org_id,
        id,
        input.user_name,
        input.external_id,
        input.display_name,
        input.active,
        input.emails,
        input.resource,
        version,
        now
    )
    .execute(&mut *tx)
    .await
    .on_constraint("directory_users_user_name_key", || uniqueness(&input.user_name))?;
    let mut changes = Changes::default();
    let (action, mut details) = match (person.active, input.active) {
        (true, false) => {
            let ended = deactivate_person(&mut tx, &mut changes, org_id, person_id, now).await?;
            (
                "scim.user.deactivated",
                json!({ "revoked_agents": ended.agents_json(), "revoked_tokens": ended.live_tokens }),
            )
        }
        (false, true) => {
            reactivate_person(&mut tx, &mut changes, org_id, person_id).await?;
            ("scim.user.reactivated", json!({}))
        }
        _ => ("scim.user.updated", json!({})),
    };
    details["user_name"] = json!(input.user_name);
    if person.email != email {
        details["email_changed_from"] = json!(person.email);
    }
    audit::record(
        &mut tx,
        NewEvent::new(org_id, directory.actor(), action).target("person", person_id, &email).details(details),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    changes.apply_to(mandates);
    Ok(UserRecord { resource: input.resource, active: input.active, version, updated_at: now, ..current })
}

/// Deletes a user: the leaver cascade, then the directory identity (the person stays, inactive,
/// for the record).
pub async fn delete_user(
    pool: &PgPool,
    mandates: &Mandates,
    directory: &Directory,
    id: Uuid,
    if_match: Option<i64>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let org_id = directory.org_id;
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select u.person_id, u.user_name, u.version, p.active, p.email from directory_users u
         join people p on p.org_id = u.org_id and p.id = u.person_id
         where u.org_id = $1 and u.directory_id = $2 and u.id = $3 for update of u, p",
        org_id,
        directory.id,
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    if if_match.is_some_and(|v| v != row.version) {
        return Err(DomainError::PreconditionFailed);
    }
    let mut changes = Changes::default();
    let mut details = json!({ "user_name": row.user_name });
    if row.active {
        let ended = deactivate_person(&mut tx, &mut changes, org_id, row.person_id, now).await?;
        details["revoked_agents"] = ended.agents_json();
        details["revoked_tokens"] = json!(ended.live_tokens);
    } else {
        changes.add(&mut tx, Change::Person { org_id, person_id: row.person_id }).await?;
    }
    // language=PostgreSQL
    sqlx::query!(
        "delete from group_members m using groups g
         where m.org_id = $1 and m.person_id = $2 and g.org_id = m.org_id and g.id = m.group_id and g.directory_id = $3",
        org_id,
        row.person_id,
        directory.id
    )
    .execute(&mut *tx)
    .await?;
    // language=PostgreSQL
    sqlx::query!("delete from directory_users where org_id = $1 and id = $2", org_id, id).execute(&mut *tx).await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, directory.actor(), "scim.user.deleted")
            .target("person", row.person_id, &row.email)
            .details(details),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    changes.apply_to(mandates);
    Ok(())
}
