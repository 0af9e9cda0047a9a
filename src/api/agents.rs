//! Agents: list, register, inspect, rotate secrets, request scopes, revoke (with a preview of
//! what revocation ends).

use crate::error::AppError;
use crate::model::agents::{AgentCredentials, AgentDetail, AgentRow, PersonRef, RevocationImpact, ScopeRow};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::model::agents::AgentFilter,
    crate::server::domain::{
        self, agents::registry::NewAgent, agents::registry::Owner, agents::revocation, Call, Caller,
    },
};

/// What the registration form offers: active people as owners, the scope catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentFormOptions {
    pub people: Vec<PersonRef>,
    pub scopes: Vec<ScopeRow>,
}

#[server(prefix = "/rpc", endpoint = "agents/list")]
pub async fn list_agents(
    search: String,
    owner: String,
    status: String,
    scope: String,
) -> Result<Vec<AgentRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let filter = AgentFilter { search, owner, status, scope };
    domain::agents::registry::list(&call.state.pool, Caller::Admin(&admin), &filter, now())
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "agents/options")]
pub async fn get_agent_form_options() -> Result<AgentFormOptions, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let caller = Caller::Admin(&admin);
    let people = domain::directory::people::list(&call.state.pool, caller, now()).await.map_err(|e| call.fail(e))?;
    let catalog = domain::agents::scopes::catalog(&call.state.pool, caller).await.map_err(|e| call.fail(e))?;
    Ok(AgentFormOptions {
        people: people.into_iter().map(|p| p.person).filter(|p| p.active).collect(),
        scopes: catalog.scopes,
    })
}

/// Registers an agent; the client secret is in the answer once and never again.
#[server(prefix = "/rpc", endpoint = "agents/register")]
pub async fn register_agent(
    name: String,
    description: String,
    owner_id: Uuid,
    #[server(default)] scopes: Vec<String>,
    reason: String,
) -> Result<AgentCredentials, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let input = NewAgent {
        name: &name,
        description: &description,
        owner: Owner::Id(owner_id),
        scopes: &scopes,
        reason: &reason,
        approve: false,
    };
    domain::agents::registry::register(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), input)
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "agents/detail")]
pub async fn get_agent(agent_id: Uuid) -> Result<AgentDetail, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::registry::detail(&call.state.pool, Caller::Admin(&admin), agent_id, now())
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "agents/impact")]
pub async fn preview_agent_revocation(agent_id: Uuid) -> Result<RevocationImpact, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    revocation::impact(&call.state.pool, Caller::Admin(&admin), agent_id, now()).await.map_err(|e| call.fail(e))
}

/// Revokes the agent; returns how many live tokens ended.
#[server(prefix = "/rpc", endpoint = "agents/revoke")]
pub async fn revoke_agent(agent_id: Uuid, reason: String) -> Result<i64, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    revocation::revoke(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        agent_id,
        &reason,
    )
    .await
    .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "agents/rotate-secret")]
pub async fn rotate_agent_secret(agent_id: Uuid) -> Result<AgentCredentials, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::registry::rotate_secret(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        agent_id,
    )
    .await
    .map_err(|e| call.fail(e))
}

/// Designates `delegate_id` as a delegate of `agent_id` (token exchange), or withdraws it.
#[server(prefix = "/rpc", endpoint = "agents/delegate")]
pub async fn set_agent_delegate(
    agent_id: Uuid,
    delegate_id: Uuid,
    #[server(default)] withdraw: bool,
) -> Result<(), AppError> {
    use domain::agents::delegation::{designate, Designation};
    let call = call().await?;
    let admin = call.admin().await?;
    let designation = if withdraw { Designation::Withdraw } else { Designation::Grant };
    designate(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        agent_id,
        delegate_id,
        designation,
    )
    .await
    .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "agents/request-scope")]
pub async fn request_agent_scope(agent_id: Uuid, scope: String, reason: String) -> Result<Uuid, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::approvals::request(
        &call.state.pool,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        agent_id,
        &scope,
        &reason,
    )
    .await
    .map_err(|e| call.fail(e))
}
