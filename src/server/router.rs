//! The one place where every area's routes are merged and the cross-cutting layers applied.
//! Tests build the same router with `app(state)`.

use super::domain::rate_limits::Door;
use super::middleware::csrf::{csrf_protection, CsrfConfig};
use super::middleware::security_headers::{security_headers, SecurityHeadersConfig};
use super::rate_limit::{self, Guard};
use super::state::AppState;
use super::{api_v1, auth, downloads, oauth, scim};
use crate::app::{shell, App};
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// Request bodies above this size are refused with 413 before any handler parses them.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn app(state: AppState) -> Router {
    let leptos_options = state.leptos_options.clone();
    let routes = generate_route_list(App);
    let config = state.config.clone();

    let session_cookie = if config.https { "__Host-mandate_session" } else { "mandate_session" };
    let sessions = SessionManagerLayer::new(PostgresStore::new(state.pool.clone()))
        .with_name(session_cookie)
        .with_http_only(true)
        .with_secure(config.https)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(auth::session::IDLE_TIMEOUT));

    let door = |door: Door| {
        let guard = Guard { limits: state.rate_limits.clone(), door, trusted_proxies: config.trusted_proxies };
        from_fn_with_state(guard, rate_limit::guard)
    };

    Router::new()
        .route("/healthz", get(healthz))
        .merge(auth::router())
        .merge(auth::sso::router().layer(door(Door::Sso)))
        .merge(oauth::router().layer(door(Door::Token)))
        .merge(scim::router().layer(door(Door::Scim)))
        .merge(downloads::router())
        .nest("/api/v1", api_v1::router().layer(door(Door::Api)))
        .leptos_routes(&state, routes, {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Layers wrap what is above them, so they are listed innermost first:
        // the page guard needs the session; the session layer runs only for requests that
        // passed the CSRF check; security headers cover every response, including refusals;
        // the request id is set first of all, so that every layer and log line sees it.
        .layer(from_fn_with_state(state.clone(), auth::guard::guard_pages))
        .layer(sessions)
        .layer(from_fn_with_state(CsrfConfig { public_origin: config.public_origin().to_string() }, csrf_protection))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(from_fn_with_state(SecurityHeadersConfig { https: config.https }, security_headers))
        .layer(PropagateRequestIdLayer::x_request_id())
        // Spans name the path, never the query: query strings carry one-time codes (the OIDC
        // `code` an IdP sends back), which must not reach any log.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// `GET /healthz`: 200 when the database answers within two seconds, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    // language=PostgreSQL
    let probe = sqlx::query_scalar!("select 1 as \"one!\"").fetch_one(&state.pool);
    let reachable = matches!(tokio::time::timeout(Duration::from_secs(2), probe).await, Ok(Ok(1)));
    let status = if reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({
        "status": if reachable { "ok" } else { "degraded" },
        "database": if reachable { "reachable" } else { "unreachable" },
    });
    (status, Json(body))
}
