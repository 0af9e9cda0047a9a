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
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, delete))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(test))
        .routes(routes!(rotate_secret))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn respond(result: Result<Response, Problem>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Log streams with their delivery status (never their secrets).
#[utoipa::path(get, path = "/audit/streams", tag = "streams",
    responses((status = 200, description = "`{streams: [...]}`", body = Object)))]
async fn list(State(state): State<AppState>, api: ApiCaller) -> Response {
    match streams::list(&state.pool, api.caller()).await {
        Ok(streams) => Json(json!({ "streams": streams })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[schema(max_length = 100)]
    name: String,
    /// `webhook`, `splunk_hec` or `datadog`.
    kind: String,
    /// https (http only on loopback); empty for Datadog means the US1 intake.
    #[serde(default)]
    #[schema(max_length = 2048)]
    url: String,
    /// The HEC token or Datadog API key; absent for webhooks.
    #[serde(default)]
    #[schema(write_only)]
    secret: String,
}

/// Create a log stream: every audit event from now on is pushed to the destination (at least
/// once; dedupe by event id). A webhook's signing secret is generated and in the answer once.
#[utoipa::path(post, path = "/audit/streams", tag = "streams", request_body = CreateBody,
    responses((status = 201, description = "`{stream_id, kind, secret?}`", body = Object),
        (status = 409, description = "A stream with this name exists", body = Problem, content_type = "application/problem+json")))]
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

/// One log stream.
#[utoipa::path(get, path = "/audit/streams/{id}", tag = "streams", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The stream", body = Object)))]
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

/// Delete a log stream.
#[utoipa::path(delete, path = "/audit/streams/{id}", tag = "streams", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted")))]
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

/// Turn a stream on: it retries at once and catches up from its cursor.
#[utoipa::path(post, path = "/audit/streams/{id}/enable", tag = "streams", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The stream", body = Object)))]
async fn enable(State(state): State<AppState>, api: ApiCaller, Meta(meta): Meta, Path(id): Path<String>) -> Response {
    set_enabled(state, api, meta, id, true).await
}

/// Turn a stream off; it keeps its place.
#[utoipa::path(post, path = "/audit/streams/{id}/disable", tag = "streams", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The stream", body = Object)))]
async fn disable(State(state): State<AppState>, api: ApiCaller, Meta(meta): Meta, Path(id): Path<String>) -> Response {
    set_enabled(state, api, meta, id, false).await
}

/// Send a synthetic `mandate.stream.test` event now and report the destination's answer (200
/// even when the destination refused; nothing is stored).
#[utoipa::path(post, path = "/audit/streams/{id}/test", tag = "streams", params(("id" = Uuid, Path)),
    responses((status = 200, description = "`{ok, status, message, elapsed_ms}`", body = Object)))]
async fn test(State(state): State<AppState>, api: ApiCaller, Path(id): Path<String>) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let http = StreamHttp::new(&state.config.outbound, &state.config.public_url).map_err(|e| api.problem(e))?;
            let result = delivery::send_test(&state.pool, &state.master, &http, api.caller(), id, now())
                .await
                .map_err(|e| api.problem(e))?;
            Ok(Json(result).into_response())
        }
        .await,
    )
}

/// Replace a webhook's signing secret (in the answer once).
#[utoipa::path(post, path = "/audit/streams/{id}/rotate_secret", tag = "streams", params(("id" = Uuid, Path)),
    responses((status = 200, description = "`{stream_id, secret}`", body = Object)))]
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
