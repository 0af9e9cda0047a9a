//! Everything that ends an agent's authority, effective before the call returns: revoking one
//! agent, revoking every agent of a person (an admin's decision, or the leaver rule in
//! `directory::leaver`), and the impact previews the portal shows before either.
//!
//! Ending an agent revokes it, cancels its pending scope requests and announces the change, so
//! every token it carries (as the mandate's agent or as a delegate) is inactive at the next
//! introspection on every node.

use crate::model::agents::RevocationImpact;
use crate::model::Permission;
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::directory::people;
use crate::server::domain::{Call, DomainError, Work};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest reason an admin may give.
const MAX_REASON_CHARS: usize = 500;

fn checked_reason(reason: &str) -> Result<&str, DomainError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(DomainError::invalid(format!("The reason must be at most {MAX_REASON_CHARS} characters")));
    }
    Ok(reason)
}

/// Live tokens that carry an agent (as the mandate's agent or as a delegate).
async fn live_tokens_of(
    executor: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    agent_id: Uuid,
    now: OffsetDateTime,
) -> Result<i64, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        "select count(*) as \"n!\" from access_tokens
         where org_id = $1 and (agent_id = $2 or $2 = any(delegates)) and expires_at > $3 and revoked_at is null",
        org_id,
        agent_id,
        now
    )
    .fetch_one(executor)
    .await?)
}

/// Revokes an agent (permission: agents): its credentials stop working and every token it
/// carries is inactive before this returns. Returns the number of live tokens that ended (0 if
/// it was already revoked).
pub async fn revoke(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    agent_id: Uuid,
    reason: &str,
) -> Result<i64, DomainError> {
    call.require(Permission::ManageAgents)?;
    let reason = checked_reason(reason)?;
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    // language=PostgreSQL
    let agent =
        sqlx::query!("select name, status from agents where org_id = $1 and id = $2 for update", org_id, agent_id)
            .fetch_optional(work.conn())
            .await?
            .ok_or(DomainError::NotFound)?;
    if agent.status == "revoked" {
        return Ok(0);
    }
    let revoked_tokens = live_tokens_of(work.conn(), org_id, agent_id, call.now).await?;
    end_agent(&mut work, cache, agent_id, reason).await?;
    let event = work
        .event("agent.revoked")
        .target("agent", agent_id, &agent.name)
        .details(json!({ "revoked_tokens": revoked_tokens, "reason": reason }));
    work.record(event).await?;
    work.commit().await?;
    Ok(revoked_tokens)
}

/// Ends one agent inside a unit of work: revoked, pending requests cancelled, announced.
/// Returns how many pending requests were cancelled.
async fn end_agent<'a>(
    work: &mut Work<'a>,
    cache: &'a Mandates,
    agent_id: Uuid,
    reason: &str,
) -> Result<u64, DomainError> {
    let (org_id, now) = (work.org_id(), work.now());
    // language=PostgreSQL
    sqlx::query!(
        "update agents set status = 'revoked', revoked_at = $3, revoked_reason = nullif($4, '') where org_id = $1 and id = $2",
        org_id,
        agent_id,
        now,
        reason
    )
    .execute(work.conn())
    .await?;
    // language=PostgreSQL
    let cancelled = sqlx::query!(
        "update scope_requests set status = 'cancelled', decided_at = $3, decision_note = 'agent revoked'
         where org_id = $1 and agent_id = $2 and status = 'pending'",
        org_id,
        agent_id,
        now
    )
    .execute(work.conn())
    .await?
    .rows_affected();
    work.announce(cache, Change::Agent { org_id, agent_id }).await?;
    Ok(cancelled)
}

/// Revokes every active agent of a person (permission: agents), in one transaction and one
/// audit event.
pub async fn revoke_all_of_person(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    person_id: Uuid,
    reason: &str,
) -> Result<RevocationImpact, DomainError> {
    call.require(Permission::ManageAgents)?;
    let reason = checked_reason(reason)?;
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    let person = people::get(work.conn(), org_id, person_id).await?;
    let ended = end_agents_of_person(&mut work, cache, person_id, reason).await?;
    let event = work.event("person.agents_revoked").target("person", person_id, &person.email).details(json!({
        "agents": ended.agents_json(),
        "revoked_tokens": ended.live_tokens,
        "reason": reason,
    }));
    work.record(event).await?;
    work.commit().await?;
    Ok(RevocationImpact {
        agents: ended.agents.into_iter().map(|(_, name)| name).collect(),
        live_tokens: ended.live_tokens,
        scopes: Vec::new(),
    })
}

/// What ending a person's agents ended.
pub struct EndedAgents {
    pub agents: Vec<(Uuid, String)>,
    pub live_tokens: i64,
    pub cancelled_requests: u64,
}

impl EndedAgents {
    pub fn agents_json(&self) -> serde_json::Value {
        json!(self.agents.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect::<Vec<_>>())
    }
}

/// Ends every active agent of a person inside a unit of work (announcing each).
pub(crate) async fn end_agents_of_person<'a>(
    work: &mut Work<'a>,
    cache: &'a Mandates,
    person_id: Uuid,
    reason: &str,
) -> Result<EndedAgents, DomainError> {
    let (org_id, now) = (work.org_id(), work.now());
    // language=PostgreSQL
    let agents = sqlx::query!(
        "select id, name from agents where org_id = $1 and owner_id = $2 and status = 'active' order by name for update",
        org_id,
        person_id
    )
    .fetch_all(work.conn())
    .await?;
    let mut ended = EndedAgents { agents: Vec::new(), live_tokens: 0, cancelled_requests: 0 };
    for agent in agents {
        ended.live_tokens += live_tokens_of(work.conn(), org_id, agent.id, now).await?;
        ended.cancelled_requests += end_agent(work, cache, agent.id, reason).await?;
        ended.agents.push((agent.id, agent.name));
    }
    Ok(ended)
}

/// What revoking an agent would end.
/// Permission: view portal.
pub async fn impact(
    pool: &PgPool,
    caller: crate::server::domain::Caller<'_>,
    agent_id: Uuid,
    now: OffsetDateTime,
) -> Result<RevocationImpact, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    // language=PostgreSQL
    let agent = sqlx::query!(
        r#"select a.name, coalesce((select array_agg(s.name order by s.name) from scope_requests r
                   join scopes s on s.org_id = r.org_id and s.id = r.scope_id
                   where r.org_id = a.org_id and r.agent_id = a.id and r.status = 'approved'), '{}') as "scopes!"
           from agents a where a.org_id = $1 and a.id = $2 and a.status = 'active'"#,
        org_id,
        agent_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok(RevocationImpact {
        agents: vec![agent.name],
        live_tokens: live_tokens_of(pool, org_id, agent_id, now).await?,
        scopes: agent.scopes,
    })
}

/// What revoking all of a person's agents (or the person leaving) would end.
/// Permission: view portal.
pub async fn person_impact(
    pool: &PgPool,
    caller: crate::server::domain::Caller<'_>,
    person_id: Uuid,
    now: OffsetDateTime,
) -> Result<RevocationImpact, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    people::get(pool, org_id, person_id).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select coalesce(array_agg(a.name order by a.name), '{}') as "agents!",
                  (select count(*) from access_tokens t join agents b on b.org_id = t.org_id and b.id = t.agent_id
                   where t.org_id = $1 and b.owner_id = $2 and b.status = 'active' and t.expires_at > $3 and t.revoked_at is null) as "live!"
           from agents a where a.org_id = $1 and a.owner_id = $2 and a.status = 'active'"#,
        org_id,
        person_id,
        now
    )
    .fetch_one(pool)
    .await?;
    Ok(RevocationImpact { agents: row.agents, live_tokens: row.live, scopes: Vec::new() })
}
