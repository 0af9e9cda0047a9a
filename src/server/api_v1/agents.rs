//! `/api/v1/agents` and `/api/v1/scope_requests`: register, list, inspect and revoke agents;
//! request, approve and deny scopes — the same domain operations as the portal.

use super::ApiCaller;
use crate::model::agents::AgentFilter;
use crate::server::domain::agents::approvals::{self, Decision};
use crate::server::domain::agents::registry::{self, NewAgent, Owner};
use crate::server::domain::agents::revocation;
use crate::server::domain::Call;
use crate::server::domain::{DomainError, RequestMeta};
use crate::server::errors::Problem;
use crate::server::middleware::request_meta::Meta;
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/agents", get(list).post(register))
        .route("/agents/{id}", get(detail))
        .route("/agents/{id}/revoke", post(revoke))
        .route("/agents/{id}/rotate_secret", post(rotate_secret))
        .route("/agents/{id}/scope_requests", post(request_scope))
        .route("/scope_requests", get(list_requests))
        .route("/scope_requests/{id}/approve", post(approve))
        .route("/scope_requests/{id}/deny", post(deny))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A handler body's result as the response.
fn respond(result: Result<Response, Problem>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    scope: String,
}

async fn list(State(state): State<AppState>, api: ApiCaller, Query(query): Query<ListQuery>) -> Response {
    let filter = AgentFilter { search: query.search, owner: query.owner, status: query.status, scope: query.scope };
    match registry::list(&state.pool, api.caller(), &filter, now()).await {
        Ok(agents) => Json(json!({ "agents": agents })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    name: String,
    #[serde(default)]
    description: String,
    owner_email: Option<String>,
    owner_id: Option<Uuid>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    reason: String,
}

async fn register(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    body: Result<Json<RegisterBody>, JsonRejection>,
) -> Response {
    respond(
        async {
            let body = api.body(body)?;
            let owner = match (&body.owner_id, &body.owner_email) {
                (Some(id), None) => Owner::Id(*id),
                (None, Some(email)) => Owner::Email(email),
                _ => {
                    return Err(api.problem(DomainError::invalid(
                        "Give the agent's owner as owner_email or owner_id (one of them)",
                    )))
                }
            };
            let input = NewAgent {
                name: &body.name,
                description: &body.description,
                owner,
                scopes: &body.scopes,
                reason: &body.reason,
                approve: false,
            };
            let created = registry::register(&state.pool, Call::new(api.caller(), &meta, now()), input)
                .await
                .map_err(|e| api.problem(e))?;
            Ok((StatusCode::CREATED, Json(created)).into_response())
        }
        .await,
    )
}

async fn detail(State(state): State<AppState>, api: ApiCaller, Path(id): Path<String>) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let detail = registry::detail(&state.pool, api.caller(), id, now()).await.map_err(|e| api.problem(e))?;
            Ok(Json(detail).into_response())
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    reason: String,
}

async fn revoke(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    Path(id): Path<String>,
    body: Result<Json<RevokeBody>, JsonRejection>,
) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            // The body is optional: a bare POST revokes without a reason.
            let body = match body {
                Err(JsonRejection::MissingJsonContentType(_)) => RevokeBody::default(),
                other => api.body(other)?,
            };
            let revoked = revocation::revoke(
                &state.pool,
                state.mandates(),
                Call::new(api.caller(), &meta, now()),
                id,
                &body.reason,
            )
            .await
            .map_err(|e| api.problem(e))?;
            Ok(Json(json!({ "agent_id": id, "status": "revoked", "revoked_tokens": revoked })).into_response())
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
            let credentials =
                registry::rotate_secret(&state.pool, state.mandates(), Call::new(api.caller(), &meta, now()), id)
                    .await
                    .map_err(|e| api.problem(e))?;
            Ok(Json(credentials).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeRequestBody {
    scope: String,
    #[serde(default)]
    reason: String,
}

async fn request_scope(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    Path(id): Path<String>,
    body: Result<Json<ScopeRequestBody>, JsonRejection>,
) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let body = api.body(body)?;
            let request_id =
                approvals::request(&state.pool, Call::new(api.caller(), &meta, now()), id, &body.scope, &body.reason)
                    .await
                    .map_err(|e| api.problem(e))?;
            Ok((StatusCode::CREATED, Json(json!({ "id": request_id, "status": "pending" }))).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct RequestsQuery {
    #[serde(default)]
    status: String,
}

async fn list_requests(State(state): State<AppState>, api: ApiCaller, Query(query): Query<RequestsQuery>) -> Response {
    match approvals::list(&state.pool, api.caller(), &query.status).await {
        Ok(requests) => Json(json!({ "scope_requests": requests })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    #[serde(default, with = "time::serde::rfc3339::option")]
    until: Option<OffsetDateTime>,
    #[serde(default)]
    note: String,
}

async fn approve(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    Path(id): Path<String>,
    body: Result<Json<ApproveBody>, JsonRejection>,
) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let body = match body {
                Err(JsonRejection::MissingJsonContentType(_)) => ApproveBody::default(),
                other => api.body(other)?,
            };
            decide(&state, &api, &meta, id, Decision::Approve { until: body.until, note: body.note }).await
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    reason: String,
}

async fn deny(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    Path(id): Path<String>,
    body: Result<Json<DenyBody>, JsonRejection>,
) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let body = api.body(body)?;
            decide(&state, &api, &meta, id, Decision::Deny { reason: body.reason }).await
        }
        .await,
    )
}

async fn decide(
    state: &AppState,
    api: &ApiCaller,
    meta: &RequestMeta,
    id: Uuid,
    decision: Decision,
) -> Result<Response, Problem> {
    let status = match decision {
        Decision::Approve { .. } => "approved",
        Decision::Deny { .. } => "denied",
    };
    approvals::decide(&state.pool, state.mandates(), Call::new(api.caller(), meta, now()), id, decision)
        .await
        .map_err(|e| api.problem(e))?;
    Ok(Json(json!({ "id": id, "status": status })).into_response())
}
