//! The platform API (`/api/v1`): JSON over HTTPS, authenticated by an organization's API key
//! (`Authorization: Bearer mnd_key_...`), errors as RFC 9457 problem documents. Every handler
//! acts only inside the key's organization.

mod agents;
mod context;
mod directories;

use super::domain::api_keys::{self, ApiKeyPrincipal};
use super::domain::{audit, Caller, DomainError};
use super::errors::Problem;
use super::middleware::request_meta::from_parts;
use super::state::AppState;
use crate::model::audit::AuditFilter;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use time::OffsetDateTime;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/organization", get(organization))
        .route("/audit/events", get(audit_events))
        .merge(agents::router())
        .merge(context::router())
        .merge(directories::router())
        .fallback(not_found)
}

impl ApiCaller {
    pub fn caller(&self) -> Caller<'_> {
        Caller::ApiKey(&self.principal)
    }

    /// A domain error as a problem document.
    pub fn problem(&self, err: DomainError) -> Problem {
        Problem::from_domain(err, self.request_id.as_deref())
    }

    /// Reads a JSON body, turning a bad body into a 400/415/422 problem that says what is wrong.
    pub fn body<T: DeserializeOwned>(&self, body: Result<axum::Json<T>, JsonRejection>) -> Result<T, Problem> {
        body.map(|axum::Json(value)| value).map_err(|rejection| {
            let status = rejection.status();
            Problem::new(status, format!("Bad JSON body: {}", rejection.body_text()), self.request_id.as_deref())
        })
    }

    /// A path id; anything that is not a UUID cannot name an object, so it is "not found".
    pub fn id(&self, raw: &str) -> Result<uuid::Uuid, Problem> {
        raw.parse().map_err(|_| self.problem(DomainError::NotFound))
    }
}

/// The caller, proven by a live API key.
pub struct ApiCaller {
    pub principal: ApiKeyPrincipal,
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let request_id = from_parts(parts, false).request_id;
        let unauthorized =
            |detail: &str| Problem::new(StatusCode::UNAUTHORIZED, detail, request_id.as_deref()).into_response();
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = value.and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))) else {
            return Err(unauthorized("Send an organization API key as `Authorization: Bearer mnd_key_...`."));
        };
        match api_keys::authenticate(&state.pool, token.trim(), OffsetDateTime::now_utc()).await {
            Ok(Some(principal)) => Ok(ApiCaller { principal, request_id }),
            Ok(None) => Err(unauthorized("The API key is not valid or was revoked.")),
            Err(err) => Err(Problem::from_domain(err, request_id.as_deref()).into_response()),
        }
    }
}

async fn not_found(parts: Parts) -> Response {
    let request_id = from_parts(&parts, false).request_id;
    Problem::new(StatusCode::NOT_FOUND, format!("No API endpoint at {}.", parts.uri.path()), request_id.as_deref())
        .into_response()
}

/// `GET /api/v1/organization`: the organization the key belongs to.
async fn organization(State(state): State<AppState>, caller: ApiCaller) -> Response {
    match super::domain::orgs::name(&state.pool, caller.principal.org_id).await {
        Ok(Some(name)) => Json(serde_json::json!({ "id": caller.principal.org_id, "name": name })).into_response(),
        Ok(None) => {
            Problem::from_domain(super::domain::DomainError::NotFound, caller.request_id.as_deref()).into_response()
        }
        Err(err) => Problem::from_domain(err, caller.request_id.as_deref()).into_response(),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    action: Option<String>,
    outcome: Option<String>,
    actor: Option<String>,
    before_seq: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit/events`: newest first; page with `before_seq`.
async fn audit_events(
    State(state): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                format!("Bad query string: {}", rejection.body_text()),
                caller.request_id.as_deref(),
            )
            .into_response()
        }
    };
    let filter = AuditFilter {
        action: query.action.unwrap_or_default(),
        actor: query.actor.unwrap_or_default(),
        outcome: query.outcome.unwrap_or_default(),
        before_seq: query.before_seq,
    };
    match audit::list(&state.pool, caller.principal.org_id, &filter, query.limit.unwrap_or(100)).await {
        Ok(page) => {
            Json(serde_json::json!({ "events": page.events, "next_before_seq": page.next_before_seq })).into_response()
        }
        Err(err) => Problem::from_domain(err, caller.request_id.as_deref()).into_response(),
    }
}

/// `GET /api/v1/openapi.json`: the description of this API (grows with each capability).
async fn openapi() -> Response {
    Json(serde_json::json!({
        "openapi": "3.1.0",
        "info": { "title": "Mandate platform API", "version": "1" },
        "components": {
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer", "description": "Organization API key (mnd_key_...)" } }
        },
        "security": [{ "apiKey": [] }],
        "paths": {
            "/api/v1/organization": { "get": { "summary": "The key's organization", "responses": { "200": { "description": "id and name" }, "401": { "description": "missing or invalid key" } } } },
            "/api/v1/audit/events": { "get": {
                "summary": "Audit events, newest first",
                "parameters": [
                    { "name": "action", "in": "query", "schema": { "type": "string" } },
                    { "name": "outcome", "in": "query", "schema": { "type": "string", "enum": ["success", "failure"] } },
                    { "name": "actor", "in": "query", "schema": { "type": "string" } },
                    { "name": "before_seq", "in": "query", "schema": { "type": "integer" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } }
                ],
                "responses": { "200": { "description": "events and next_before_seq" }, "401": { "description": "missing or invalid key" } }
            } }
        }
    }))
    .into_response()
}
