//! Errors of the domain layer. Entry points translate them into their protocol's format.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DomainError {
    /// No such object in the caller's organization (also used for other organizations' objects).
    #[error("not found")]
    NotFound,
    /// The caller's role does not allow the operation.
    #[error("your role does not allow this: {0}")]
    Forbidden(&'static str),
    /// A rule forbids this particular operation (not a matter of role).
    #[error("{0}")]
    NotAllowed(String),
    /// Bad input; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// Conflicts with current state.
    #[error("{0}")]
    Conflict(String),
    /// The caller's copy is stale (`If-Match` did not match the current version).
    #[error("the resource changed since it was read")]
    PreconditionFailed,
    /// A query filter names something that cannot be filtered on, or compares it wrongly.
    #[error("{0}")]
    InvalidFilter(String),
    /// Wrong email or password (deliberately vague).
    #[error("incorrect email or password")]
    InvalidCredentials,
    /// Too many attempts; try again later.
    #[error("{0}")]
    RateLimited(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        DomainError::Invalid(message.into())
    }
}

/// Maps a violation of a named database constraint to a domain error, so that rules enforced
/// by the schema surface as clear messages instead of internal errors.
pub trait ResultExt<T> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> DomainError) -> Result<T, DomainError>;
}

impl<T, E: Into<DomainError>> ResultExt<T> for Result<T, E> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> DomainError) -> Result<T, DomainError> {
        self.map_err(|err| match err.into() {
            DomainError::Database(sqlx::Error::Database(db)) if db.constraint() == Some(name) => map(),
            other => other,
        })
    }
}
