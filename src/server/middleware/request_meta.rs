//! Client address, user agent and request id of a request, as recorded in audit events.

use crate::server::domain::RequestMeta;
use crate::server::state::AppState;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::SocketAddr;

/// Upper bound of stored header values, so a client cannot bloat the audit log.
const MAX_HEADER_CHARS: usize = 512;

/// The request's facts. Behind `trusted_proxies` proxies, the client address is that many
/// entries from the right of `X-Forwarded-For`: each proxy appends the address it was called
/// from, so entries further left are whatever the client wrote and are never believed.
pub fn from_parts(parts: &Parts, trusted_proxies: usize) -> RequestMeta {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(MAX_HEADER_CHARS).collect::<String>())
    };
    let forwarded = match trusted_proxies {
        0 => None,
        n => parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .nth(n - 1)
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .map(|ip| ip.to_string()),
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
        Ok(Meta(from_parts(parts, state.config.trusted_proxies)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(forwarded: &[&str]) -> Parts {
        let mut request = axum::http::Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let mut parts = request.body(()).unwrap().into_parts().0;
        parts.extensions.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 443))));
        parts
    }

    #[test]
    fn the_client_address_is_read_from_the_right() {
        let ip = |forwarded: &[&str], proxies| from_parts(&parts(forwarded), proxies).ip.unwrap();
        assert_eq!(ip(&["6.6.6.6"], 0), "10.0.0.9", "no trusted proxy: the peer");
        assert_eq!(ip(&["6.6.6.6, 203.0.113.7"], 1), "203.0.113.7", "a spoofed entry on the left is ignored");
        assert_eq!(ip(&["6.6.6.6, 203.0.113.7, 10.0.0.2"], 2), "203.0.113.7");
        assert_eq!(ip(&["6.6.6.6", "203.0.113.7"], 1), "203.0.113.7", "repeated headers are one list");
        assert_eq!(ip(&["203.0.113.7"], 2), "10.0.0.9", "fewer entries than proxies: the peer");
        assert_eq!(ip(&["not-an-ip"], 1), "10.0.0.9");
    }
}
