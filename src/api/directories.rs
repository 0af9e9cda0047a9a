//! Directories: connect an IdP's SCIM provisioning, rotate its token, browse what it sent.

use crate::error::AppError;
use crate::model::directories::{DirectoryCredentials, DirectoryDetail, DirectoryRow};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::domain::{self, directory::scim_base_path, Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "directories/list")]
pub async fn list_directories() -> Result<Vec<DirectoryRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::directory::list(&call.state.pool, Caller::Admin(&admin)).await.map_err(|e| call.fail(e))
}

/// Creates a directory; the bearer token is in the answer once.
#[server(prefix = "/rpc", endpoint = "directories/create")]
pub async fn create_directory(name: String, provider: String) -> Result<DirectoryCredentials, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let created = domain::directory::create(
        &call.state.pool,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        &name,
        &provider,
    )
    .await
    .map_err(|e| call.fail(e))?;
    Ok(DirectoryCredentials {
        directory_id: created.directory_id,
        scim_base_url: call.state.config.url(&scim_base_path(created.directory_id)),
        bearer_token: created.bearer_token,
    })
}

#[server(prefix = "/rpc", endpoint = "directories/rotate-token")]
pub async fn rotate_directory_token(directory_id: Uuid) -> Result<DirectoryCredentials, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let token = domain::directory::rotate_token(
        &call.state.pool,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        directory_id,
    )
    .await
    .map_err(|e| call.fail(e))?;
    Ok(DirectoryCredentials {
        directory_id,
        scim_base_url: call.state.config.url(&scim_base_path(directory_id)),
        bearer_token: token,
    })
}

#[server(prefix = "/rpc", endpoint = "directories/detail")]
pub async fn get_directory(directory_id: Uuid) -> Result<DirectoryDetail, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::directory::detail(&call.state.pool, Caller::Admin(&admin), directory_id, &call.state.config.public_url)
        .await
        .map_err(|e| call.fail(e))
}
