//! Settings → API keys: list, create (the key shows once), revoke.

use crate::error::AppError;
use crate::model::api_keys::ApiKeyRow;
#[cfg(feature = "ssr")]
use crate::model::api_keys::ApiKeyScope;
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

/// Owner only. Returns the key once; only its hash is kept. `scopes` are scope names (the
/// form's checkboxes; none: the default, introspect and report); `expires_in_days` empty or 0
/// means never.
#[server(prefix = "/rpc", endpoint = "api-keys/create")]
pub async fn create_api_key(
    name: String,
    #[server(default)] scopes: Vec<String>,
    #[server(default)] expires_in_days: Option<String>,
) -> Result<String, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let mut scopes =
        ApiKeyScope::parse_list(&scopes.join(",")).map_err(|e| call.request_error(AppError::invalid(e)))?;
    if scopes.is_empty() {
        // Nothing chosen: the resource-server profile, never more.
        scopes = ApiKeyScope::DEFAULT.to_vec();
    }
    let days = expires_in_days.as_deref().map(str::trim).filter(|d| !d.is_empty() && *d != "0");
    let expires_at = match days {
        None => None,
        Some(days) => {
            let days = ApiKeyScope::parse_days(days)
                .map_err(|err| call.request_error(AppError::invalid(format!("Expiry: {err}"))))?;
            Some(now() + time::Duration::days(days))
        }
    };
    let key = domain::org::api_keys::NewApiKey { name: &name, scopes: &scopes, expires_at };
    domain::org::api_keys::create(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), key)
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
