//! Turns domain errors into what callers see: one mapping for the portal (`AppError`) and the
//! JSON APIs (`Problem`, RFC 9457). Internal errors are logged once with the request id and
//! reach the caller only as an opaque message carrying that id.

use super::domain::DomainError;
use crate::error::{AppError, ErrorKind};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The user-facing form of a domain error.
pub fn to_app_error(err: DomainError, request_id: Option<&str>) -> AppError {
    let mut app = match err {
        DomainError::NotFound => AppError::new(
            ErrorKind::NotFound,
            "Not found. It may have been removed, or it belongs to another organization.",
        ),
        DomainError::Forbidden(what) => {
            AppError::new(ErrorKind::Forbidden, format!("Your role does not allow this ({what})."))
        }
        DomainError::NotAllowed(message) => AppError::new(ErrorKind::Forbidden, message),
        DomainError::PreconditionFailed => {
            AppError::new(ErrorKind::Conflict, "This changed since you loaded it. Reload and try again.")
        }
        DomainError::InvalidFilter(message) => AppError::new(ErrorKind::Invalid, message),
        DomainError::Invalid(message) => AppError::new(ErrorKind::Invalid, message),
        DomainError::Conflict(message) => AppError::new(ErrorKind::Conflict, message),
        DomainError::InvalidCredentials => AppError::new(ErrorKind::Unauthenticated, "Incorrect email or password."),
        DomainError::RateLimited(message) => AppError::new(ErrorKind::RateLimited, message),
        DomainError::Database(err) => {
            tracing::error!(request_id, error = %err, "database error");
            AppError::internal()
        }
        DomainError::Internal(err) => {
            tracing::error!(request_id, error = %err, "internal error");
            AppError::internal()
        }
    };
    app.request_id = request_id.map(str::to_string);
    app
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>, request_id: Option<&str>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: request_id.map(str::to_string),
        }
    }

    pub fn from_domain(err: DomainError, request_id: Option<&str>) -> Problem {
        let app = to_app_error(err, request_id);
        let status = StatusCode::from_u16(app.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Problem::new(status, app.message, request_id)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}
