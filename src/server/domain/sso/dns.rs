//! DNS TXT lookups for domain verification, through the system resolver or, when
//! `MANDATE_DNS_RESOLVER` names one (`ip:port`), through that server only (tests run their own).
//! Nothing is cached: an admin who just published a record is checked against the live answer.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::Duration;

/// Answers above this many TXT strings are cut off (bounded work per lookup).
const MAX_TXT_STRINGS: usize = 100;

/// Built per lookup: verifications are rare, and a resolver that is never used costs nothing
/// (building one starts background work on the runtime).
pub struct TxtResolver {
    server: Option<SocketAddr>,
}

impl TxtResolver {
    /// The system resolver, or the one server at `server`.
    pub fn new(server: Option<SocketAddr>) -> TxtResolver {
        TxtResolver { server }
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = match self.server {
            Some(address) => {
                let connection = |mut config: ConnectionConfig| {
                    config.port = address.port();
                    config
                };
                let name_server = NameServerConfig::new(
                    address.ip(),
                    true,
                    vec![connection(ConnectionConfig::udp()), connection(ConnectionConfig::tcp())],
                );
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![name_server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("the system's DNS configuration is unusable: {e}"))?,
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        builder.build().map_err(|e| format!("could not set up DNS resolution: {e}"))
    }

    /// The TXT strings published at `name` (each record's strings joined, as RFC 7208 reads
    /// them). No record is an empty list; a failed lookup is an error worth showing.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver()?.txt_lookup(fqdn.as_str()).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => {
                        Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                    }
                    _ => None,
                })
                .take(MAX_TXT_STRINGS)
                .collect()),
            Err(err) if err.is_no_records_found() || err.is_nx_domain() => Ok(Vec::new()),
            Err(err) => Err(format!("the DNS lookup of {name} failed: {err}")),
        }
    }
}
