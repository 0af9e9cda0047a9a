//! Sends signed-out browsers from portal pages to `/login` (server side, before any rendering),
//! signed-in ones from `/login` to the dashboard, and admins who must set up a second factor to
//! Settings → Security from every other page. The admin it loaded rides along in the
//! request's extensions, so the page's server functions do not load it again.

use super::session;
use crate::server::state::AppState;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;
use tower_sessions::Session;

const PORTAL_SECTIONS: [&str; 6] = ["/connections", "/directories", "/agents", "/approvals", "/audit", "/settings"];
/// Where an admin who must set up a second factor is sent, whatever page they ask for.
const SECURITY_SETTINGS: &str = "/settings?tab=security";

fn is_security_settings(uri: &axum::http::Uri) -> bool {
    uri.path() == "/settings" && uri.query().is_some_and(|q| q.split('&').any(|pair| pair == "tab=security"))
}

/// Whether a path is a portal page that needs a signed-in admin.
pub fn is_portal_page(path: &str) -> bool {
    path == "/"
        || PORTAL_SECTIONS
            .iter()
            .any(|section| path == *section || path.strip_prefix(section).is_some_and(|rest| rest.starts_with('/')))
}

pub async fn guard_pages(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    let is_login = path == "/login";
    if !is_portal_page(&path) && !is_login {
        return next.run(request).await;
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return next.run(request).await;
    };
    let admin = session::current_admin_enrolling(&state.pool, &session, OffsetDateTime::now_utc()).await.ok().flatten();
    let signed_in = admin.is_some();
    let enrolling = signed_in && session::must_enrol(&session).await;
    if let Some(admin) = admin.filter(|_| !enrolling) {
        request.extensions_mut().insert(admin);
    }
    if enrolling && !is_login && !is_security_settings(request.uri()) {
        return Redirect::to(SECURITY_SETTINGS).into_response();
    }
    match (signed_in, is_login) {
        (false, false) => {
            let target = request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
            let next_param: String = url_encode(target);
            Redirect::to(&format!("/login?next={next_param}")).into_response()
        }
        (true, true) => Redirect::to("/").into_response(),
        _ => next.run(request).await,
    }
}

fn url_encode(input: &str) -> String {
    input
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A `next` target is only followed when it is a same-origin relative path (no open redirect):
/// it starts with one `/`, and holds only visible ASCII without a backslash (browsers read `\` as
/// `/`, and control characters, TAB or spaces could not go in a `Location` header).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path.len() <= 2048
                && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_pages_are_recognised() {
        for path in ["/", "/agents", "/settings/admins", "/audit"] {
            assert!(is_portal_page(path), "{path}");
        }
        for path in ["/login", "/setup/x", "/agentsX", "/pkg/mandate.js", "/healthz"] {
            assert!(!is_portal_page(path), "{path}");
        }
    }

    #[test]
    fn next_targets_stay_on_this_site() {
        assert_eq!(safe_next(Some("/audit?x=1")), "/audit?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        for hostile in ["/\x01x", "/\tx", "/a\\..\\/evil", "/ x", "/\x7f", "/é", "/\r\nSet-Cookie: x=1", "", "audit"] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(safe_next(None), "/");
    }
}
