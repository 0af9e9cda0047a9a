//! The Audit page: filtered, paged events; one event and its inclusion proof; the integrity
//! panel and full verification.

use crate::error::AppError;
use crate::model::audit::{AuditEventView, AuditFilter, AuditIntegrity, AuditPage, ChainStatus, InclusionProof};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {super::context::call, crate::server::domain};

#[server(prefix = "/rpc", endpoint = "audit/list")]
pub async fn list_audit_events(filter: AuditFilter) -> Result<AuditPage, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
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
