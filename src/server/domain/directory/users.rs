//! Directory users and the lifecycle they drive. Joiner: a new active user becomes a person
//! (or takes over an existing person with that email who no directory manages yet). Leaver:
//! `active=false` or deletion goes through `leaver::leave` in the same transaction (agents
//! revoked, tokens inactive everywhere, pending requests cancelled, portal sessions ended).
//! Reactivation revives the person, not the agents. An email change updates the person's
//! address and never links to another one.

use super::filter::{push_sql, AttrPath, Column, Filter};
use super::leaver::{self, Departure};
use super::{ChangeError, Directory, DirectoryCall};
use crate::model::agents::GroupRef;
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::error::ResultExt;
use crate::server::domain::DomainError;
use serde_json::{json, Value};
use sqlx::PgPool;
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

/// Provisions a user (a joiner; created inactive, they take over an existing active person as
/// a leaver).
pub async fn create_user(
    pool: &PgPool,
    cache: &Mandates,
    call: DirectoryCall<'_>,
    input: UserInput,
) -> Result<UserRecord, DomainError> {
    check(&input)?;
    let (org_id, now) = (call.directory.org_id(), call.now);
    let mut work = call.begin(pool).await?;
    let email = input.email.to_lowercase();
    // language=PostgreSQL
    let existing = sqlx::query!(
        r#"select p.id, p.active, exists(select 1 from directory_users u where u.org_id = p.org_id and u.person_id = p.id) as "managed!"
           from people p where p.org_id = $1 and p.email = $2 for update of p"#,
        org_id,
        email
    )
    .fetch_optional(work.conn())
    .await?;
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
            .execute(work.conn())
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
            .execute(work.conn())
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
        call.directory.id(),
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
    .execute(work.conn())
    .await
    .on_constraint("directory_users_user_name_key", || uniqueness(&input.user_name))?;
    let mut details = json!({ "user_name": input.user_name, "person_id": person_id, "active": input.active });
    if was_active && !input.active {
        merge(&mut details, leaver::leave(&mut work, cache, person_id).await?.details());
    }
    let event = work.event("scim.user.created").target("person", person_id, &email).details(details);
    work.record(event).await?;
    work.commit().await?;
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
        directory.org_id(),
        directory.id(),
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    let groups = groups_of(pool, directory.org_id(), directory.id(), &[row.person_id]).await?;
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
    query.push_bind(directory.org_id()).push(" and r.directory_id = ").push_bind(directory.id());
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
    query.push_bind(directory.org_id()).push(" and r.directory_id = ").push_bind(directory.id());
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
    let groups = groups_of(pool, directory.org_id(), directory.id(), &people).await?;
    Ok((total, rows.into_iter().map(|r| record(r, &groups)).collect()))
}

/// What modifying a user did to the person behind it.
pub enum Modified {
    Updated,
    /// The user became inactive: the person left, and this is what ended.
    Left(Departure),
    /// The user became active again (the person's revoked agents stay revoked).
    Rejoined,
}

/// Replaces or patches a user: `change` turns the locked current record into the new input,
/// inside the transaction that holds the row (so concurrent PATCHes apply one after the other).
/// A refusal of `change` comes back as it was given.
pub async fn modify_user<E>(
    pool: &PgPool,
    cache: &Mandates,
    call: DirectoryCall<'_>,
    id: Uuid,
    if_match: Option<i64>,
    change: impl FnOnce(&UserRecord) -> Result<UserInput, E>,
) -> Result<(UserRecord, Modified), ChangeError<E>> {
    let (directory, now) = (call.directory, call.now);
    let org_id = directory.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let row = sqlx::query_as!(
        Row,
        "select id, person_id, resource, active, version, created_at, updated_at from directory_users
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
    let groups = groups_of(work.conn(), org_id, directory.id(), &[row.person_id]).await?;
    let current = record(row, &groups);
    let input = change(&current).map_err(ChangeError::Refused)?;
    check(&input)?;
    let person_id = current.person_id;
    let email = input.email.to_lowercase();
    // language=PostgreSQL
    let person =
        sqlx::query!("select email, active from people where org_id = $1 and id = $2 for update", org_id, person_id)
            .fetch_one(work.conn())
            .await?;
    if person.email != email {
        // language=PostgreSQL
        sqlx::query!("update people set email = $3 where org_id = $1 and id = $2", org_id, person_id, email)
            .execute(work.conn())
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
    .execute(work.conn())
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
    .execute(work.conn())
    .await
    .on_constraint("directory_users_user_name_key", || uniqueness(&input.user_name))?;
    let modified = match (person.active, input.active) {
        (true, false) => Modified::Left(leaver::leave(&mut work, cache, person_id).await?),
        (false, true) => {
            leaver::rejoin(&mut work, cache, person_id).await?;
            Modified::Rejoined
        }
        _ => Modified::Updated,
    };
    let (action, mut details) = match &modified {
        Modified::Left(departure) => ("scim.user.deactivated", departure.details()),
        Modified::Rejoined => ("scim.user.reactivated", json!({})),
        Modified::Updated => ("scim.user.updated", json!({})),
    };
    details["user_name"] = json!(input.user_name);
    if person.email != email {
        details["email_changed_from"] = json!(person.email);
    }
    let event = work.event(action).target("person", person_id, &email).details(details);
    work.record(event).await?;
    work.commit().await?;
    Ok((UserRecord { resource: input.resource, active: input.active, version, updated_at: now, ..current }, modified))
}

/// Deletes a user: the leaver cascade, then the directory identity (the person stays, inactive,
/// for the record).
pub async fn delete_user(
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
        "select u.person_id, u.user_name, u.version, p.active, p.email from directory_users u
         join people p on p.org_id = u.org_id and p.id = u.person_id
         where u.org_id = $1 and u.directory_id = $2 and u.id = $3 for update of u, p",
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
    let mut details = json!({ "user_name": row.user_name });
    if row.active {
        merge(&mut details, leaver::leave(&mut work, cache, row.person_id).await?.details());
    } else {
        work.announce(cache, Change::Person { org_id, person_id: row.person_id }).await?;
    }
    // language=PostgreSQL
    sqlx::query!(
        "delete from group_members m using groups g
         where m.org_id = $1 and m.person_id = $2 and g.org_id = m.org_id and g.id = m.group_id and g.directory_id = $3",
        org_id,
        row.person_id,
        directory.id()
    )
    .execute(work.conn())
    .await?;
    // language=PostgreSQL
    sqlx::query!("delete from directory_users where org_id = $1 and id = $2", org_id, id).execute(work.conn()).await?;
    let event = work.event("scim.user.deleted").target("person", row.person_id, &row.email).details(details);
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}

/// Adds the fields of `more` (an object) to `details` (an object).
fn merge(details: &mut Value, more: Value) {
    if let (Some(details), Value::Object(more)) = (details.as_object_mut(), more) {
        details.extend(more);
    }
}
