//! The Audit page: filtered, paged events; one event; chain verification.

use crate::error::AppError;
use crate::model::audit::{AuditEventView, AuditPage, ChainStatus};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {super::context::call, crate::model::audit::AuditFilter, crate::server::domain};

#[server(prefix = "/rpc", endpoint = "audit/list")]
pub async fn list_audit_events(
    action: String,
    actor: String,
    outcome: String,
    before_seq: Option<i64>,
) -> Result<AuditPage, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let filter = AuditFilter { action, actor, outcome, before_seq };
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
    domain::audit::verify_for_admin(&call.state.pool, &admin).await.map_err(|e| call.fail(e))
}
