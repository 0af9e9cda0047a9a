//! The audit trail over the platform API:
//!
//! | method and path                          | who                          | what |
//! |------------------------------------------|------------------------------|------|
//! | `GET  /api/v1/audit/events`              | API key                      | events, newest first, filtered |
//! | `POST /api/v1/audit/events`              | agent access token, or API key (`audit:write`) with the agent's `token` | record an agent action |
//! | `GET  /api/v1/audit/export?format=`      | API key                      | CSV or NDJSON, streamed, oldest first |
//! | `GET  /api/v1/audit/checkpoint[?size=]`  | API key                      | the newest (or a given) signed checkpoint |
//! | `GET  /api/v1/audit/proof/{seq}[?size=]` | API key                      | RFC 9162 inclusion proof |
//! | `GET  /api/v1/audit/consistency?from=&to=` | API key                    | RFC 9162 consistency proof |
//! | `GET  /api/v1/audit/keys`                | anyone                       | the public keys that sign checkpoints |
//! | `PUT  /api/v1/audit/retention`           | API key                      | the retention period in days |

use super::{query, ApiCaller};
use crate::model::audit::AuditFilter;
use crate::model::Permission;
use crate::server::domain::audit::{self, actions, checkpoints, retention};
use crate::server::domain::crypto::secrets::API_KEY_PREFIX;
use crate::server::domain::org::api_keys;
use crate::server::domain::DomainError;
use crate::server::downloads;
use crate::server::errors::Problem;
use crate::server::middleware::request_meta::Meta;
use crate::server::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, report))
        .routes(routes!(export_events))
        .routes(routes!(checkpoint))
        .routes(routes!(proof))
        .routes(routes!(consistency))
        .routes(routes!(keys))
        .routes(routes!(set_retention))
}

#[derive(Deserialize, Default, IntoParams)]
struct FilterQuery {
    /// An action name, or a prefix ending in `.` (`scope.`).
    action: Option<String>,
    /// `success` or `failure`.
    outcome: Option<String>,
    actor: Option<String>,
    /// The person's email or id.
    person: Option<String>,
    /// The agent's name, client id or id.
    agent: Option<String>,
    /// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` (UTC) or RFC 3339.
    from: Option<String>,
    to: Option<String>,
    /// Page: events before this sequence number.
    before_seq: Option<i64>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// Export only: `csv` or `ndjson`.
    format: Option<String>,
}

impl FilterQuery {
    fn filter(&self) -> AuditFilter {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        AuditFilter {
            action: text(&self.action),
            actor: text(&self.actor),
            outcome: text(&self.outcome),
            person: text(&self.person),
            agent: text(&self.agent),
            from: text(&self.from),
            to: text(&self.to),
            before_seq: self.before_seq,
        }
    }
}

/// `GET /api/v1/audit/events`: newest first; page with `before_seq`.
#[utoipa::path(get, path = "/audit/events", tag = "audit", params(FilterQuery),
    responses((status = 200, description = "`{events, next_before_seq}`", body = Object)))]
async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Permission::ReadAudit)?;
    let params = query(&caller, params)?;
    let page = audit::list(&state.pool, caller.principal.org_id(), &params.filter(), params.limit.unwrap_or(100))
        .await
        .map_err(|err| caller.problem(err))?;
    Ok(Json(json!({ "events": page.events, "next_before_seq": page.next_before_seq })).into_response())
}

/// `GET /api/v1/audit/export?format=csv|ndjson`: every matching event, oldest first, streamed.
#[utoipa::path(get, path = "/audit/export", tag = "audit", params(FilterQuery),
    responses((status = 200, description = "Every matching event, oldest first, as `text/csv` or `application/x-ndjson`")))]
async fn export_events(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Permission::ReadAudit)?;
    let params = query(&caller, params)?;
    downloads::audit_export(&state, caller.principal.org_id(), &params.filter(), params.format.as_deref())
        .map_err(|err| caller.problem(err))
}

/// The body of `POST /api/v1/audit/events`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// Dotted lower-case name, e.g. `document.read`.
    #[schema(max_length = 100, pattern = r"^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$")]
    action: String,
    #[serde(default)]
    target: Option<TargetBody>,
    /// `success` (default) or `failure`.
    #[serde(default)]
    outcome: Option<String>,
    /// Any JSON object, at most 16 KiB.
    #[serde(default)]
    metadata: Option<Value>,
    /// The scopes used: a subset of the token's.
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// With an API key: the access token the agent presented to the resource server (its `jti`
    /// alone is not enough: it would let a key report for agents it never saw).
    #[serde(default)]
    #[schema(write_only)]
    token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TargetBody {
    id: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// `POST /api/v1/audit/events`: an agent action, recorded durably before the 201, with the chain
/// of authority behind it.
#[utoipa::path(post, path = "/audit/events", tag = "audit", request_body = ActionBody,
    security(("accessToken" = []), ("apiKey" = [])),
    responses((status = 201, description = "`{seq, proof_url}`", body = Object)))]
async fn report(
    State(state): State<AppState>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> Response {
    let request_id = meta.request_id.clone();
    let problem =
        |status: StatusCode, detail: &str| Problem::new(status, detail, request_id.as_deref()).into_response();
    let domain_problem = |err: DomainError| Problem::from_domain(err, request_id.as_deref()).into_response();
    let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
    else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "Send the agent's access token, or an organization API key with the agent's `token` in the body, as `Authorization: Bearer ...`.",
        );
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return problem(rejection.status(), &format!("Bad JSON body: {}", rejection.body_text())),
    };
    let now = OffsetDateTime::now_utc();
    let presented = body.token;
    let report = actions::Report {
        action: body.action,
        target_type: body.target.as_ref().and_then(|t| t.kind.clone()),
        target_id: body.target.as_ref().map(|t| t.id.clone()),
        target_label: body.target.and_then(|t| t.label),
        outcome: body.outcome,
        metadata: body.metadata,
        scopes: body.scopes,
    };
    let recorded = if bearer.starts_with(API_KEY_PREFIX) {
        let key = match api_keys::authenticate(&state.pool, bearer, now).await {
            Ok(Some(key)) => key,
            Ok(None) => return problem(StatusCode::UNAUTHORIZED, "The API key is not valid or was revoked."),
            Err(err) => return domain_problem(err),
        };
        let Some(presented) = presented else {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "With an API key, send the access token the agent presented to you as `token`.",
            );
        };
        actions::record_presented(&state.actions, &state.tokens, &key, &presented, report, meta, now).await
    } else {
        if presented.is_some() {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "`token` is only for API keys; an agent's own token already names itself.",
            );
        }
        let token = match state.tokens.introspect_bearer(bearer, now).await {
            Ok(Some(token)) => token,
            Ok(None) => {
                return problem(
                    StatusCode::UNAUTHORIZED,
                    "The access token is not active (expired, revoked, or its mandate changed).",
                )
            }
            Err(err) => return domain_problem(err),
        };
        actions::record_by_token(&state.actions, &token, report, meta, now).await
    };
    match recorded {
        Ok(recorded) => (
            StatusCode::CREATED,
            Json(json!({ "seq": recorded.seq, "proof_url": format!("/api/v1/audit/proof/{}", recorded.seq) })),
        )
            .into_response(),
        Err(err) => domain_problem(err),
    }
}

#[derive(Deserialize, IntoParams)]
struct SizeQuery {
    /// A tree size with a signed checkpoint (the newest when absent).
    size: Option<i64>,
}

/// `GET /api/v1/audit/checkpoint`: the newest signed checkpoint (or the one of `size`).
#[utoipa::path(get, path = "/audit/checkpoint", tag = "audit", params(SizeQuery),
    responses((status = 200, description = "`{org_id, size, root_hash, signed_at, key_id, signature}`", body = Object),
        (status = 409, description = "No checkpoint of that size yet", body = Problem, content_type = "application/problem+json")))]
async fn checkpoint(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: Result<Query<SizeQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Permission::ReadAudit)?;
    let params = query(&caller, params)?;
    let org_id = caller.principal.org_id();
    let found = match params.size {
        Some(size) => checkpoints::at_size(&state.pool, org_id, size).await,
        None => checkpoints::latest(&state.pool, org_id).await,
    };
    let stored = found.map_err(|err| caller.problem(err))?.ok_or_else(|| {
        caller.problem(DomainError::Conflict(
            "No checkpoint matches: checkpoints are signed within seconds of new events.".into(),
        ))
    })?;
    Ok(Json(stored.checkpoint).into_response())
}

/// `GET /api/v1/audit/proof/{seq}`: the event's inclusion proof against a signed checkpoint.
#[utoipa::path(get, path = "/audit/proof/{seq}", tag = "audit", params(("seq" = i64, Path), SizeQuery),
    responses((status = 200, description = "RFC 9162 inclusion proof: `{seq, leaf_index, event_hash, leaf_hash, tree_size, audit_path, checkpoint}`", body = Object)))]
async fn proof(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(seq): Path<String>,
    params: Result<Query<SizeQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Permission::ReadAudit)?;
    let params = query(&caller, params)?;
    let seq = seq.parse::<i64>().map_err(|_| caller.problem(DomainError::NotFound))?;
    let proof = checkpoints::inclusion(&state.pool, caller.principal.org_id(), seq, params.size)
        .await
        .map_err(|err| caller.problem(err))?;
    Ok(Json(proof).into_response())
}

#[derive(Deserialize, IntoParams)]
struct ConsistencyQuery {
    from: i64,
    to: Option<i64>,
}

/// `GET /api/v1/audit/consistency?from=N[&to=M]`: proof that checkpoint N's tree is a prefix of
/// checkpoint M's (the newest by default).
#[utoipa::path(get, path = "/audit/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, description = "RFC 9162 consistency proof: `{from, to, proof}`", body = Object)))]
async fn consistency(
    State(state): State<AppState>,
    caller: ApiCaller,
    params: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Permission::ReadAudit)?;
    let params = query(&caller, params)?;
    let proof = checkpoints::consistency(&state.pool, caller.principal.org_id(), params.from, params.to)
        .await
        .map_err(|err| caller.problem(err))?;
    Ok(Json(proof).into_response())
}

/// `GET /api/v1/audit/keys`: public, so anyone can check a checkpoint.
#[utoipa::path(get, path = "/audit/keys", tag = "audit", security(()),
    responses((status = 200, description = "`{keys: [{key_id, algorithm, public_key, public_key_pem}]}`", body = Object)))]
async fn keys(State(state): State<AppState>) -> Response {
    Json(json!({ "keys": state.audit_keys.public_keys() })).into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RetentionBody {
    #[schema(minimum = 30, maximum = 36500)]
    days: i32,
}

/// `PUT /api/v1/audit/retention`: `{"days": N}`. Events are pruned only at a signed checkpoint.
#[utoipa::path(put, path = "/audit/retention", tag = "audit", request_body = RetentionBody,
    responses((status = 200, description = "`{retention_days}`", body = Object)))]
async fn set_retention(
    State(state): State<AppState>,
    caller: ApiCaller,
    Meta(meta): Meta,
    body: Result<Json<RetentionBody>, JsonRejection>,
) -> Result<Response, Problem> {
    let body = caller.body(body)?;
    retention::set_days(&state.pool, caller.caller(), body.days, &meta, OffsetDateTime::now_utc())
        .await
        .map_err(|err| caller.problem(err))?;
    Ok(Json(json!({ "retention_days": body.days })).into_response())
}
