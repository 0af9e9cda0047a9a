//! Scope requests and their decisions. An approver approves (optionally until a date) or
//! denies with a reason; a high-risk scope needs someone other than the agent's owner, and a
//! person rather than an API key. Withdrawing an approval takes the scope out of every live
//! token at once.

use crate::model::agents::{PersonRef, ScopeRequestRow};
use crate::model::Permission;
use crate::server::domain::actor::Caller;
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::error::ResultExt;
use crate::server::domain::{agents::scopes, Call, DomainError, Work};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A decision on a pending request.
#[derive(Clone, Debug)]
pub enum Decision {
    Approve { until: Option<OffsetDateTime>, note: String },
    Deny { reason: String },
}

/// Inserts a pending request and its audit event (inside the caller's unit of work).
pub(crate) async fn insert_request(
    work: &mut Work<'_>,
    agent_id: Uuid,
    agent_name: &str,
    scope_id: Uuid,
    scope_name: &str,
    reason: &str,
) -> Result<Uuid, DomainError> {
    let org_id = work.org_id();
    let id = Uuid::new_v4();
    // language=PostgreSQL
    sqlx::query!(
        "insert into scope_requests (org_id, id, agent_id, scope_id, status, reason, requested_by, requested_at)
         values ($1, $2, $3, $4, 'pending', $5, $6, $7)",
        org_id,
        id,
        agent_id,
        scope_id,
        reason,
        work.actor().label(),
        work.now()
    )
    .execute(work.conn())
    .await
    .on_constraint("scope_requests_live_key", || {
        DomainError::Conflict(format!("{agent_name} already has {scope_name} approved or waiting for a decision"))
    })?;
    let event = work
        .event("scope.requested")
        .target("agent", agent_id, agent_name)
        .details(json!({ "scope": scope_name, "request_id": id, "reason": reason }));
    work.record(event).await?;
    Ok(id)
}

/// An agent asks for one more scope.
/// Permission: agents.
pub async fn request(
    pool: &PgPool,
    call: Call<'_>,
    agent_id: Uuid,
    scope: &str,
    reason: &str,
) -> Result<Uuid, DomainError> {
    call.require(Permission::ManageAgents)?;
    let reason = reason.trim();
    if reason.chars().count() > 1000 {
        return Err(DomainError::invalid("The reason must be at most 1000 characters"));
    }
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let agent =
        sqlx::query!("select name, status from agents where org_id = $1 and id = $2 for update", org_id, agent_id)
            .fetch_optional(work.conn())
            .await?
            .ok_or(DomainError::NotFound)?;
    if agent.status != "active" {
        return Err(DomainError::Conflict(format!("{} is revoked and cannot request scopes", agent.name)));
    }
    let scope_id = scopes::resolve(work.conn(), org_id, scope, false, call.now).await?;
    let id = insert_request(&mut work, agent_id, &agent.name, scope_id, scope.trim(), reason).await?;
    work.commit().await?;
    Ok(id)
}

/// Approves a pending request inside the caller's unit of work (rules checked here too).
pub(crate) async fn approve_in(
    work: &mut Work<'_>,
    caller: Caller<'_>,
    request_id: Uuid,
    until: Option<OffsetDateTime>,
) -> Result<Uuid, DomainError> {
    decide_in(work, caller, request_id, Decision::Approve { until, note: String::new() }).await
}

/// Decides a pending request. Returns the agent's id.
/// Permission: approvals.
pub async fn decide(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    request_id: Uuid,
    decision: Decision,
) -> Result<Uuid, DomainError> {
    call.require(Permission::DecideApprovals)?;
    let mut work = call.begin(pool).await?;
    let agent_id = decide_in(&mut work, call.caller, request_id, decision).await?;
    work.announce(cache, Change::Agent { org_id: call.org_id(), agent_id }).await?;
    work.commit().await?;
    Ok(agent_id)
}

/// Decides a pending request inside a unit of work. `caller` is who decides: the high-risk rule
/// looks at who they are.
async fn decide_in(
    work: &mut Work<'_>,
    caller: Caller<'_>,
    request_id: Uuid,
    decision: Decision,
) -> Result<Uuid, DomainError> {
    let (org_id, now) = (work.org_id(), work.now());
    // language=PostgreSQL
    let request = sqlx::query!(
        "select r.status, r.agent_id, a.name as agent_name, a.owner_id, a.status as agent_status, s.name as scope, s.risk,
                a.registered_by_admin_id, s.risk_set_by_admin_id
         from scope_requests r
         join agents a on a.org_id = r.org_id and a.id = r.agent_id
         join scopes s on s.org_id = r.org_id and s.id = r.scope_id
         where r.org_id = $1 and r.id = $2
         for update of r",
        org_id,
        request_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    if request.status != "pending" {
        return Err(DomainError::Conflict(format!("This request was already decided ({}).", request.status)));
    }
    let (status, action, until, note, details) = match decision {
        Decision::Approve { until, note } => {
            if request.risk == "high" {
                if caller.person_id() == Some(request.owner_id) {
                    return Err(DomainError::NotAllowed(format!(
                        "{} is a high-risk scope: it must be approved by someone other than the agent's owner.",
                        request.scope
                    )));
                }
                let admin = caller.admin_id();
                if admin.is_some() && admin == request.registered_by_admin_id {
                    return Err(DomainError::NotAllowed(format!(
                        "{} is a high-risk scope: it must be approved by someone other than the admin who registered {}.",
                        request.scope, request.agent_name
                    )));
                }
                if admin.is_some() && admin == request.risk_set_by_admin_id {
                    return Err(DomainError::NotAllowed(format!(
                        "{} is a high-risk scope: it must be approved by someone other than the admin who set its risk level.",
                        request.scope
                    )));
                }
                if matches!(caller, Caller::ApiKey(_)) {
                    return Err(DomainError::NotAllowed(format!(
                        "{} is a high-risk scope: a person must approve it in the portal, not an API key.",
                        request.scope
                    )));
                }
            }
            if until.is_some_and(|until| until <= now) {
                return Err(DomainError::invalid("The approval must end in the future"));
            }
            let details = json!({ "scope": request.scope, "request_id": request_id, "risk": request.risk,
                                  "until": until.map(|u| u.unix_timestamp()), "note": note.trim() });
            ("approved", "scope.approved", until, note.trim().to_string(), details)
        }
        Decision::Deny { reason } => {
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(DomainError::invalid("Give a reason for the denial (at most 500 characters)"));
            }
            let details = json!({ "scope": request.scope, "request_id": request_id, "reason": reason });
            ("denied", "scope.denied", None, reason, details)
        }
    };
    if request.agent_status != "active" {
        return Err(DomainError::Conflict(format!("{} is revoked.", request.agent_name)));
    }
    let actor = work.actor().clone();
    // language=PostgreSQL
    sqlx::query!(
        "update scope_requests set status = $3, decided_by_type = $4, decided_by_id = $5, decided_by_label = $6,
                decided_at = $7, decision_note = nullif($8, ''), expires_at = $9
         where org_id = $1 and id = $2",
        org_id,
        request_id,
        status,
        actor.kind(),
        actor.id(),
        actor.label(),
        now,
        note,
        until
    )
    .execute(work.conn())
    .await?;
    let event = work.event(action).target("agent", request.agent_id, &request.agent_name).details(details);
    work.record(event).await?;
    Ok(request.agent_id)
}

/// Withdraws an approval: the scope leaves the mandate and every live token at once.
/// Permission: approvals.
pub async fn withdraw(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    request_id: Uuid,
    reason: &str,
) -> Result<(), DomainError> {
    call.require(Permission::DecideApprovals)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "update scope_requests r set status = 'withdrawn', decision_note = nullif($3, ''), decided_at = $4
         from agents a, scopes s
         where r.org_id = $1 and r.id = $2 and r.status = 'approved'
           and a.org_id = r.org_id and a.id = r.agent_id and s.org_id = r.org_id and s.id = r.scope_id
         returning r.agent_id, a.name as agent_name, s.name as scope",
        org_id,
        request_id,
        reason.trim(),
        call.now
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    work.announce(cache, Change::Agent { org_id, agent_id: row.agent_id }).await?;
    let event = work
        .event("scope.withdrawn")
        .target("agent", row.agent_id, &row.agent_name)
        .details(json!({ "scope": row.scope, "request_id": request_id, "reason": reason.trim() }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}

/// Requests of the organization with a status (`pending` by default), oldest first.
/// Permission: view portal.
pub async fn list(pool: &PgPool, caller: Caller<'_>, status: &str) -> Result<Vec<ScopeRequestRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let status = if status.trim().is_empty() { "pending" } else { status.trim() };
    if !["pending", "approved", "denied", "withdrawn", "cancelled"].contains(&status) {
        return Err(DomainError::invalid("status must be pending, approved, denied, withdrawn or cancelled"));
    }
    // language=PostgreSQL
    let rows = sqlx::query!(
        r#"select r.id, r.agent_id, a.name as agent_name, r.reason, r.requested_by, r.requested_at, r.status,
                  s.name as scope, s.description, s.risk,
                  p.id as owner_id, p.email as owner_email, p.display_name as owner_name, p.active as owner_active,
                  not (not exists (select 1 from scope_ceilings c where c.org_id = s.org_id and c.scope_id = s.id)
                       or exists (select 1 from scope_ceilings c join group_members m on m.org_id = c.org_id and m.group_id = c.group_id
                                  where c.org_id = s.org_id and c.scope_id = s.id and m.person_id = a.owner_id)) as "blocked!"
           from scope_requests r
           join agents a on a.org_id = r.org_id and a.id = r.agent_id
           join scopes s on s.org_id = r.org_id and s.id = r.scope_id
           join people p on p.org_id = a.org_id and p.id = a.owner_id
           where r.org_id = $1 and r.status = $2
           order by r.requested_at, s.name
           limit 500"#,
        caller.org_id(),
        status
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ScopeRequestRow {
            id: r.id,
            agent_id: r.agent_id,
            agent_name: r.agent_name,
            owner: PersonRef {
                id: r.owner_id,
                email: r.owner_email,
                display_name: r.owner_name,
                active: r.owner_active,
            },
            scope: r.scope,
            scope_description: r.description,
            risk: r.risk,
            reason: r.reason,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            status: r.status,
            blocked_by_ceiling: r.blocked,
        })
        .collect())
}
