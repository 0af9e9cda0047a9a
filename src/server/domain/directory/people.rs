//! People of an organization (agent owners, admins, directory users) and their groups.
//! Deactivating a person in the portal is the leaver rule (`leaver::set_active`).

use crate::model::agents::{PersonRef, PersonRow};
use crate::model::Permission;
use crate::server::domain::actor::Caller;
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::{validate, Call, DomainError};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// A new person's checked email and display name (the email's local part when none is given).
fn checked(email: &str, display_name: Option<&str>) -> Result<(String, String), DomainError> {
    let email = validate::email(email)?;
    let name = match display_name {
        Some(name) => validate::label("Name", name, 200)?,
        None => email.split('@').next().unwrap_or(&email).to_string(),
    };
    Ok((email, name))
}

/// The person with `email` in the organization, created (active) if unknown.
pub async fn find_or_create(
    conn: &mut PgConnection,
    org_id: Uuid,
    email: &str,
    display_name: Option<&str>,
    now: OffsetDateTime,
) -> Result<Uuid, DomainError> {
    let (email, name) = checked(email, display_name)?;
    // language=PostgreSQL
    let id = sqlx::query_scalar!(
        "insert into people (org_id, id, email, display_name, created_at) values ($1, $2, $3, $4, $5)
         on conflict (org_id, email) do update set email = excluded.email
         returning id",
        org_id,
        Uuid::new_v4(),
        email,
        name,
        now
    )
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// Creates a person with `email`, or returns `None` when the organization already has one.
pub async fn create(
    conn: &mut PgConnection,
    org_id: Uuid,
    email: &str,
    display_name: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<Uuid>, DomainError> {
    let (email, name) = checked(email, display_name)?;
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        "insert into people (org_id, id, email, display_name, created_at) values ($1, $2, $3, $4, $5)
         on conflict (org_id, email) do nothing returning id",
        org_id,
        Uuid::new_v4(),
        email,
        name,
        now
    )
    .fetch_optional(conn)
    .await?)
}

/// A person of the organization by id.
pub async fn get(executor: impl sqlx::PgExecutor<'_>, org_id: Uuid, person_id: Uuid) -> Result<PersonRef, DomainError> {
    // language=PostgreSQL
    sqlx::query_as!(
        PersonRef,
        "select id, email, display_name, active from people where org_id = $1 and id = $2",
        org_id,
        person_id
    )
    .fetch_optional(executor)
    .await?
    .ok_or(DomainError::NotFound)
}

/// People with their groups, admin role and agents.
/// Permission: view portal.
pub async fn list(pool: &PgPool, caller: Caller<'_>, now: OffsetDateTime) -> Result<Vec<PersonRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    let rows = sqlx::query!(
        r#"select p.id, p.email, p.display_name, p.active,
                  exists(select 1 from admins a where a.org_id = p.org_id and a.person_id = p.id) as "is_admin!",
                  coalesce((select array_agg(g.display_name order by g.display_name) from group_members m
                            join groups g on g.org_id = m.org_id and g.id = m.group_id
                            where m.org_id = p.org_id and m.person_id = p.id), '{}') as "groups!",
                  (select count(*) from agents a where a.org_id = p.org_id and a.owner_id = p.id and a.status = 'active') as "active_agents!",
                  (select count(*) from access_tokens t where t.org_id = p.org_id and t.owner_id = p.id
                       and t.expires_at > $2 and t.revoked_at is null) as "live_tokens!"
           from people p where p.org_id = $1
           order by p.active desc, p.display_name, p.email"#,
        caller.org_id(),
        now
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PersonRow {
            person: PersonRef { id: r.id, email: r.email, display_name: r.display_name, active: r.active },
            is_admin: r.is_admin,
            groups: r.groups,
            active_agents: r.active_agents,
            live_tokens: if r.active { r.live_tokens } else { 0 },
        })
        .collect())
}

/// Creates a group (directories will create them too) — used by the demo and tests.
pub async fn create_group(conn: &mut PgConnection, org_id: Uuid, name: &str) -> Result<Uuid, DomainError> {
    let name = validate::label("Group name", name, 200)?;
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        "insert into groups (org_id, id, display_name) values ($1, $2, $3)
         on conflict (org_id, display_name) do update set display_name = excluded.display_name returning id",
        org_id,
        Uuid::new_v4(),
        name
    )
    .fetch_one(conn)
    .await?)
}

/// Adds or removes a person from a group by hand (permission: people; directories manage
/// their own groups' members). The person's agents' mandates are recomputed on every node.
pub async fn set_membership(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    group_id: Uuid,
    person_id: Uuid,
    member: bool,
) -> Result<(), DomainError> {
    call.require(Permission::ManagePeople)?;
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    let person = get(work.conn(), org_id, person_id).await?;
    // language=PostgreSQL
    let group = sqlx::query_scalar!("select display_name from groups where org_id = $1 and id = $2", org_id, group_id)
        .fetch_optional(work.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    if member {
        // language=PostgreSQL
        sqlx::query!(
            "insert into group_members (org_id, group_id, person_id) values ($1, $2, $3) on conflict do nothing",
            org_id,
            group_id,
            person_id
        )
        .execute(work.conn())
        .await?;
    } else {
        // language=PostgreSQL
        sqlx::query!(
            "delete from group_members where org_id = $1 and group_id = $2 and person_id = $3",
            org_id,
            group_id,
            person_id
        )
        .execute(work.conn())
        .await?;
    }
    work.announce(cache, Change::Person { org_id, person_id }).await?;
    let action = if member { "person.group_added" } else { "person.group_removed" };
    let event = work
        .event(action)
        .target("person", person_id, &person.email)
        .details(json!({ "group_id": group_id, "group": group }));
    work.record(event).await?;
    work.commit().await
}
