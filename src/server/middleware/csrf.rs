//! CSRF defence for every state-changing request. The session cookie is `SameSite=Lax`; on top
//! of that, a state-changing browser request must come from our own origin, proven by
//! `Sec-Fetch-Site: same-origin` (Fetch Metadata) or, for browsers that do not send it, an
//! `Origin` header equal to our public origin. Requests with neither are refused.
//!
//! Exempt are endpoints that never read the session cookie and authenticate each request with
//! its own credential or signed message: the platform API, OAuth, SCIM, and the SAML ACS
//! (a cross-site POST by design, protected by its signed, single-use response).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::errors::Problem;

const EXEMPT_PREFIXES: [&str; 4] = ["/api/v1/", "/oauth2/", "/scim/", "/.well-known/"];

#[derive(Clone)]
pub struct CsrfConfig {
    pub public_origin: String,
}

/// Whether a request path is exempt (it authenticates without cookies).
pub fn is_exempt(path: &str) -> bool {
    EXEMPT_PREFIXES.iter().any(|prefix| path.starts_with(prefix))
        || (path.starts_with("/sso/saml/") && path.ends_with("/acs"))
}

/// The decision, kept pure for unit tests: `None` allows, `Some(reason)` refuses.
pub fn check(method: &Method, path: &str, headers: &HeaderMap, public_origin: &str) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || is_exempt(path) {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("sec-fetch-site") {
        Some("same-origin") => None,
        Some(_) => Some("the request came from another site"),
        None => match header("origin") {
            Some(origin) if origin == public_origin => None,
            Some(_) => Some("the request came from another origin"),
            None => Some("the request did not say where it came from (no Sec-Fetch-Site or Origin header)"),
        },
    }
}

pub async fn csrf_protection(State(config): State<CsrfConfig>, request: Request, next: Next) -> Response {
    if let Some(reason) = check(request.method(), request.uri().path(), request.headers(), &config.public_origin) {
        let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        tracing::warn!(path = %request.uri().path(), reason, request_id, "refused a cross-site request");
        return Problem::new(
            StatusCode::FORBIDDEN,
            format!("Cross-site request refused: {reason}."),
            request_id.as_deref(),
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    const ORIGIN: &str = "https://mandate.example";

    #[test]
    fn safe_methods_and_exempt_paths_pass() {
        assert_eq!(check(&Method::GET, "/", &headers(&[("sec-fetch-site", "cross-site")]), ORIGIN), None);
        for path in ["/api/v1/agents", "/oauth2/token", "/scim/v2/x/Users", "/sso/saml/abc/acs"] {
            assert_eq!(check(&Method::POST, path, &HeaderMap::new(), ORIGIN), None, "{path}");
        }
        assert!(check(&Method::POST, "/sso/saml/abc/metadata", &HeaderMap::new(), ORIGIN).is_some());
    }

    #[test]
    fn state_changes_need_our_origin() {
        let post = |h| check(&Method::POST, "/rpc/login", &headers(h), ORIGIN);
        assert_eq!(post(&[("sec-fetch-site", "same-origin")]), None);
        assert!(post(&[("sec-fetch-site", "same-site")]).is_some());
        assert!(post(&[("sec-fetch-site", "cross-site"), ("origin", ORIGIN)]).is_some());
        assert!(post(&[("sec-fetch-site", "none")]).is_some());
        assert_eq!(post(&[("origin", ORIGIN)]), None);
        assert!(post(&[("origin", "https://evil.example")]).is_some());
        assert!(post(&[("origin", "null")]).is_some());
        assert!(post(&[]).is_some());
        assert!(check(&Method::DELETE, "/auth/logout", &HeaderMap::new(), ORIGIN).is_some());
    }
}
