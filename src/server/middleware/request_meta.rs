//! Client address, user agent and request id of a request, as recorded in audit events.

use crate::server::domain::RequestMeta;
use crate::server::state::AppState;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// Upper bound of stored header values, so a client cannot bloat the audit log.
const MAX_HEADER_CHARS: usize = 512;

/// The request's facts; the client address as `client_address` reads it.
pub fn from_parts(parts: &Parts, trusted_proxies: usize) -> RequestMeta {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(MAX_HEADER_CHARS).collect::<String>())
    };
    RequestMeta {
        ip: client_address(&parts.headers, &parts.extensions, trusted_proxies).map(|ip| ip.to_string()),
        user_agent: header("user-agent"),
        request_id: header("x-request-id"),
    }
}

/// The client's address. Behind `trusted_proxies` proxies, it is that many entries from the
/// right of `X-Forwarded-For`: each proxy appends the address it was called from, so entries
/// further left are whatever the client wrote and are never believed. Without proxies, or when
/// the header has fewer entries, the peer address.
pub fn client_address(headers: &HeaderMap, extensions: &Extensions, trusted_proxies: usize) -> Option<IpAddr> {
    let forwarded = match trusted_proxies {
        0 => None,
        n => headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .nth(n - 1)
            .and_then(|ip| ip.parse::<IpAddr>().ok()),
    };
    forwarded.or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip()))
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
