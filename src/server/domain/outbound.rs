//! Outbound HTTP: where Mandate may connect, and the one client it uses to call identity
//! providers (OIDC discovery, JWKS, the code exchange, SAML metadata). Log stream deliveries use
//! a client built by the same function.
//!
//! No request reaches a loopback, private, link-local (cloud metadata), shared or reserved
//! address unless the operator's allowlist names it (`MANDATE_OUTBOUND_ALLOW`): names are
//! checked after DNS resolution by the client's own resolver, so the connection goes to the
//! address that was checked, and literal addresses are checked before sending. No redirects are
//! followed, connections and answers time out, and answers above `MAX_RESPONSE_BYTES` are
//! refused, so a slow or hostile peer cannot hold a request or memory. `MANDATE_CA_FILE` adds
//! trust roots (IdPs behind a private CA). The IdP client speaks `openidconnect`'s client trait
//! so that crate's calls go through it too.

use ipnet::IpNet;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Where outbound requests may go: public addresses, plus the operator's allowlist.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    /// `MANDATE_OUTBOUND_ALLOW`: ranges allowed although not public (e.g. `127.0.0.0/8`).
    pub allow: Vec<IpNet>,
    /// `MANDATE_CA_FILE`: PEM certificates trusted for outbound TLS besides the public roots.
    pub ca_file: Option<PathBuf>,
}

impl OutboundPolicy {
    /// Parses a comma-separated list of CIDR ranges (a bare address is a single-address range).
    pub fn parse_allow(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                item.parse::<IpNet>().or_else(|_| item.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    format!("MANDATE_OUTBOUND_ALLOW: {item:?} is not an address range such as 127.0.0.0/8 or 10.1.2.3")
                })
            })
            .collect()
    }

    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|range| range.contains(&ip))
    }

    /// Refuses a URL whose host is a literal address the policy does not permit (names are
    /// checked by the client's resolver, after DNS).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        let host = url.host_str().unwrap_or_default();
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else { return Ok(()) };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(refusal(&ip.to_string()))
        }
    }
}

/// Why a host is refused. The resolved addresses are not named: the message reaches whoever
/// asked for the request, and must not map the operator's internal network for them.
fn refusal(host: &str) -> String {
    format!(
        "{host} is, or resolves only to, a private, loopback or link-local address; Mandate does not connect there unless the operator allows it with MANDATE_OUTBOUND_ALLOW"
    )
}

/// Whether an address is on the public internet: not loopback, private, link-local (where cloud
/// metadata services live), shared (CGNAT), unique-local, multicast, documentation or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let [.., a, b, c, d] = v6.octets();
            let embedded = IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            // Forms that carry an IPv4 address are judged by it: mapped and compatible
            // (`::ffff:a.b.c.d`, `::a.b.c.d`) and well-known NAT64 (`64:ff9b::/96`).
            if v6.to_ipv4_mapped().is_some() || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(embedded);
            }
            if segments[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(embedded);
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                || (first == 0x2001 && segments[1] == 0) // Teredo
                || first == 0x2002 // 6to4
                || (first == 0x64 && segments[1] == 0xff9b) // NAT64, local-use included
                || (segments[..4] == [0, 0, 0, 0] && segments[4] == 0xffff)) // IPv4-translated
        }
    }
}

/// Resolves names with the system resolver and keeps only the addresses the policy permits; the
/// client connects to what this returns, so the checked address is the one connected to.
struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found.iter().filter(|a| policy.permits(a.ip())).copied().collect();
            if permitted.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = refusal(&host).into();
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// A client under `policy`: guarded resolution, no proxy (it would hide where a request goes),
/// no redirects, a 5 s connect timeout and `timeout` overall, and the extra trust roots.
pub fn client(policy: &Arc<OutboundPolicy>, timeout: Duration, user_agent: &str) -> anyhow::Result<reqwest::Client> {
    use anyhow::Context;
    let mut builder = reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .user_agent(user_agent);
    if let Some(file) = &policy.ca_file {
        let pem = std::fs::read(file).with_context(|| format!("MANDATE_CA_FILE: could not read {}", file.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("MANDATE_CA_FILE: {} holds no PEM certificate", file.display()))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder.build()?)
}

/// Answers above this size are refused (discovery documents, JWKS and metadata are small).
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// The HTTP client for calls out of Mandate (identity providers: OIDC discovery, JWKS, token
/// exchange, SAML metadata).
#[derive(Clone)]
pub struct OutboundHttp {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundHttpError {
    #[error("{0}")]
    Request(String),
    #[error("the answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
}

impl OutboundHttp {
    pub fn new(policy: &Arc<OutboundPolicy>) -> anyhow::Result<OutboundHttp> {
        Ok(OutboundHttp { client: client(policy, Duration::from_secs(10), "Mandate")?, policy: policy.clone() })
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundHttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| OutboundHttpError::Request(e.to_string()))?;
        self.policy.check_url(request.url()).map_err(OutboundHttpError::Request)?;
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
        let mut cause: &dyn std::error::Error = err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        format!("could not connect to {url}: {cause}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "::ffff:0:a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private} must not be public");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"] {
            assert!(is_public(public.parse().unwrap()), "{public} is public");
        }
    }

    #[test]
    fn the_allowlist_opens_ranges_and_literal_urls_are_checked() {
        let policy =
            OutboundPolicy { allow: OutboundPolicy::parse_allow("127.0.0.0/8, 10.9.9.9").unwrap(), ca_file: None };
        assert!(policy.permits("127.0.0.5".parse().unwrap()) && policy.permits("10.9.9.9".parse().unwrap()));
        assert!(!policy.permits("10.9.9.10".parse().unwrap()));
        assert!(OutboundPolicy::parse_allow("everything").is_err());
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(policy.check_url(&url("http://127.0.0.1:9/x")).is_ok());
        let refused = OutboundPolicy::default().check_url(&url("http://[::1]:9/x")).unwrap_err();
        assert!(refused.contains("MANDATE_OUTBOUND_ALLOW"), "{refused}");
        assert!(
            OutboundPolicy::default().check_url(&url("https://idp.example/x")).is_ok(),
            "names are checked after DNS"
        );
    }
}
