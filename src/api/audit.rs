//! The Audit page: filtered, paged events; one event and its inclusion proof; the integrity
//! panel and full verification.
// The timeline's filters travel as flat form fields (shareable, easy to script), one argument
// each; the server-function macro generates functions clippy would count as too long.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use crate::model::audit::{AuditEventView, AuditIntegrity, AuditPage, ChainStatus, InclusionProof};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {super::context::call, crate::model::audit::AuditFilter, crate::server::domain};

/// One page of the timeline. Every filter is optional (empty means any).
#[server(prefix = "/rpc", endpoint = "audit/list")]
pub async fn list_audit_events(
    #[server(default)] action: String,
    #[server(default)] actor: String,
    #[server(default)] outcome: String,
    #[server(default)] person: String,
    #[server(default)] agent: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] before_seq: Option<i64>,
) -> Result<AuditPage, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let filter = AuditFilter { action, actor, outcome, person, agent, from, to, before_seq };
    domain::audit::list_for_admin(&call.state.pool, &admin, &filter).await.map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "audit/event")]
pub async fn get_audit_event(event_id: Uuid) -> Result<AuditEventView, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::audit::get(&call.state.pool, &admin, event_id).await.map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "audit/verify")]
pub async fn verify_audit_chain() -> Result<ChainStatus, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::audit::verify_for_admin(&call.state.pool, &call.state.audit_keys, &admin).await.map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "audit/integrity")]
pub async fn get_audit_integrity() -> Result<AuditIntegrity, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::audit::integrity(&call.state.pool, &admin).await.map_err(|e| call.fail(e))
}

/// An event's inclusion proof against the newest signed checkpoint, and whether it verified.
#[server(prefix = "/rpc", endpoint = "audit/proof")]
pub async fn audit_event_proof(seq: i64) -> Result<(InclusionProof, bool), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::audit::proof_for_admin(&call.state.pool, &call.state.audit_keys, &admin, seq)
        .await
        .map_err(|e| call.fail(e))
}

/// Owners set how long events are kept (pruned only at a signed checkpoint).
#[server(prefix = "/rpc", endpoint = "audit/retention")]
pub async fn set_audit_retention(days: i32) -> Result<i32, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::audit::retention::set_days(
        &call.state.pool,
        domain::Caller::Admin(&admin),
        days,
        &call.meta,
        super::context::now(),
    )
    .await
    .map_err(|e| call.fail(e))?;
    Ok(days)
}
