//! The doors' rate limits at the HTTP edge: a layer per door that counts each request by client
//! address (and, at the OAuth endpoints, by client id too) and answers a client that used up its
//! allowance with 429 and `Retry-After`, in that door's protocol: an OAuth error, a SCIM error, a
//! JSON problem, or a page a person can read. Password sign-in and setup links are server
//! functions, which count themselves (`api::session`) and answer the portal's error format.

use super::domain::rate_limits::{Door, RateLimits};
use super::errors::Problem;
use super::middleware::request_meta::client_address;
use super::oauth::errors::OAuthError;
use super::scim::error::ScimError;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;

/// One door's guard: the shared counters, which door, and how to find the client's address.
#[derive(Clone)]
pub struct Guard {
    pub limits: Arc<RateLimits>,
    pub door: Door,
    pub trusted_proxies: usize,
}

/// The layer function: counts the request, or refuses it.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let address = client_address(request.headers(), request.extensions(), guard.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut counted = guard.limits.check(guard.door, &address);
    if counted.is_ok() && guard.door == Door::Token {
        if let Some(client_id) = basic_client_id(request.headers()) {
            counted = guard.limits.check(guard.door, &format!("client:{client_id}"));
        }
    }
    match counted {
        Ok(()) => next.run(request).await,
        Err(wait) => refusal(guard.door, wait, request.headers()),
    }
}

/// The client id of HTTP Basic client authentication, if that is how the client authenticates.
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let client_id = text.split(':').next()?;
    (!client_id.is_empty() && client_id.len() <= 200).then(|| client_id.to_string())
}

/// Whole seconds to wait, at least one (`Retry-After` has no fractions).
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The message a person or an operator reads, whatever the format.
pub fn message(wait: Duration) -> String {
    format!("Too many requests from your address. Try again in {} s.", retry_after(wait))
}

fn refusal(door: Door, wait: Duration, headers: &HeaderMap) -> Response {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok());
    let status = StatusCode::TOO_MANY_REQUESTS;
    let text = message(wait);
    let mut response = match door {
        Door::Token => OAuthError::new(status, "temporarily_unavailable", text).into_response(),
        Door::Scim => ScimError::new(status, None, text).into_response(),
        Door::Api => Problem::new(status, text, request_id).into_response(),
        Door::SignIn | Door::Sso => {
            let page = format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Slow down · Mandate</title></head>\
                 <body><h1>Too many sign-in attempts</h1><p>{text}</p><p><a href=\"/login\">Back to sign in</a></p></body></html>"
            );
            (status, [(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], page).into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&retry_after(wait).to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basic_client_id_is_read_and_waits_round_up() {
        let mut headers = HeaderMap::new();
        let credentials = base64::engine::general_purpose::STANDARD.encode("agt_123:secret");
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Basic {credentials}")).unwrap());
        assert_eq!(basic_client_id(&headers).as_deref(), Some("agt_123"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_client_id(&headers), None);
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::from_secs(3)), 3);
    }
}
