//! Settings → Scopes: the catalog and its group ceilings.

use crate::error::AppError;
use crate::model::agents::ScopeCatalog;
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::domain::{self, agents::scopes::NewScope, Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "scopes/catalog")]
pub async fn get_scope_catalog() -> Result<ScopeCatalog, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::scopes::catalog(&call.state.pool, Caller::Admin(&admin)).await.map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "scopes/create")]
pub async fn create_scope(
    name: String,
    description: String,
    risk: String,
    max_token_lifetime_seconds: i32,
) -> Result<Uuid, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let scope = NewScope { name: &name, description: &description, risk: &risk, max_token_lifetime_seconds };
    domain::agents::scopes::create(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), scope)
        .await
        .map_err(|e| call.fail(e))
}

/// Sets the groups that may hold a scope (none: everyone).
#[server(prefix = "/rpc", endpoint = "scopes/ceiling")]
pub async fn set_scope_ceiling(scope_id: Uuid, #[server(default)] group_ids: Vec<Uuid>) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::scopes::set_ceiling(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        scope_id,
        &group_ids,
    )
    .await
    .map_err(|e| call.fail(e))
}

/// Changes a scope's risk level (owners only; audited).
#[server(prefix = "/rpc", endpoint = "scopes/risk")]
pub async fn set_scope_risk(scope_id: Uuid, risk: String) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::scopes::set_risk(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        scope_id,
        &risk,
    )
    .await
    .map_err(|e| call.fail(e))
}
