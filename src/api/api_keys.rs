//! Settings → API keys: list, create (the key shows once), revoke.

use crate::error::AppError;
use crate::model::api_keys::ApiKeyRow;
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::domain::{self, Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "api-keys/list")]
pub async fn list_api_keys() -> Result<Vec<ApiKeyRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::api_keys::list(&call.state.pool, Caller::Admin(&admin)).await.map_err(|e| call.fail(e))
}

/// Owner only. Returns the key once; only its hash is kept.
#[server(prefix = "/rpc", endpoint = "api-keys/create")]
pub async fn create_api_key(name: String) -> Result<String, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::api_keys::create(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), &name)
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "api-keys/revoke")]
pub async fn revoke_api_key(key_id: Uuid) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::api_keys::revoke(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), key_id)
        .await
        .map_err(|e| call.fail(e))
}
