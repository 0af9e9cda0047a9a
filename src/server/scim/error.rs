//! SCIM errors (RFC 7644 §3.12): `{"schemas": [Error], "status": "400", "scimType", "detail"}`
//! with `application/scim+json`, mapped from domain errors in one place.

use super::schema::ERROR;
use crate::server::domain::DomainError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        ScimError { status, scim_type, detail: detail.into() }
    }

    pub fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub fn from_domain(err: DomainError, request_id: Option<&str>) -> Self {
        match err {
            DomainError::NotFound => Self::not_found("no such resource in this directory"),
            DomainError::Conflict(detail) => Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail),
            DomainError::Invalid(detail) => Self::bad_request("invalidValue", detail),
            DomainError::InvalidFilter(detail) => Self::bad_request("invalidFilter", detail),
            DomainError::PreconditionFailed => Self::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                "the resource changed: its version no longer matches If-Match",
            ),
            DomainError::Forbidden(_) | DomainError::NotAllowed(_) | DomainError::InvalidCredentials => {
                Self::new(StatusCode::FORBIDDEN, None, "not allowed")
            }
            DomainError::RateLimited(detail) => Self::new(StatusCode::TOO_MANY_REQUESTS, None, detail),
            DomainError::Database(e) => {
                tracing::error!(request_id, error = %e, "SCIM database error");
                Self::internal(request_id)
            }
            DomainError::Internal(e) => {
                tracing::error!(request_id, error = %e, "SCIM internal error");
                Self::internal(request_id)
            }
        }
    }

    fn internal(request_id: Option<&str>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            format!("the server could not complete the request (request id {})", request_id.unwrap_or("unknown")),
        )
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({ "schemas": [ERROR], "status": self.status.as_u16().to_string(), "detail": self.detail });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/scim+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scim\""));
        }
        response
    }
}
