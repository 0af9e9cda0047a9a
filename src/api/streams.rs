//! Settings → Log streams: list with delivery status, create (a webhook's secret shows once),
//! turn on and off, send a test event, rotate a webhook's secret, delete.

use crate::error::AppError;
use crate::model::streams::{CreatedStream, StreamRow, StreamTestResult};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::domain::audit::streams::delivery,
    crate::server::domain::audit::streams::{self, NewStream, StreamHttp},
    crate::server::domain::{Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "streams/list")]
pub async fn list_streams() -> Result<Vec<StreamRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    streams::list(&call.state.pool, Caller::Admin(&admin)).await.map_err(|e| call.fail(e))
}

/// Owners and admins. `secret` is the HEC token or Datadog API key (empty for a webhook, whose
/// secret Mandate generates and returns here once).
#[server(prefix = "/rpc", endpoint = "streams/create")]
pub async fn create_stream(
    name: String,
    kind: String,
    #[server(default)] url: String,
    #[server(default)] secret: String,
) -> Result<CreatedStream, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let input = NewStream { name: &name, kind: &kind, url: &url, secret: &secret };
    streams::create(&call.state.pool, &call.state.master, Call::new(Caller::Admin(&admin), &call.meta, now()), input)
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "streams/set-enabled")]
pub async fn set_stream_enabled(stream_id: Uuid, enabled: bool) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    streams::set_enabled(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), stream_id, enabled)
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "streams/delete")]
pub async fn delete_stream(stream_id: Uuid) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    streams::delete(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), stream_id)
        .await
        .map_err(|e| call.fail(e))
}

/// Posts a `mandate.stream.test` event now; the destination's answer comes back (not stored).
#[server(prefix = "/rpc", endpoint = "streams/test")]
pub async fn test_stream(stream_id: Uuid) -> Result<StreamTestResult, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let http = StreamHttp::new(&call.state.config.outbound, &call.state.config.public_url).map_err(|e| call.fail(e))?;
    delivery::send_test(&call.state.pool, &call.state.master, &http, Caller::Admin(&admin), stream_id, now())
        .await
        .map_err(|e| call.fail(e))
}

/// A webhook's new signing secret, shown once.
#[server(prefix = "/rpc", endpoint = "streams/rotate-secret")]
pub async fn rotate_stream_secret(stream_id: Uuid) -> Result<String, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    streams::rotate_secret(
        &call.state.pool,
        &call.state.master,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        stream_id,
    )
    .await
    .map_err(|e| call.fail(e))
}
