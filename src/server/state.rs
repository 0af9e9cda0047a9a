//! The one application state every handler and server function reaches.

use super::config::Config;
use super::domain::agents::mandate::Mandates;
use super::domain::agents::signing::SigningKeys;
use super::domain::agents::token_log::TokenLog;
use super::domain::agents::tokens::TokenService;
use super::domain::audit::actions::ActionLog;
use super::domain::audit::checkpoints::AuditKeys;
use super::domain::crypto::master_key::MasterKey;
use super::domain::outbound::OutboundHttp;
use super::domain::rate_limits::RateLimits;
use super::domain::sso::dns::TxtResolver;
use anyhow::Context;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub leptos_options: LeptosOptions,
    /// Minting and checking tokens; holds the mandate cache and the signing keys.
    pub tokens: Arc<TokenService>,
    /// Encrypts secrets at rest (IdP client secrets).
    pub master: MasterKey,
    /// Calls to identity providers (no redirects, timeouts, bounded answers).
    pub idp_http: OutboundHttp,
    /// DNS TXT lookups for domain verification.
    pub dns: Arc<TxtResolver>,
    /// The keys that sign (and check) audit checkpoints.
    pub audit_keys: Arc<AuditKeys>,
    /// Group-committed writer of reported agent actions.
    pub actions: ActionLog,
    /// How often each client may knock on each door.
    pub rate_limits: Arc<RateLimits>,
}

impl AppState {
    /// Builds the state from an already-migrated pool: loads the signing keys, starts the
    /// mandate cache's change listener, the token log and the agent action log. The Leptos options come from
    /// `Cargo.toml` and the `LEPTOS_*` environment, as cargo-leptos sets them.
    pub async fn new(pool: PgPool, config: Config) -> anyhow::Result<AppState> {
        // cargo-leptos bakes the site settings into the binary; plain `cargo test`/`cargo bench`
        // builds read them from Cargo.toml instead.
        let config_file = option_env!("LEPTOS_OUTPUT_NAME").is_none().then_some("Cargo.toml");
        let leptos_options = leptos::config::get_configuration(config_file)?.leptos_options;
        let master = config
            .master_key
            .map(MasterKey::new)
            .context("MANDATE_MASTER_KEY is required to serve (64 hex characters; `openssl rand -hex 32` makes one)")?;
        let keys =
            Arc::new(SigningKeys::load(&pool, master.clone()).await.context("could not load the token signing keys")?);
        let mandates = Arc::new(Mandates::default());
        mandates.start(pool.clone(), keys.clone()).await.context("could not start the mandate change listener")?;
        let tokens = Arc::new(TokenService {
            pool: pool.clone(),
            mandates,
            keys,
            log: TokenLog::start(pool.clone()),
            issuer: config.public_url.clone(),
        });
        let idp_http =
            OutboundHttp::new(&config.outbound).context("could not build the HTTP client for identity providers")?;
        let dns = Arc::new(TxtResolver::new(config.dns_resolver));
        let audit_keys = Arc::new(
            AuditKeys::load(&pool, &master, config.audit_high_water_file().as_deref())
                .await
                .context("could not load the audit checkpoint keys")?,
        );
        let actions = ActionLog::start(pool.clone());
        let rate_limits = Arc::new(RateLimits::new(config.rate_limit_percent));
        Ok(AppState {
            pool,
            config: Arc::new(config),
            leptos_options,
            tokens,
            master,
            idp_http,
            dns,
            audit_keys,
            actions,
            rate_limits,
        })
    }

    pub fn mandates(&self) -> &Mandates {
        &self.tokens.mandates
    }
}
