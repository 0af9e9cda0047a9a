//! The one error type server functions return: a kind, a message a person can act on, and the
//! request id to quote to support. Internal details never cross to the browser; the server logs
//! them once, with the same request id.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Not signed in, or the session expired.
    Unauthenticated,
    /// Signed in, but the role does not allow this.
    Forbidden,
    /// No such object in this organization.
    NotFound,
    /// The input was rejected; the message says what to change.
    Invalid,
    /// The change conflicts with the current state (duplicate, already used...).
    Conflict,
    /// Too many attempts.
    RateLimited,
    /// Anything else; details are in the server log under the request id.
    Internal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
    pub request_id: Option<String>,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError { kind, message: message.into(), request_id: None }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(ErrorKind::Unauthenticated, "Your session has ended. Sign in again to continue.")
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorKind::Internal,
            "Something went wrong on our side. Try again, and quote the request id if it keeps happening.",
        )
    }

    /// HTTP status for this kind; the one place the mapping lives.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Invalid => 422,
            ErrorKind::Conflict => 409,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                AppError::invalid("The form was incomplete or malformed. Reload the page and try again.")
            }
            ServerFnErrorErr::Request(_) => {
                AppError::new(ErrorKind::Internal, "Could not reach the server. Check your connection and try again.")
            }
            _ => AppError::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_is_pinned() {
        let status = |kind| AppError::new(kind, "x").status();
        assert_eq!(status(ErrorKind::Unauthenticated), 401);
        assert_eq!(status(ErrorKind::Forbidden), 403);
        assert_eq!(status(ErrorKind::NotFound), 404);
        assert_eq!(status(ErrorKind::Invalid), 422);
        assert_eq!(status(ErrorKind::Conflict), 409);
        assert_eq!(status(ErrorKind::RateLimited), 429);
        assert_eq!(status(ErrorKind::Internal), 500);
    }

    #[test]
    fn display_carries_the_request_id() {
        let mut err = AppError::invalid("Password too short");
        err.request_id = Some("abc".into());
        assert_eq!(err.to_string(), "Password too short (request id abc)");
    }
}
