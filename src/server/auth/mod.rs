//! Portal authentication over HTTP: the session cookie, the page guard, `GET /auth/me` and
//! `POST /auth/logout`. Password sign-in is a server function; single sign-on lives in `sso` (browser side) and
//! `oidc` (the protocol).

pub mod guard;
pub mod oidc;
pub mod saml;
pub mod session;
pub mod sso;

use super::domain;
use super::errors::Problem;
use super::middleware::request_meta::Meta;
use super::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use time::OffsetDateTime;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new().route("/auth/me", get(me)).route("/auth/logout", post(logout))
}

/// `GET /auth/me`: the signed-in admin, or 401.
async fn me(State(state): State<AppState>, session: Session, Meta(meta): Meta) -> Response {
    match session::current_admin(&state.pool, &session, OffsetDateTime::now_utc()).await {
        Ok(Some(admin)) => Json(session::me(&admin)).into_response(),
        Ok(None) => {
            Problem::new(StatusCode::UNAUTHORIZED, "Not signed in.", meta.request_id.as_deref()).into_response()
        }
        Err(err) => Problem::from_domain(err, meta.request_id.as_deref()).into_response(),
    }
}

/// `POST /auth/logout`: ends the session (audited) and returns to the sign-in page.
async fn logout(State(state): State<AppState>, session: Session, Meta(meta): Meta) -> Response {
    let now = OffsetDateTime::now_utc();
    if let Ok(Some(admin)) = session::current_admin_enrolling(&state.pool, &session, now).await {
        if let Err(err) = domain::org::login::logout(&state.pool, &admin, &meta, now).await {
            return Problem::from_domain(err, meta.request_id.as_deref()).into_response();
        }
    }
    session::sign_out(&session).await;
    Redirect::to("/login?signed_out=1").into_response()
}
