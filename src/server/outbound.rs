//! Outbound HTTP: the one client Mandate uses to call identity providers (OIDC discovery, JWKS,
//! the code exchange, SAML metadata). No redirects are followed, connections and answers time
//! out, and answers above `MAX_RESPONSE_BYTES` are refused, so a slow or hostile peer cannot
//! hold a request or memory. It speaks `openidconnect`'s client trait so that crate's calls go
//! through it too.

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Answers above this size are refused (discovery documents, JWKS and metadata are small).
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// The HTTP client for calls out of Mandate (identity providers: OIDC discovery, JWKS, token
/// exchange, SAML metadata).
#[derive(Clone)]
pub struct OutboundHttp {
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundHttpError {
    #[error("{0}")]
    Request(String),
    #[error("the answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

impl OutboundHttp {
    pub fn new() -> anyhow::Result<OutboundHttp> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent("Mandate")
            .build()?;
        Ok(OutboundHttp { client })
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundHttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| OutboundHttpError::Request(e.to_string()))?;
        let mut response =
            self.client.execute(request).await.map_err(|e| OutboundHttpError::Request(describe_reqwest(&e)))?;
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| OutboundHttpError::Request(describe_reqwest(&e)))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(OutboundHttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(|e| OutboundHttpError::Request(e.to_string()))
    }
}

fn describe_reqwest(err: &reqwest::Error) -> String {
    let url = err.url().map(|u| u.as_str().to_string()).unwrap_or_default();
    if err.is_timeout() {
        format!("{url} did not answer within 10 seconds")
    } else if err.is_connect() {
        format!("could not connect to {url}")
    } else {
        format!("request to {url} failed: {err}")
    }
}

impl<'c> AsyncHttpClient<'c> for OutboundHttp {
    type Error = OutboundHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
