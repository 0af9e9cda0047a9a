//! The scope catalog: what agents may ask for, how risky it is, how long its tokens may live,
//! and optionally which directory groups may hold it (the ceiling).

use crate::model::agents::{GroupRef, ScopeCatalog, ScopeRow};
use crate::model::Permission;
use crate::server::domain::actor::Caller;
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::error::ResultExt;
use crate::server::domain::{Call, DomainError};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

pub const RISKS: [&str; 3] = ["low", "medium", "high"];

/// A scope name such as `crm.read`: lower-case dotted segments.
pub fn check_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim().to_string();
    let segment_ok = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    let valid = name.len() <= 100
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.split('.').all(segment_ok);
    if valid {
        Ok(name)
    } else {
        Err(DomainError::invalid(format!(
            "{name:?} is not a valid scope name: use lower-case words separated by dots, such as crm.read"
        )))
    }
}

fn check_risk(risk: &str) -> Result<&'static str, DomainError> {
    RISKS
        .into_iter()
        .find(|r| *r == risk.trim())
        .ok_or_else(|| DomainError::invalid("Risk must be low, medium or high"))
}

/// New catalog entry.
pub struct NewScope<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub risk: &'a str,
    pub max_token_lifetime_seconds: i32,
}

/// Permission: scopes.
pub async fn create(pool: &PgPool, call: Call<'_>, scope: NewScope<'_>) -> Result<Uuid, DomainError> {
    call.require(Permission::ManageScopes)?;
    let name = check_name(scope.name)?;
    let risk = check_risk(scope.risk)?;
    if !(30..=300).contains(&scope.max_token_lifetime_seconds) {
        return Err(DomainError::invalid("The maximum token lifetime must be between 30 and 300 seconds"));
    }
    let description = scope.description.trim();
    if description.chars().count() > 500 {
        return Err(DomainError::invalid("The description must be at most 500 characters"));
    }
    let mut work = call.begin(pool).await?;
    let entry = Entry { name: &name, description, risk, lifetime: scope.max_token_lifetime_seconds };
    // Whoever sets a risk level may not be the second pair of eyes on it.
    let id = insert(work.conn(), call.org_id(), entry, call.caller.admin_id(), call.now).await?;
    work.record(
        work.event("scope.created")
            .target("scope", id, &name)
            .details(json!({ "risk": risk, "max_token_lifetime_seconds": scope.max_token_lifetime_seconds })),
    )
    .await?;
    work.commit().await?;
    Ok(id)
}

/// A catalog entry as stored.
struct Entry<'a> {
    name: &'a str,
    description: &'a str,
    risk: &'a str,
    lifetime: i32,
}

/// Inserts an entry; `risk_set_by` is the admin who chose its risk level (none: the operator).
async fn insert(
    conn: &mut PgConnection,
    org_id: Uuid,
    entry: Entry<'_>,
    risk_set_by: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<Uuid, DomainError> {
    let Entry { name, description, risk, lifetime } = entry;
    let id = Uuid::new_v4();
    // language=PostgreSQL
    sqlx::query!(
        "insert into scopes (org_id, id, name, description, risk, max_token_lifetime_seconds, created_at, risk_set_by_admin_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        org_id,
        id,
        name,
        description,
        risk,
        lifetime,
        now,
        risk_set_by
    )
    .execute(conn)
    .await
    .on_constraint("scopes_name_key", || {
        DomainError::Conflict(format!("The catalog already has a scope named {name}"))
    })?;
    Ok(id)
}

/// The id of a catalog scope by name; with `create_missing`, unknown names are added as low
/// risk (the operator's `agent create --approve`).
pub async fn resolve(
    conn: &mut PgConnection,
    org_id: Uuid,
    name: &str,
    create_missing: bool,
    now: OffsetDateTime,
) -> Result<Uuid, DomainError> {
    let name = check_name(name)?;
    // language=PostgreSQL
    if let Some(id) = sqlx::query_scalar!("select id from scopes where org_id = $1 and name = $2", org_id, name)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    if !create_missing {
        return Err(DomainError::invalid(format!(
            "{name} is not in the scope catalog: add it in Settings → Scopes first"
        )));
    }
    insert(conn, org_id, Entry { name: &name, description: "", risk: "low", lifetime: 300 }, None, now).await
}

/// The catalog with ceilings, and the groups that ceilings can name.
/// Permission: view portal.
pub async fn catalog(pool: &PgPool, caller: Caller<'_>) -> Result<ScopeCatalog, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    // language=PostgreSQL
    let rows = sqlx::query!(
        r#"select s.id, s.name, s.description, s.risk, s.max_token_lifetime_seconds,
                  coalesce((select json_agg(json_build_object('id', c.group_id, 'display_name', coalesce(g.display_name, c.group_name),
                                                      'deleted', g.id is null) order by coalesce(g.display_name, c.group_name))
                            from scope_ceilings c left join groups g on g.org_id = c.org_id and g.id = c.group_id
                            where c.org_id = s.org_id and c.scope_id = s.id), '[]') as "ceiling!: serde_json::Value",
                  (select count(distinct r.agent_id) from scope_requests r join agents a on a.org_id = r.org_id and a.id = r.agent_id
                   where r.org_id = s.org_id and r.scope_id = s.id and r.status = 'approved' and a.status = 'active') as "holding!"
           from scopes s where s.org_id = $1 order by s.name"#,
        org_id
    )
    .fetch_all(pool)
    .await?;
    let scopes = rows
        .into_iter()
        .map(|r| ScopeRow {
            id: r.id,
            name: r.name,
            description: r.description,
            risk: r.risk,
            max_token_lifetime_seconds: r.max_token_lifetime_seconds,
            ceiling_groups: serde_json::from_value(r.ceiling).unwrap_or_default(),
            agents_holding: r.holding,
        })
        .collect();
    // language=PostgreSQL
    let groups = sqlx::query_as!(
        GroupRef,
        "select id, display_name from groups where org_id = $1 order by display_name",
        org_id
    )
    .fetch_all(pool)
    .await?;
    Ok(ScopeCatalog { scopes, groups })
}

/// Changes a scope's risk level. Raising it to high holds existing approvals (they were given under
/// the old level), and the admin who changed it may not approve its high-risk requests.
/// Permission: scope risk (owners only).
pub async fn set_risk(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    scope_id: Uuid,
    risk: &str,
) -> Result<(), DomainError> {
    call.require(Permission::ChangeScopeRisk)?;
    let risk = check_risk(risk)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let before =
        sqlx::query!("select name, risk from scopes where org_id = $1 and id = $2 for update", org_id, scope_id)
            .fetch_optional(work.conn())
            .await?
            .ok_or(DomainError::NotFound)?;
    if before.risk == risk {
        return Ok(());
    }
    // language=PostgreSQL
    sqlx::query!(
        "update scopes set risk = $3, risk_set_by_admin_id = $4 where org_id = $1 and id = $2",
        org_id,
        scope_id,
        risk,
        call.caller.admin_id()
    )
    .execute(work.conn())
    .await?;
    work.announce(cache, Change::Organization { org_id }).await?;
    work.record(
        work.event("scope.risk_changed")
            .target("scope", scope_id, &before.name)
            .details(json!({ "from": before.risk, "to": risk })),
    )
    .await?;
    work.commit().await?;
    Ok(())
}

/// Sets which groups may hold a scope (empty: everyone). Live tokens follow at once. A ceiling
/// whose group was deleted allows no one until this replaces it.
/// Permission: scopes.
pub async fn set_ceiling(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    scope_id: Uuid,
    group_ids: &[Uuid],
) -> Result<(), DomainError> {
    call.require(Permission::ManageScopes)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let name =
        sqlx::query_scalar!("select name from scopes where org_id = $1 and id = $2 for update", org_id, scope_id)
            .fetch_optional(work.conn())
            .await?
            .ok_or(DomainError::NotFound)?;
    // language=PostgreSQL
    let known = sqlx::query_scalar!(
        "select count(*) as \"n!\" from groups where org_id = $1 and id = any($2)",
        org_id,
        group_ids
    )
    .fetch_one(work.conn())
    .await?;
    let mut unique = group_ids.to_vec();
    unique.sort();
    unique.dedup();
    if known != unique.len() as i64 {
        return Err(DomainError::NotFound);
    }
    // language=PostgreSQL
    sqlx::query!("delete from scope_ceilings where org_id = $1 and scope_id = $2", org_id, scope_id)
        .execute(work.conn())
        .await?;
    // language=PostgreSQL
    sqlx::query!(
        "insert into scope_ceilings (org_id, scope_id, group_id, group_name)
         select $1, $2, g.id, g.display_name from groups g where g.org_id = $1 and g.id = any($3::uuid[])",
        org_id,
        scope_id,
        &unique
    )
    .execute(work.conn())
    .await?;
    work.announce(cache, Change::Organization { org_id }).await?;
    work.record(
        work.event("scope.ceiling_changed").target("scope", scope_id, &name).details(json!({ "group_ids": unique })),
    )
    .await?;
    work.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names() {
        for good in ["crm.read", "mail.send", "github.repo-admin", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["CRM.read", "crm..read", ".crm", "crm read", "1crm", "", "crm.read*"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
