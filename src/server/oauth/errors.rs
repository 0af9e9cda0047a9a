//! OAuth error responses (RFC 6749 §5.2): `{"error", "error_description"}` with the status the
//! RFC names, never a stack trace; server errors are logged with the request id.

use crate::server::domain::agents::tokens::TokenError;
use crate::server::domain::DomainError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Answer with `WWW-Authenticate: Basic` (the client tried HTTP Basic).
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError { status, error, description: description.into(), basic_challenge: false }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client(basic_challenge: bool) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "client authentication failed: unknown client, wrong secret, or the agent was revoked".into(),
            basic_challenge,
        }
    }

    pub fn from_token_error(err: TokenError, request_id: Option<&str>) -> Self {
        match err {
            TokenError::InvalidRequest(d) => Self::invalid_request(d),
            TokenError::InvalidClient => Self::invalid_client(false),
            TokenError::InvalidGrant(d) => Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d),
            TokenError::InvalidScope(d) => Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d),
            TokenError::Server(err) => {
                match &err {
                    DomainError::Database(e) => {
                        tracing::error!(request_id, error = %e, "token endpoint database error")
                    }
                    other => tracing::error!(request_id, error = %other, "token endpoint error"),
                }
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    format!(
                        "the server could not complete the request (request id {})",
                        request_id.unwrap_or("unknown")
                    ),
                )
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(json!({ "error": self.error, "error_description": self.description }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic_challenge { "Basic realm=\"mandate\"" } else { "Bearer" };
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
