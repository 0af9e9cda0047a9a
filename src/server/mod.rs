//! Everything that runs only on the server: configuration, state, the HTTP router and its
//! middleware, the protocol entry points and the domain layer they all call.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api_v1;
pub mod auth;
pub mod cli;
pub mod config;
pub mod database;
pub mod demo;
pub mod domain;
pub mod downloads;
pub mod errors;
pub mod middleware;
pub mod oauth;
pub mod rate_limit;
pub mod router;
pub mod scim;
pub mod state;

use anyhow::Context;
use config::Config;
pub use database::{connect_and_migrate, migrate};
use state::AppState;
use std::net::SocketAddr;

/// `mandate serve`: migrate, then serve the portal and every protocol endpoint.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let pool = connect_and_migrate(&config).await?;
    let state = AppState::new(pool, config).await?;
    let addr = state.leptos_options.site_addr;
    spawn_housekeeping(state.pool.clone());
    let limits = state.rate_limits.clone();
    let pool = state.pool.clone();
    tokio::spawn(async move {
        // Every minute: counters of clients that have gone quiet are dropped, so memory follows
        // the active ones, and windows of repeated sign-in failures that ended are summarised.
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.forget_idle();
            if let Err(err) = domain::audit::failures::flush_expired(&pool, time::OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %err, "summarising repeated sign-in failures failed");
            }
        }
    });
    // Log streams: every node runs a delivery loop; `for update skip locked` shares the streams out.
    let stream_http = domain::audit::streams::StreamHttp::new(&state.config.outbound, &state.config.public_url)?;
    domain::audit::streams::delivery::spawn_delivery(
        state.pool.clone(),
        state.master.clone(),
        stream_http,
        std::time::Duration::from_secs(1),
    );
    domain::audit::checkpoints::spawn(
        state.pool.clone(),
        state.audit_keys.clone(),
        domain::audit::checkpoints::INTERVAL,
    );
    let app = router::app(state.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("could not listen on {addr}"))?;
    tracing::info!(%addr, public_url = %state.config.public_url, "Mandate is serving");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    Ok(())
}

/// Hourly: expired sessions, stale sign-in throttles and old token records go, and audit
/// events past their organization's retention period (up to a signed checkpoint).
fn spawn_housekeeping(pool: sqlx::PgPool) {
    let sessions = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    tokio::spawn(async move {
        use tower_sessions::ExpiredDeletion;
        if let Err(err) = sessions.continuously_delete_expired(std::time::Duration::from_secs(3600)).await {
            tracing::error!(error = %err, "expired-session cleanup stopped");
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let now = time::OffsetDateTime::now_utc();
            match domain::maintenance::prune(&pool, now).await {
                Ok(pruned) => tracing::info!(?pruned, "housekeeping done"),
                Err(err) => tracing::warn!(error = %err, "housekeeping failed"),
            }
            if let Err(err) = domain::audit::retention::run_once(&pool, now).await {
                tracing::warn!(error = %err, "audit retention failed");
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Logs to stderr; `RUST_LOG` selects the level (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
