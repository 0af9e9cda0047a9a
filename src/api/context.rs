//! What every server function needs from the request: state, request metadata, the session,
//! and the signed-in admin; plus the one way domain errors become `AppError`s (status set).

use crate::error::{AppError, ErrorKind};
use crate::server::auth::session as auth_session;
use crate::server::domain::rate_limits::Door;
use crate::server::domain::{AdminSession, DomainError, RequestMeta};
use crate::server::errors::to_app_error;
use crate::server::middleware::request_meta;
use crate::server::rate_limit;
use crate::server::state::AppState;
use http::request::Parts;
use leptos::prelude::*;
use time::OffsetDateTime;
use tower_sessions::Session;

pub struct Call {
    pub state: AppState,
    pub meta: RequestMeta,
    pub session: Session,
    /// The admin the page guard already loaded for this request (page renders only).
    loaded: Option<AdminSession>,
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn set_status(status: u16) {
    if let (Some(options), Ok(status)) =
        (use_context::<leptos_axum::ResponseOptions>(), http::StatusCode::from_u16(status))
    {
        options.set_status(status);
    }
}

fn fail_with(app: AppError) -> AppError {
    set_status(app.status());
    app
}

/// The current request's context.
pub async fn call() -> Result<Call, AppError> {
    let missing = |what: &str| {
        tracing::error!("server function context is missing {what}");
        fail_with(AppError::internal())
    };
    let state = use_context::<AppState>().ok_or_else(|| missing("the app state"))?;
    let parts = use_context::<Parts>().ok_or_else(|| missing("the request"))?;
    let meta = request_meta::from_parts(&parts, state.config.trusted_proxies);
    let session = parts.extensions.get::<Session>().cloned().ok_or_else(|| missing("the session"))?;
    let loaded = parts.extensions.get::<AdminSession>().cloned();
    Ok(Call { state, meta, session, loaded })
}

impl Call {
    /// The signed-in admin, if any (loaded once per request).
    pub async fn signed_in(&self) -> Result<Option<AdminSession>, AppError> {
        if let Some(admin) = &self.loaded {
            return Ok(Some(admin.clone()));
        }
        auth_session::current_admin_enrolling(&self.state.pool, &self.session, now())
            .await
            .map_err(|err| self.fail(err))
    }

    /// The signed-in admin, or `Unauthenticated`; `Forbidden` while the session is signed in
    /// only to set up a required second factor.
    pub async fn admin(&self) -> Result<AdminSession, AppError> {
        let admin = self.admin_enrolling().await?;
        if auth_session::must_enrol(&self.session).await {
            return Err(self.request_error(AppError::new(
                ErrorKind::Forbidden,
                "Your organization requires a second factor: set up an authenticator app under Settings → Security first.",
            )));
        }
        Ok(admin)
    }

    /// The signed-in admin, also while the session may only set up a second factor (for the
    /// Security settings and nothing else).
    pub async fn admin_enrolling(&self) -> Result<AdminSession, AppError> {
        self.signed_in().await?.ok_or_else(|| self.request_error(AppError::unauthenticated()))
    }

    /// A domain error as the portal shows it (logged if internal; HTTP status set).
    pub fn fail(&self, err: DomainError) -> AppError {
        fail_with(to_app_error(err, self.meta.request_id.as_deref()))
    }

    /// An `AppError` decided here, tagged with the request id.
    pub fn request_error(&self, mut err: AppError) -> AppError {
        err.request_id = self.meta.request_id.clone();
        fail_with(err)
    }

    /// Counts this request at `door`: a client that used up its allowance gets `RateLimited`
    /// (429, `Retry-After`).
    pub fn knock(&self, door: Door) -> Result<(), AppError> {
        let address = self.meta.ip.as_deref().unwrap_or("unknown");
        let Err(wait) = self.state.rate_limits.check(door, address) else { return Ok(()) };
        if let (Some(options), Ok(value)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            http::HeaderValue::from_str(&rate_limit::retry_after(wait).to_string()),
        ) {
            options.insert_header(http::header::RETRY_AFTER, value);
        }
        Err(self.request_error(AppError::new(ErrorKind::RateLimited, rate_limit::message(wait))))
    }
}
