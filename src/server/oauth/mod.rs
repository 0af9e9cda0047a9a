//! OAuth 2.0 endpoints for agents and resource servers. This module parses requests,
//! authenticates callers and shapes answers in the RFCs' words; the rules are in
//! `domain::agents::tokens`.
//!
//! | endpoint | RFC |
//! |---|---|
//! | `GET /.well-known/oauth-authorization-server` | RFC 8414 metadata |
//! | `GET /oauth2/jwks` | RFC 7517 key set (Ed25519, RFC 8037) |
//! | `POST /oauth2/token` | RFC 6749 §4.4 client credentials; RFC 8693 token exchange |
//! | `POST /oauth2/introspect` | RFC 7662 |
//! | `POST /oauth2/revoke` | RFC 7009 |

mod client_auth;
pub mod errors;

use super::domain::agents::tokens::{ActiveToken, TokenError};
use super::domain::Actor;
use super::middleware::request_meta::Meta;
use super::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use client_auth::{authenticate, Client};
pub use errors::OAuthError;
use serde_json::{json, Value};
use std::collections::HashMap;
use time::OffsetDateTime;

pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/oauth2/jwks", get(jwks))
        .route("/oauth2/token", post(token))
        .route("/oauth2/introspect", post(introspect))
        .route("/oauth2/revoke", post(revoke))
}

/// The form parameters of a request: `application/x-www-form-urlencoded`, each at most once
/// (RFC 6749 §3.2).
pub struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthError> {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request("send the parameters as application/x-www-form-urlencoded"));
        }
        if body.len() > 16 * 1024 {
            return Err(OAuthError::invalid_request("the request body is too large"));
        }
        let mut params = HashMap::new();
        for (key, value) in form_urlencoded::parse(body) {
            if params.insert(key.to_string(), value.to_string()).is_some() {
                return Err(OAuthError::invalid_request(format!("the parameter {key} appears more than once")));
            }
        }
        Ok(Form(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("the {name} parameter is required")))
    }
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /.well-known/oauth-authorization-server`
async fn metadata(State(state): State<AppState>) -> Response {
    let url = |path: &str| state.config.url(path);
    let auth_methods = json!(["client_secret_basic", "client_secret_post"]);
    Json(json!({
        "issuer": state.config.public_url,
        "token_endpoint": url("/oauth2/token"),
        "jwks_uri": url("/oauth2/jwks"),
        "introspection_endpoint": url("/oauth2/introspect"),
        "revocation_endpoint": url("/oauth2/revoke"),
        "grant_types_supported": [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "bearer"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "bearer"],
        "token_endpoint_auth_signing_alg_values_supported": [],
        "service_documentation": url("/api/v1/openapi.json"),
    }))
    .into_response()
}

/// `GET /oauth2/jwks`
async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.tokens.keys.current().jwks()).into_response();
    // Short caching: clients refetch soon after a rotation.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response
}

/// `POST /oauth2/token`
async fn token(State(state): State<AppState>, Meta(meta): Meta, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let form = Form::parse(&headers, &body)?;
        let grant_type = form.require("grant_type")?;
        if grant_type != GRANT_CLIENT_CREDENTIALS && grant_type != GRANT_TOKEN_EXCHANGE {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("grant_type must be {GRANT_CLIENT_CREDENTIALS} or {GRANT_TOKEN_EXCHANGE}"),
            ));
        }
        let Client::Agent(agent) = authenticate(&state, &headers, &form, false).await? else {
            return Err(OAuthError::invalid_client(false));
        };
        let now = OffsetDateTime::now_utc();
        let issued = if grant_type == GRANT_CLIENT_CREDENTIALS {
            state.tokens.client_credentials(&agent, form.get("scope"), &meta, now).await
        } else {
            let subject_type = form.require("subject_token_type")?;
            if subject_type != TOKEN_TYPE_ACCESS_TOKEN {
                return Err(OAuthError::invalid_request(format!(
                    "subject_token_type must be {TOKEN_TYPE_ACCESS_TOKEN}"
                )));
            }
            if let Some(requested) = form.get("requested_token_type") {
                if requested != TOKEN_TYPE_ACCESS_TOKEN {
                    return Err(OAuthError::invalid_request(format!(
                        "requested_token_type must be {TOKEN_TYPE_ACCESS_TOKEN}"
                    )));
                }
            }
            if form.get("actor_token").is_some() {
                return Err(OAuthError::invalid_request(
                    "actor_token is not supported: the authenticated client is the actor",
                ));
            }
            let subject = form.require("subject_token")?;
            state.tokens.exchange(&agent, subject, form.get("scope"), &meta, now).await
        }
        .map_err(|err| OAuthError::from_token_error(err, meta.request_id.as_deref()))?;
        let mut body = json!({
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        });
        if grant_type == GRANT_TOKEN_EXCHANGE {
            body["issued_token_type"] = json!(TOKEN_TYPE_ACCESS_TOKEN);
        }
        Ok(Json(body).into_response())
    }
    .await;
    no_store(result.unwrap_or_else(IntoResponse::into_response))
}

/// `POST /oauth2/introspect`: `{"active": false}` for anything not active in the caller's
/// organization, the token's claims otherwise.
async fn introspect(State(state): State<AppState>, Meta(meta): Meta, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let form = Form::parse(&headers, &body)?;
        let client = authenticate(&state, &headers, &form, true).await?;
        let token = form.require("token")?;
        let active = state
            .tokens
            .introspect(client.org_id(), token, OffsetDateTime::now_utc())
            .await
            .map_err(|err| OAuthError::from_token_error(TokenError::Server(err), meta.request_id.as_deref()))?;
        Ok::<_, OAuthError>(Json(introspection_body(active.as_ref())).into_response())
    }
    .await;
    no_store(result.unwrap_or_else(IntoResponse::into_response))
}

pub fn introspection_body(active: Option<&ActiveToken>) -> Value {
    match active {
        None => json!({ "active": false }),
        Some(token) => {
            let mut body = token.claims.clone();
            body["active"] = json!(true);
            body["token_type"] = json!("Bearer");
            body
        }
    }
}

/// `POST /oauth2/revoke`: ends a token and those exchanged from it. Always 200 for a
/// well-formed request by an authenticated client (RFC 7009 §2.2).
async fn revoke(State(state): State<AppState>, Meta(meta): Meta, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let form = Form::parse(&headers, &body)?;
        let client = authenticate(&state, &headers, &form, true).await?;
        let token = form.require("token")?;
        let (actor, agent_id) = match &client {
            Client::Agent(agent) => {
                (Actor::Agent { agent_id: agent.agent_id, label: agent.name.clone() }, Some(agent.agent_id))
            }
            Client::ApiKey(key) => (key.actor(), None),
        };
        let may_revoke = |token: &ActiveToken| match agent_id {
            None => true,
            Some(id) => token.root.agent_id == id || token.delegates.iter().any(|d| d.agent_id == id),
        };
        state
            .tokens
            .revoke(client.org_id(), token, actor, may_revoke, &meta, OffsetDateTime::now_utc())
            .await
            .map_err(|err| OAuthError::from_token_error(TokenError::Server(err), meta.request_id.as_deref()))?;
        Ok::<_, OAuthError>(StatusCode::OK.into_response())
    }
    .await;
    no_store(result.unwrap_or_else(IntoResponse::into_response))
}
