//! The dashboard's figures.

use crate::error::AppError;
use crate::model::dashboard::DashboardData;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::domain,
};

#[server(prefix = "/rpc", endpoint = "dashboard")]
pub async fn dashboard() -> Result<DashboardData, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::dashboard::load(&call.state.pool, &admin, now()).await.map_err(|e| call.fail(e))
}
