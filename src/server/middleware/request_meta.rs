//! Client address, user agent and request id of a request, as recorded in audit events.

use crate::server::domain::RequestMeta;
use crate::server::state::AppState;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::SocketAddr;

/// Upper bound of stored header values, so a client cannot bloat the audit log.
const MAX_HEADER_CHARS: usize = 512;

pub fn from_parts(parts: &Parts, trust_proxy: bool) -> RequestMeta {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(MAX_HEADER_CHARS).collect::<String>())
    };
    let forwarded = if trust_proxy {
        header("x-forwarded-for")
            .and_then(|v| v.split(',').next().map(|ip| ip.trim().to_string()))
            .filter(|ip| !ip.is_empty())
    } else {
        None
    };
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string());
    RequestMeta { ip: forwarded.or(peer), user_agent: header("user-agent"), request_id: header("x-request-id") }
}

/// Extractor form for axum handlers.
pub struct Meta(pub RequestMeta);

impl<S> FromRequestParts<S> for Meta
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        Ok(Meta(from_parts(parts, state.config.trust_proxy_headers)))
    }
}
