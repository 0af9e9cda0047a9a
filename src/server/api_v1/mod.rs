//! The platform API (`/api/v1`): JSON over HTTPS, authenticated by an organization's API key
//! (`Authorization: Bearer mnd_key_...`), errors as RFC 9457 problem documents. Every handler
//! acts only inside the key's organization.

mod agents;
mod audit;
mod connections;
mod context;
mod directories;
mod streams;

use super::domain::org::api_keys;
use super::domain::{ApiKeyPrincipal, Caller, DomainError};
use super::errors::Problem;
use super::middleware::request_meta::from_parts;
use super::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/organization", get(organization))
        .merge(agents::router())
        .merge(audit::router())
        .merge(context::router())
        .merge(connections::router())
        .merge(directories::router())
        .merge(streams::router())
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
    match super::domain::org::organizations::name(&state.pool, caller.principal.org_id()).await {
        Ok(Some(name)) => Json(serde_json::json!({ "id": caller.principal.org_id(), "name": name })).into_response(),
        Ok(None) => {
            Problem::from_domain(super::domain::DomainError::NotFound, caller.request_id.as_deref()).into_response()
        }
        Err(err) => Problem::from_domain(err, caller.request_id.as_deref()).into_response(),
    }
}

/// Reads a query string, turning a bad one into a 400 problem that says what is wrong.
pub fn query<T>(caller: &ApiCaller, query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(value)| value).map_err(|rejection| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("Bad query string: {}", rejection.body_text()),
            caller.request_id.as_deref(),
        )
    })
}

/// `GET /api/v1/openapi.json`: the description of this API.
async fn openapi() -> Response {
    Json(openapi_document()).into_response()
}

fn openapi_document() -> serde_json::Value {
    use serde_json::json;
    let problem = json!({ "description": "RFC 9457 problem", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
    let ok = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": { "type": "object" } } } });
    let id = |name: &str| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } });
    let query = |name: &str, schema: serde_json::Value| json!({ "name": name, "in": "query", "schema": schema });
    let body = |schema: serde_json::Value| json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    let errors = |mut responses: serde_json::Value| {
        responses["401"] = problem.clone();
        responses["404"] = problem.clone();
        responses["422"] = problem.clone();
        responses
    };
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Mandate platform API", "version": "1",
                  "description": "Manage an organization's agents, scope approvals, directories and audit trail. Authenticate with an organization API key." },
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "Organization API key (mnd_key_...)" },
                "accessToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "An agent's access token" }
            },
            "schemas": {
                "Problem": { "type": "object", "properties": {
                    "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
                    "detail": { "type": "string" }, "request_id": { "type": "string" } } },
                "NewAgent": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": { "type": "string", "maxLength": 100 }, "description": { "type": "string", "maxLength": 1000 },
                    "owner_email": { "type": "string", "format": "email" }, "owner_id": { "type": "string", "format": "uuid" },
                    "scopes": { "type": "array", "items": { "type": "string" }, "maxItems": 50 }, "reason": { "type": "string" } } },
                "AgentCredentials": { "type": "object", "properties": {
                    "agent_id": { "type": "string", "format": "uuid" }, "client_id": { "type": "string" }, "client_secret": { "type": "string" } } }
            }
        },
        "security": [{ "apiKey": [] }],
        "paths": {
            "/api/v1/organization": { "get": { "summary": "The key's organization", "responses": errors(json!({ "200": ok("id and name") })) } },
            "/api/v1/agents": {
                "get": { "summary": "Agents, newest first", "parameters": [
                    query("search", json!({ "type": "string" })), query("owner", json!({ "type": "string", "format": "uuid" })),
                    query("status", json!({ "type": "string", "enum": ["active", "revoked"] })), query("scope", json!({ "type": "string" }))],
                    "responses": errors(json!({ "200": ok("{agents: [...]}") })) },
                "post": { "summary": "Register an agent; its scopes wait for approval. The client secret is returned once.",
                    "requestBody": body(json!({ "$ref": "#/components/schemas/NewAgent" })),
                    "responses": errors(json!({ "201": { "description": "credentials", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AgentCredentials" } } } } })) }
            },
            "/api/v1/agents/{id}": { "get": { "summary": "One agent with its scopes and history", "parameters": [id("id")], "responses": errors(json!({ "200": ok("agent detail") })) } },
            "/api/v1/agents/{id}/revoke": { "post": { "summary": "Revoke an agent: its credentials and tokens stop before this returns",
                "parameters": [id("id")],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "reason": { "type": "string" } } } } } },
                "responses": errors(json!({ "200": ok("{agent_id, status, revoked_tokens}") })) } },
            "/api/v1/agents/{id}/rotate_secret": { "post": { "summary": "Replace the client secret (returned once)", "parameters": [id("id")],
                "responses": errors(json!({ "200": ok("credentials") })) } },
            "/api/v1/agents/{id}/scope_requests": { "post": { "summary": "Request a scope from the catalog", "parameters": [id("id")],
                "requestBody": body(json!({ "type": "object", "required": ["scope"], "properties": { "scope": { "type": "string" }, "reason": { "type": "string" } } })),
                "responses": errors(json!({ "201": ok("{id, status}"), "409": problem })) } },
            "/api/v1/scope_requests": { "get": { "summary": "Scope requests by status",
                "parameters": [query("status", json!({ "type": "string", "enum": ["pending", "approved", "denied", "withdrawn", "cancelled"] }))],
                "responses": errors(json!({ "200": ok("{scope_requests: [...]}") })) } },
            "/api/v1/scope_requests/{id}/approve": { "post": { "summary": "Approve (optionally until a time). High-risk scopes need a person in the portal.",
                "parameters": [id("id")],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": {
                    "until": { "type": "string", "format": "date-time" }, "note": { "type": "string" } } } } } },
                "responses": errors(json!({ "200": ok("{id, status}"), "403": problem, "409": problem })) } },
            "/api/v1/scope_requests/{id}/deny": { "post": { "summary": "Deny with a reason", "parameters": [id("id")],
                "requestBody": body(json!({ "type": "object", "required": ["reason"], "properties": { "reason": { "type": "string" } } })),
                "responses": errors(json!({ "200": ok("{id, status}"), "409": problem })) } },
            "/api/v1/directories": {
                "get": { "summary": "Directories (SCIM)", "responses": errors(json!({ "200": ok("{directories: [...]}") })) },
                "post": { "summary": "Create a directory; its bearer token is returned once",
                    "requestBody": body(json!({ "type": "object", "required": ["name"], "properties": {
                        "name": { "type": "string" }, "provider": { "type": "string", "enum": ["okta", "entra", "google", "jumpcloud", "generic"] } } })),
                    "responses": errors(json!({ "201": ok("{directory_id, scim_base_url, bearer_token}") })) }
            },
            "/api/v1/connections": {
                "get": { "summary": "SSO connections", "responses": errors(json!({ "200": ok("{connections: [...]}") })) },
                "post": { "summary": "Create an OIDC connection (the client secret is stored encrypted and never returned) or a SAML connection (from IdP metadata by URL or XML, or entity id + SSO URL + PEM certificates)",
                    "requestBody": body(json!({ "type": "object", "required": ["type"], "properties": {
                        "type": { "type": "string", "enum": ["oidc", "saml"] }, "name": { "type": "string" },
                        "metadata_url": { "type": "string", "format": "uri" }, "metadata_xml": { "type": "string" },
                        "idp_entity_id": { "type": "string" }, "sso_url": { "type": "string", "format": "uri" },
                        "certificates_pem": { "type": "string" }, "allow_idp_initiated": { "type": "boolean" },
                        "issuer": { "type": "string", "format": "uri" }, "client_id": { "type": "string" },
                        "client_secret": { "type": "string", "writeOnly": true }, "scopes": { "type": "string" },
                        "claim_email": { "type": "string" }, "claim_name": { "type": "string" }, "claim_groups": { "type": "string" },
                        "role_mappings": { "type": "string", "description": "one `group = role` per line" } } })),
                    "responses": errors(json!({ "201": ok("{connection_id, type, redirect_uri} or {connection_id, type, sp_entity_id, acs_url, metadata_url}") })) }
            },
            "/api/v1/audit/events": {
                "get": {
                    "summary": "Audit events, newest first",
                    "parameters": [
                        query("action", json!({ "type": "string" })), query("outcome", json!({ "type": "string", "enum": ["success", "failure"] })),
                        query("actor", json!({ "type": "string" })), query("person", json!({ "type": "string", "description": "email or id" })),
                        query("agent", json!({ "type": "string", "description": "name, client id or id" })),
                        query("from", json!({ "type": "string", "description": "YYYY-MM-DD, YYYY-MM-DDTHH:MM (UTC) or RFC 3339" })),
                        query("to", json!({ "type": "string" })), query("before_seq", json!({ "type": "integer" })),
                        query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 500 }))],
                    "responses": errors(json!({ "200": ok("{events, next_before_seq}"), "400": problem }))
                },
                "post": {
                    "summary": "Record an agent action, with the chain of authority behind it (durable before the answer)",
                    "security": [{ "accessToken": [] }, { "apiKey": [] }],
                    "requestBody": body(json!({ "type": "object", "required": ["action"], "additionalProperties": false, "properties": {
                        "action": { "type": "string", "pattern": "^[a-z][a-z0-9_-]*(\\.[a-z0-9_-]+)*$", "maxLength": 100 },
                        "target": { "type": "object", "required": ["id"], "properties": {
                            "id": { "type": "string" }, "type": { "type": "string" }, "label": { "type": "string" } } },
                        "outcome": { "type": "string", "enum": ["success", "failure"] },
                        "metadata": { "type": "object", "description": "at most 16 KiB" },
                        "scopes": { "type": "array", "items": { "type": "string" }, "description": "the scopes used; a subset of the token's" },
                        "token_jti": { "type": "string", "format": "uuid", "description": "with an API key: the token the agent presented" } } })),
                    "responses": errors(json!({ "201": ok("{seq, proof_url}"), "403": problem }))
                }
            },
            "/api/v1/audit/export": { "get": { "summary": "Every matching event, oldest first, streamed (the filters of /audit/events)",
                "parameters": [query("format", json!({ "type": "string", "enum": ["csv", "ndjson"] }))],
                "responses": errors(json!({ "200": { "description": "text/csv or application/x-ndjson" } })) } },
            "/api/v1/audit/checkpoint": { "get": { "summary": "The newest signed checkpoint (or the one of `size`)",
                "parameters": [query("size", json!({ "type": "integer" }))], "responses": errors(json!({ "200": ok("{org_id, size, root_hash, signed_at, key_id, signature}"), "409": problem })) } },
            "/api/v1/audit/proof/{seq}": { "get": { "summary": "RFC 9162 inclusion proof of an event against a signed checkpoint",
                "parameters": [{ "name": "seq", "in": "path", "required": true, "schema": { "type": "integer" } }, query("size", json!({ "type": "integer" }))],
                "responses": errors(json!({ "200": ok("{seq, leaf_index, event_hash, leaf_hash, tree_size, audit_path, checkpoint}"), "403": problem })) } },
            "/api/v1/audit/consistency": { "get": { "summary": "RFC 9162 consistency proof between two signed checkpoints",
                "parameters": [query("from", json!({ "type": "integer" })), query("to", json!({ "type": "integer" }))],
                "responses": errors(json!({ "200": ok("{from, to, proof}") })) } },
            "/api/v1/audit/keys": { "get": { "summary": "The Ed25519 public keys that sign checkpoints", "security": [],
                "responses": { "200": ok("{keys: [{key_id, algorithm, public_key, public_key_pem}]}") } } },
            "/api/v1/audit/retention": { "put": { "summary": "How long events are kept (pruned only at a signed checkpoint)",
                "requestBody": body(json!({ "type": "object", "required": ["days"], "properties": { "days": { "type": "integer", "minimum": 30, "maximum": 36500 } } })),
                "responses": errors(json!({ "200": ok("{retention_days}") })) } },
            "/api/v1/audit/streams": {
                "get": { "summary": "Log streams with their delivery status (never their secrets)", "responses": errors(json!({ "200": ok("{streams: [...]}") })) },
                "post": { "summary": "Create a log stream: every audit event from now on is pushed to the destination (at least once; dedupe by event id or Idempotency-Key). A webhook's HMAC secret is generated and returned once.",
                    "requestBody": body(json!({ "type": "object", "required": ["name", "kind"], "additionalProperties": false, "properties": {
                        "name": { "type": "string", "maxLength": 100 }, "kind": { "type": "string", "enum": ["webhook", "splunk_hec", "datadog"] },
                        "url": { "type": "string", "format": "uri", "maxLength": 2048, "description": "https (http only on loopback); empty for Datadog means the US1 intake" },
                        "secret": { "type": "string", "writeOnly": true, "description": "the HEC token (splunk_hec) or API key (datadog); absent for webhooks" } } })),
                    "responses": errors(json!({ "201": ok("{stream_id, kind, secret?}"), "409": problem })) }
            },
            "/api/v1/audit/streams/{id}": {
                "get": { "summary": "One log stream", "parameters": [id("id")], "responses": errors(json!({ "200": ok("stream") })) },
                "delete": { "summary": "Delete a log stream", "parameters": [id("id")], "responses": errors(json!({ "204": { "description": "deleted" } })) }
            },
            "/api/v1/audit/streams/{id}/enable": { "post": { "summary": "Turn a stream on: it retries at once and catches up from its cursor", "parameters": [id("id")], "responses": errors(json!({ "200": ok("stream") })) } },
            "/api/v1/audit/streams/{id}/disable": { "post": { "summary": "Turn a stream off (it keeps its place)", "parameters": [id("id")], "responses": errors(json!({ "200": ok("stream") })) } },
            "/api/v1/audit/streams/{id}/test": { "post": { "summary": "Send a synthetic mandate.stream.test event now and report the destination's answer (nothing is stored)", "parameters": [id("id")], "responses": errors(json!({ "200": ok("{ok, status, message, elapsed_ms}") })) } },
            "/api/v1/audit/streams/{id}/rotate_secret": { "post": { "summary": "Replace a webhook's signing secret (returned once)", "parameters": [id("id")], "responses": errors(json!({ "200": ok("{stream_id, secret}") })) } },
            "/api/v1/agent/context": { "get": { "summary": "Who an agent acts for and what it may do (for a model's prompt)",
                "security": [{ "accessToken": [] }], "responses": { "200": ok("person, organization, agent, scopes, prompt"), "401": problem } } }
        }
    })
}
