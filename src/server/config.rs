//! Configuration from the environment, validated once at start-up.

use super::domain::outbound::OutboundPolicy;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mandate";

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub database_max_connections: u32,
    /// Public base URL without a trailing slash, e.g. `https://mandate.example.com`.
    pub public_url: String,
    /// Cookies get `Secure` (and the `__Host-` prefix) and responses get HSTS.
    pub https: bool,
    /// How many proxies you control stand in front of Mandate (`MANDATE_TRUST_PROXY`): the
    /// client address is that many entries from the right of `X-Forwarded-For` (entries to the
    /// left of it are whatever the client sent, so never trusted). 0: the peer address.
    pub trusted_proxies: usize,
    /// 32-byte key that encrypts secrets at rest (IdP client secrets, signing keys).
    pub master_key: Option<[u8; 32]>,
    /// The DNS server domain verification asks (`MANDATE_DNS_RESOLVER=ip:port`); the system's
    /// resolver when unset.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// Where outbound requests (IdPs, log streams) may go: `MANDATE_OUTBOUND_ALLOW`,
    /// `MANDATE_CA_FILE`.
    pub outbound: Arc<OutboundPolicy>,
    /// `MANDATE_RATE_LIMITS`: every door's allowance as a percentage of the default (0: off).
    pub rate_limit_percent: u32,
    /// `MANDATE_OWNER_DATABASE_URL`: the role that owns the schema. Migrations and grants run
    /// with it; the server then serves with `database_url`, a role that cannot alter the audit
    /// trail. Unset: `database_url` does both (and the audit trail is not protected from it).
    pub owner_database_url: Option<String>,
    /// `MANDATE_STATE_DIR` (default `.mandate`): what this node keeps outside the database, the
    /// audit checkpointer's high-water marks. None: in memory only (tests).
    pub state_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_url_for_logs())
            .field("public_url", &self.public_url)
            .field("https", &self.https)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("master_key", &self.master_key.map(|_| "<set>"))
            .field("dns_resolver", &self.dns_resolver)
            .field("outbound", &self.outbound)
            .field("rate_limit_percent", &self.rate_limit_percent)
            .field("owner_database_url", &self.owner_database_url.as_deref().map(url_for_logs))
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

impl Config {
    /// Reads `DATABASE_URL`, `MANDATE_PUBLIC_URL`, `LEPTOS_SITE_ADDR`, `MANDATE_MASTER_KEY`,
    /// `MANDATE_TRUST_PROXY`, `MANDATE_DNS_RESOLVER`, `MANDATE_OUTBOUND_ALLOW`, `MANDATE_CA_FILE`,
    /// `MANDATE_RATE_LIMITS`, `MANDATE_OWNER_DATABASE_URL`, `MANDATE_STATE_DIR`.
    pub fn from_env() -> anyhow::Result<Config> {
        let database_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
        let site_addr = std::env::var("LEPTOS_SITE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_string());
        let public_url = std::env::var("MANDATE_PUBLIC_URL").unwrap_or_else(|_| format!("http://{site_addr}"));
        let master_key = match std::env::var("MANDATE_MASTER_KEY") {
            Ok(value) if !value.trim().is_empty() => Some(parse_master_key(&value)?),
            _ => None,
        };
        let mut config = Config::new(database_url, &public_url, master_key, false)?;
        config.trusted_proxies = parse_trusted_proxies(&std::env::var("MANDATE_TRUST_PROXY").unwrap_or_default())?;
        config.rate_limit_percent = parse_rate_limits(&std::env::var("MANDATE_RATE_LIMITS").unwrap_or_default())?;
        if let Ok(resolver) = std::env::var("MANDATE_DNS_RESOLVER") {
            if !resolver.trim().is_empty() {
                config.dns_resolver = Some(resolver.trim().parse().with_context(|| {
                    format!(
                        "MANDATE_DNS_RESOLVER must be an address with a port, e.g. 127.0.0.1:5353 (got {resolver:?})"
                    )
                })?);
            }
        }
        config.owner_database_url = std::env::var("MANDATE_OWNER_DATABASE_URL").ok().filter(|u| !u.trim().is_empty());
        config.state_dir = Some(
            std::env::var("MANDATE_STATE_DIR")
                .ok()
                .filter(|d| !d.trim().is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), PathBuf::from),
        );
        let allow = std::env::var("MANDATE_OUTBOUND_ALLOW").unwrap_or_default();
        let ca_file = std::env::var("MANDATE_CA_FILE").ok().filter(|f| !f.trim().is_empty()).map(PathBuf::from);
        config.outbound = Arc::new(OutboundPolicy {
            allow: OutboundPolicy::parse_allow(&allow).map_err(anyhow::Error::msg)?,
            ca_file,
        });
        if master_key.is_none() && !config.is_local_development() {
            bail!("MANDATE_MASTER_KEY is required when MANDATE_PUBLIC_URL is not a loopback address (generate one with `openssl rand -hex 32`)");
        }
        Ok(config)
    }

    /// What serving needs: a master key. On a loopback public URL without one, the development
    /// key in `.mandate/master.key` (generated the first time, with a warning), as `scripts/run`
    /// does; `from_env` has already refused any other URL without a key.
    pub fn for_serving(mut self) -> anyhow::Result<Config> {
        if self.master_key.is_none() {
            self.master_key = Some(development_master_key(Path::new(DEVELOPMENT_KEY_FILE))?);
        }
        Ok(self)
    }

    pub fn new(
        database_url: String,
        public_url: &str,
        master_key: Option<[u8; 32]>,
        trust_proxy_headers: bool,
    ) -> anyhow::Result<Config> {
        let trusted_proxies = usize::from(trust_proxy_headers);
        let public_url = public_url.trim().trim_end_matches('/').to_string();
        let https = if public_url.starts_with("https://") {
            true
        } else if public_url.starts_with("http://") {
            false
        } else {
            bail!("MANDATE_PUBLIC_URL must start with http:// or https:// (got {public_url:?})");
        };
        Ok(Config {
            database_url,
            database_max_connections: 20,
            public_url,
            https,
            trusted_proxies,
            master_key,
            dns_resolver: None,
            outbound: Arc::default(),
            rate_limit_percent: 100,
            owner_database_url: None,
            state_dir: None,
        })
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> &str {
        let after_scheme = self.public_url.find("://").map(|i| i + 3).unwrap_or(0);
        match self.public_url[after_scheme..].find('/') {
            Some(slash) => &self.public_url[..after_scheme + slash],
            None => &self.public_url,
        }
    }

    pub fn is_local_development(&self) -> bool {
        let host = &self.public_origin()[self.public_origin().find("://").map(|i| i + 3).unwrap_or(0)..];
        host.starts_with("127.0.0.1") || host.starts_with("localhost") || host.starts_with("[::1]")
    }

    /// The database URL with any password removed, for messages.
    pub fn database_url_for_logs(&self) -> String {
        url_for_logs(&self.database_url)
    }

    /// Where the audit checkpointer keeps its high-water marks (none: in memory only).
    pub fn audit_high_water_file(&self) -> Option<PathBuf> {
        self.state_dir.as_ref().map(|dir| dir.join(super::domain::audit::high_water::FILE_NAME))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public_url, path)
    }
}

/// A database URL with any password removed, for messages.
pub fn url_for_logs(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// What a node keeps outside the database unless `MANDATE_STATE_DIR` says where.
pub const DEFAULT_STATE_DIR: &str = ".mandate";

/// Where a loopback-only (development) node keeps the master key it generated, as
/// `scripts/run` does.
pub const DEVELOPMENT_KEY_FILE: &str = ".mandate/master.key";

/// The development master key in `file`, generated (readable by this user only) the first
/// time. Only for a loopback public URL: anyone who can read the file can decrypt the secrets.
fn development_master_key(file: &Path) -> anyhow::Result<[u8; 32]> {
    if let Ok(existing) = std::fs::read_to_string(file) {
        return parse_master_key(&existing).with_context(|| format!("{} is not a valid master key", file.display()));
    }
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file).with_context(|| format!("could not create {}", file.display()))?;
    std::io::Write::write_all(&mut out, hex::encode(key).as_bytes())?;
    eprintln!(
        "WARNING: MANDATE_MASTER_KEY is not set; generated a development key into {} (loopback URL only). \
         Set MANDATE_MASTER_KEY before serving anywhere else.",
        file.display()
    );
    Ok(key)
}

/// `MANDATE_TRUST_PROXY`: the number of proxies in front of Mandate (`true`/`yes` mean one).
fn parse_trusted_proxies(value: &str) -> anyhow::Result<usize> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" => Ok(0),
        "true" | "yes" => Ok(1),
        number => number.parse::<usize>().ok().filter(|n| *n <= 10).ok_or_else(|| {
            anyhow::anyhow!(
                "MANDATE_TRUST_PROXY must be the number of proxies in front of Mandate, 0 to 10 (got {value:?})"
            )
        }),
    }
}

/// `MANDATE_RATE_LIMITS`: a percentage of the default allowances (1 to 10000), or `off`.
fn parse_rate_limits(value: &str) -> anyhow::Result<u32> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "on" => Ok(100),
        "off" | "0" => Ok(0),
        number => number.trim_end_matches('%').parse::<u32>().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
            anyhow::anyhow!("MANDATE_RATE_LIMITS must be a percentage of the default allowances (1 to 10000) or off (got {value:?})")
        }),
    }
}

fn parse_master_key(value: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(value.trim()).context("MANDATE_MASTER_KEY must be 64 hexadecimal characters")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("MANDATE_MASTER_KEY must be 32 bytes (64 hexadecimal characters)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Config {
        Config::new(DEFAULT_DATABASE_URL.into(), url, None, false).unwrap()
    }

    #[test]
    fn public_origin_drops_the_path() {
        assert_eq!(config("https://id.example.com/mandate/").public_origin(), "https://id.example.com");
        assert_eq!(config("http://127.0.0.1:3000").public_origin(), "http://127.0.0.1:3000");
        assert!(config("https://x.example").https);
        assert!(config("http://localhost:3000").is_local_development());
        assert!(!config("https://id.example.com").is_local_development());
    }

    #[test]
    fn database_password_is_hidden_in_logs() {
        let mut c = config("http://127.0.0.1:3000");
        c.database_url = "postgres://app:s3cret@db:5432/mandate".into();
        assert_eq!(c.database_url_for_logs(), "postgres://app@db:5432/mandate");
    }

    #[test]
    fn a_development_key_is_generated_once_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("mandate-key-{}", std::process::id()));
        let file = dir.join("master.key");
        let first = development_master_key(&file).unwrap();
        assert_eq!(development_master_key(&file).unwrap(), first, "the second start reads the same key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&file, "not hex").unwrap();
        assert!(development_master_key(&file).is_err(), "a damaged key file is an error, not silently replaced");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn trusted_proxies_are_counted() {
        assert_eq!(parse_trusted_proxies("").unwrap(), 0);
        assert_eq!(parse_trusted_proxies("yes").unwrap(), 1);
        assert_eq!(parse_trusted_proxies(" 2 ").unwrap(), 2);
        assert!(parse_trusted_proxies("all").is_err());
    }

    #[test]
    fn rate_limits_are_a_percentage_or_off() {
        assert_eq!(parse_rate_limits("").unwrap(), 100);
        assert_eq!(parse_rate_limits("off").unwrap(), 0);
        assert_eq!(parse_rate_limits("250%").unwrap(), 250);
        assert!(parse_rate_limits("lots").is_err());
    }

    #[test]
    fn master_key_must_be_32_hex_bytes() {
        assert!(parse_master_key(&"ab".repeat(32)).is_ok());
        assert!(parse_master_key("abcd").is_err());
        assert!(parse_master_key(&"zz".repeat(32)).is_err());
    }
}
