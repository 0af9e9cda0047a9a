//! Delegation: which agents may receive an agent's tokens by RFC 8693 token exchange. An admin
//! (or an API key with `agents:write`, or the operator) designates a delegate; the agent's tokens
//! then carry it in `may_act`, the token endpoint exchanges only to designated delegates, and
//! introspection checks every hand-over of a delegated token against the designations. A
//! withdrawal revokes the tokens already handed on under it (for good: designating again revives
//! none). Designating and withdrawing are audited and announced, so every node's mandate cache
//! sees the change at once.

use crate::model::agents::DelegateRow;
use crate::model::Permission;
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::agents::tokens::end_token_trees;
use crate::server::domain::{Call, DomainError};
use serde_json::json;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Designate `delegate_id` as a delegate of `agent_id`, or withdraw the designation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Designation {
    Grant,
    Withdraw,
}

/// Designates (or withdraws) a delegate of an agent. Both agents are of the caller's
/// organization; an agent is never its own delegate; a revoked agent gets no new delegate.
/// Permission: agents.
pub async fn designate(
    pool: &sqlx::PgPool,
    cache: &Mandates,
    call: Call<'_>,
    agent_id: Uuid,
    delegate_id: Uuid,
    designation: Designation,
) -> Result<(), DomainError> {
    call.require(Permission::ManageAgents)?;
    if agent_id == delegate_id {
        return Err(DomainError::invalid("An agent cannot be its own delegate: choose another agent"));
    }
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let agents = sqlx::query!(
        "select id, name, status from agents where org_id = $1 and id in ($2, $3) for share",
        org_id,
        agent_id,
        delegate_id
    )
    .fetch_all(work.conn())
    .await?;
    let (Some(agent), Some(delegate)) =
        (agents.iter().find(|a| a.id == agent_id), agents.iter().find(|a| a.id == delegate_id))
    else {
        return Err(DomainError::NotFound);
    };
    let changed = match designation {
        Designation::Grant => {
            if agent.status != "active" || delegate.status != "active" {
                return Err(DomainError::Conflict(
                    "Both agents must be active: a revoked agent takes no part in delegation".into(),
                ));
            }
            // language=PostgreSQL
            sqlx::query!(
                "insert into agent_delegates (org_id, agent_id, delegate_id, designated_by, created_at)
                 values ($1, $2, $3, $4, $5) on conflict do nothing",
                org_id,
                agent_id,
                delegate_id,
                work.actor().label(),
                call.now
            )
            .execute(work.conn())
            .await?
            .rows_affected()
        }
        Designation::Withdraw => {
            // language=PostgreSQL
            sqlx::query!(
                "delete from agent_delegates where org_id = $1 and agent_id = $2 and delegate_id = $3",
                org_id,
                agent_id,
                delegate_id
            )
            .execute(work.conn())
            .await?
            .rows_affected()
        }
    };
    if changed == 0 {
        return Ok(());
    }
    let (action, ended) = match designation {
        Designation::Grant => ("agent.delegate_designated", 0),
        Designation::Withdraw => {
            // The tokens handed on under the designation end for good (designating the agent
            // again later revives none), with everything exchanged from them.
            // language=PostgreSQL
            let handed_on = sqlx::query_scalar!(
                "select jti from access_tokens
                 where org_id = $1 and revoked_at is null and expires_at > $4
                   and $3 = any(delegates) and (agent_id = $2 or $2 = any(delegates))",
                org_id,
                agent_id,
                delegate_id,
                call.now
            )
            .fetch_all(work.conn())
            .await?;
            ("agent.delegate_withdrawn", end_token_trees(&mut work, cache, &handed_on).await?)
        }
    };
    work.announce(cache, Change::Agent { org_id, agent_id }).await?;
    work.record(work.event(action).target("agent", agent_id, &agent.name).details(json!({
        "delegate_id": delegate_id,
        "delegate_name": delegate.name,
        "revoked_tokens": ended,
    })))
    .await?;
    work.commit().await?;
    Ok(())
}

/// The delegates of an agent, in the order they were designated.
pub async fn delegates(
    executor: impl PgExecutor<'_>,
    org_id: Uuid,
    agent_id: Uuid,
) -> Result<Vec<DelegateRow>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        DelegateRow,
        "select a.id as agent_id, a.name, a.client_id, a.status, d.designated_by, d.created_at as designated_at
         from agent_delegates d join agents a on a.org_id = d.org_id and a.id = d.delegate_id
         where d.org_id = $1 and d.agent_id = $2 order by d.created_at, a.id",
        org_id,
        agent_id
    )
    .fetch_all(executor)
    .await?)
}
