//! `/api/v1/agents` and `/api/v1/scope_requests`: register, list, inspect and revoke agents;
//! request, approve and deny scopes — the same domain operations as the portal.

use super::ApiCaller;
use crate::model::agents::AgentFilter;
use crate::server::domain::agents::approvals::{self, Decision};
use crate::server::domain::agents::delegation::{self, Designation};
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
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(detail))
        .routes(routes!(revoke))
        .routes(routes!(rotate_secret))
        .routes(routes!(designate_delegate))
        .routes(routes!(withdraw_delegate))
        .routes(routes!(request_scope))
        .routes(routes!(list_requests))
        .routes(routes!(approve))
        .routes(routes!(deny))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A handler body's result as the response.
fn respond(result: Result<Response, Problem>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize, Default, IntoParams)]
struct ListQuery {
    /// Matches the agent's name, client id or owner.
    #[serde(default)]
    search: String,
    /// The owner's id.
    #[serde(default)]
    owner: String,
    /// `active` or `revoked`.
    #[serde(default)]
    status: String,
    /// Agents holding or requesting this scope.
    #[serde(default)]
    scope: String,
}

/// Agents, newest first.
#[utoipa::path(get, path = "/agents", tag = "agents", params(ListQuery),
    responses((status = 200, description = "`{agents: [...]}`", body = Object)))]
async fn list(State(state): State<AppState>, api: ApiCaller, Query(query): Query<ListQuery>) -> Response {
    let filter = AgentFilter { search: query.search, owner: query.owner, status: query.status, scope: query.scope };
    match registry::list(&state.pool, api.caller(), &filter, now()).await {
        Ok(agents) => Json(json!({ "agents": agents })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    #[schema(max_length = 100)]
    name: String,
    #[serde(default)]
    description: String,
    owner_email: Option<String>,
    owner_id: Option<Uuid>,
    /// Scopes from the catalog; each waits for approval.
    #[serde(default)]
    #[schema(max_items = 50)]
    scopes: Vec<String>,
    #[serde(default)]
    reason: String,
}

/// Register an agent (owner by `owner_email` or `owner_id`); its scopes wait for approval. The
/// client secret is in the answer once.
#[utoipa::path(post, path = "/agents", tag = "agents", request_body = RegisterBody,
    responses((status = 201, description = "`{agent_id, client_id, client_secret}`", body = Object)))]
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

/// One agent with its scopes and history.
#[utoipa::path(get, path = "/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The agent", body = Object)))]
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

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    reason: String,
}

/// Revoke an agent: its credentials and tokens stop before this answers. The body is optional.
#[utoipa::path(post, path = "/agents/{id}/revoke", tag = "agents", params(("id" = Uuid, Path)),
    request_body(content = Option<RevokeBody>),
    responses((status = 200, description = "`{agent_id, status, revoked_tokens}`", body = Object)))]
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

/// Replace the client secret (in the answer once); the old one stops at once.
#[utoipa::path(post, path = "/agents/{id}/rotate_secret", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, description = "`{agent_id, client_id, client_secret}`", body = Object)))]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DelegateBody {
    /// The agent that may exchange this agent's tokens for its own.
    delegate_id: Uuid,
}

/// Designate a delegate: the agent that may exchange this agent's tokens (RFC 8693). The
/// exchanged token holds only scopes both agents hold.
#[utoipa::path(post, path = "/agents/{id}/delegates", tag = "agents", params(("id" = Uuid, Path)),
    request_body = DelegateBody,
    responses((status = 200, description = "`{agent_id, delegate_id, designated: true}`", body = Object)))]
async fn designate_delegate(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    Path(id): Path<String>,
    body: Result<Json<DelegateBody>, JsonRejection>,
) -> Response {
    respond(
        async {
            let id = api.id(&id)?;
            let body = api.body(body)?;
            let call = Call::new(api.caller(), &meta, now());
            delegation::designate(&state.pool, state.mandates(), call, id, body.delegate_id, Designation::Grant)
                .await
                .map_err(|e| api.problem(e))?;
            Ok(Json(json!({ "agent_id": id, "delegate_id": body.delegate_id, "designated": true })).into_response())
        }
        .await,
    )
}

/// Withdraw a delegate: it can no longer exchange this agent's tokens.
#[utoipa::path(delete, path = "/agents/{id}/delegates/{delegate_id}", tag = "agents",
    params(("id" = Uuid, Path), ("delegate_id" = Uuid, Path)),
    responses((status = 204, description = "Withdrawn (or was not designated)")))]
async fn withdraw_delegate(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    Path((id, delegate_id)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let (id, delegate_id) = (api.id(&id)?, api.id(&delegate_id)?);
            let call = Call::new(api.caller(), &meta, now());
            delegation::designate(&state.pool, state.mandates(), call, id, delegate_id, Designation::Withdraw)
                .await
                .map_err(|e| api.problem(e))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ScopeRequestBody {
    scope: String,
    #[serde(default)]
    reason: String,
}

/// Request a scope from the catalog for an agent.
#[utoipa::path(post, path = "/agents/{id}/scope_requests", tag = "approvals", params(("id" = Uuid, Path)),
    request_body = ScopeRequestBody,
    responses((status = 201, description = "`{id, status}`", body = Object),
        (status = 409, description = "Already held or requested", body = Problem, content_type = "application/problem+json")))]
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

#[derive(Deserialize, IntoParams)]
struct RequestsQuery {
    /// `pending`, `approved`, `denied`, `withdrawn` or `cancelled`.
    #[serde(default)]
    status: String,
}

/// Scope requests by status.
#[utoipa::path(get, path = "/scope_requests", tag = "approvals", params(RequestsQuery),
    responses((status = 200, description = "`{scope_requests: [...]}`", body = Object)))]
async fn list_requests(State(state): State<AppState>, api: ApiCaller, Query(query): Query<RequestsQuery>) -> Response {
    match approvals::list(&state.pool, api.caller(), &query.status).await {
        Ok(requests) => Json(json!({ "scope_requests": requests })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// The approval ends at this time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    until: Option<OffsetDateTime>,
    #[serde(default)]
    note: String,
}

/// Approve a scope request (optionally until a time). High-risk scopes need a person in the portal.
#[utoipa::path(post, path = "/scope_requests/{id}/approve", tag = "approvals", params(("id" = Uuid, Path)),
    request_body(content = Option<ApproveBody>),
    responses((status = 200, description = "`{id, status}`", body = Object),
        (status = 409, description = "Already decided", body = Problem, content_type = "application/problem+json")))]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    reason: String,
}

/// Deny a scope request with a reason.
#[utoipa::path(post, path = "/scope_requests/{id}/deny", tag = "approvals", params(("id" = Uuid, Path)),
    request_body = DenyBody,
    responses((status = 200, description = "`{id, status}`", body = Object),
        (status = 409, description = "Already decided", body = Problem, content_type = "application/problem+json")))]
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
