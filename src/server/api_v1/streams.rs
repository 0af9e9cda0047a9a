//! `/api/v1/audit/streams`: log streams — list, create (a webhook's signing secret is in the
//! answer once), inspect, turn on and off, send a test event, rotate a webhook's secret, delete.
//!
//! | method | path                                      | answer                         |
//! |--------|-------------------------------------------|--------------------------------|
//! | GET    | /audit/streams                            | 200 `{streams: [...]}`         |
//! | POST   | /audit/streams                            | 201 `{stream_id, secret?}`     |
//! | GET    | /audit/streams/{id}                       | 200 stream                     |
//! | DELETE | /audit/streams/{id}                       | 204                            |
//! | POST   | /audit/streams/{id}/enable, /disable      | 200 stream                     |
//! | POST   | /audit/streams/{id}/test                  | 200 `{ok, status, message, elapsed_ms}` |
//! | POST   | /audit/streams/{id}/rotate_secret         | 200 `{stream_id, secret}`      |

use super::ApiCaller;
use crate::server::domain::audit::streams::delivery;
use crate::server::domain::audit::streams::{self, NewStream, StreamHttp};
use crate::server::domain::Call;
use crate::server::errors::Problem;
use crate::server::middleware::request_meta::Meta;
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/streams", get(list).post(create))
        .route("/audit/streams/{id}", get(detail).delete(delete))
        .route("/audit/streams/{id}/enable", post(enable))
        .route("/audit/streams/{id}/disable", post(disable))
        .route("/audit/streams/{id}/test", post(test))
        .route("/audit/streams/{id}/rotate_secret", post(rotate_secret))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn respond(result: Result<Response, Problem>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn list(State(state): State<AppState>, api: ApiCaller) -> Response {
    match streams::list(&state.pool, api.caller()).await {
        Ok(streams) => Json(json!({ "streams": streams })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    kind: String,
    #[serde(default)]
    url: String,
    /// The HEC token or Datadog API key; absent for webhooks.
    #[serde(default)]
    secret: String,
}

async fn create(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Response {
    respond(
        async {
            let body = api.body(body)?;
            let input = NewStream { name: &body.name, kind: &body.kind, url: &body.url, secret: &body.secret };
            let created = streams::create(&state.pool, &state.master, Call::new(api.caller(), &meta, now()), input)
                .await
                .map_err(|e| api.problem(e))?;
            let mut answer = json!({ "stream_id": created.stream_id, "kind": created.kind });
            if let Some(secret) = created.secret {
                answer["secret"] = secret.into();
            }
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
        .await,
    )
}

async fn detail(State(state): State<AppState>, api: ApiCaller, Path(id): Path<String>) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let stream = streams::get(&state.pool, api.caller(), id).await.map_err(|e| api.problem(e))?;
            Ok(Json(stream).into_response())
        }
        .await,
    )
}

async fn delete(State(state): State<AppState>, api: ApiCaller, Meta(meta): Meta, Path(id): Path<String>) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            streams::delete(&state.pool, Call::new(api.caller(), &meta, now()), id)
                .await
                .map_err(|e| api.problem(e))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

async fn set_enabled(
    state: AppState,
    api: ApiCaller,
    meta: crate::server::domain::RequestMeta,
    id: String,
    enabled: bool,
) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            streams::set_enabled(&state.pool, Call::new(api.caller(), &meta, now()), id, enabled)
                .await
                .map_err(|e| api.problem(e))?;
            let stream = streams::get(&state.pool, api.caller(), id).await.map_err(|e| api.problem(e))?;
            Ok(Json(stream).into_response())
        }
        .await,
    )
}

async fn enable(State(state): State<AppState>, api: ApiCaller, Meta(meta): Meta, Path(id): Path<String>) -> Response {
    set_enabled(state, api, meta, id, true).await
}

async fn disable(State(state): State<AppState>, api: ApiCaller, Meta(meta): Meta, Path(id): Path<String>) -> Response {
    set_enabled(state, api, meta, id, false).await
}

/// The destination's answer is the result (200 even when the destination refused).
async fn test(State(state): State<AppState>, api: ApiCaller, Path(id): Path<String>) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let http = StreamHttp::new(&state.config.public_url).map_err(|e| api.problem(e))?;
            let result = delivery::send_test(&state.pool, &state.master, &http, api.caller(), id, now())
                .await
                .map_err(|e| api.problem(e))?;
            Ok(Json(result).into_response())
        }
        .await,
    )
}

async fn rotate_secret(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let secret = streams::rotate_secret(&state.pool, &state.master, Call::new(api.caller(), &meta, now()), id)
                .await
                .map_err(|e| api.problem(e))?;
            Ok(Json(json!({ "stream_id": id, "secret": secret })).into_response())
        }
        .await,
    )
}
