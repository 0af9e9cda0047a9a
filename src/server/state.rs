//! The one application state every handler and server function reaches.

use super::config::Config;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub leptos_options: LeptosOptions,
}

impl AppState {
    /// Builds the state from an already-migrated pool. The Leptos options come from
    /// `Cargo.toml` and the `LEPTOS_*` environment, as cargo-leptos sets them.
    pub async fn new(pool: PgPool, config: Config) -> anyhow::Result<AppState> {
        let leptos_options = leptos::config::get_configuration(None)?.leptos_options;
        Ok(AppState { pool, config: Arc::new(config), leptos_options })
    }
}
