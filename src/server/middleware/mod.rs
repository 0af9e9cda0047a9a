//! Cross-cutting HTTP layers: request metadata, security headers (with the CSP nonce) and CSRF
//! defence. Their order is set, and explained, in `router::app`.

pub mod csrf;
pub mod request_meta;
pub mod security_headers;
