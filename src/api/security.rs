//! Settings → Security: the signed-in admin's second factors (authenticator app, recovery
//! codes) and the organization's second-factor policy. Every call here also works while the
//! session may only set up a required factor.

use crate::error::AppError;
use crate::model::factors::{AuthenticatorSetup, RecoveryCodes, SecurityOverview};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::model::factors::SecondFactorPolicy,
    crate::server::auth::session as auth_session,
    crate::server::domain::org::factors,
};

#[server(prefix = "/rpc", endpoint = "security")]
pub async fn get_security() -> Result<SecurityOverview, AppError> {
    let call = call().await?;
    let admin = call.admin_enrolling().await?;
    factors::overview(&call.state.pool, &admin).await.map_err(|e| call.fail(e))
}

/// Starts setting up an authenticator app (the secret is shown once).
#[server(prefix = "/rpc", endpoint = "security/authenticator/start")]
pub async fn start_authenticator() -> Result<AuthenticatorSetup, AppError> {
    let call = call().await?;
    let admin = call.admin_enrolling().await?;
    factors::totp::begin(&call.state.pool, &call.state.master, &admin, now()).await.map_err(|e| call.fail(e))
}

/// Confirms the app with a code; returns recovery codes when the admin had none.
#[server(prefix = "/rpc", endpoint = "security/authenticator/confirm")]
pub async fn confirm_authenticator(factor_id: Uuid, code: String) -> Result<Option<RecoveryCodes>, AppError> {
    let call = call().await?;
    let admin = call.admin_enrolling().await?;
    let codes =
        factors::totp::confirm(&call.state.pool, &call.state.master, &admin, factor_id, &code, &call.meta, now())
            .await
            .map_err(|e| call.fail(e))?;
    auth_session::enrolled(&call.session).await.map_err(|e| call.fail(e))?;
    Ok(codes)
}

#[server(prefix = "/rpc", endpoint = "security/authenticator/remove")]
pub async fn remove_authenticator() -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    factors::totp::remove(&call.state.pool, &admin, &call.meta, now()).await.map_err(|e| call.fail(e))
}

/// Ten new recovery codes, replacing the old ones (shown once).
#[server(prefix = "/rpc", endpoint = "security/recovery-codes")]
pub async fn regenerate_recovery_codes() -> Result<RecoveryCodes, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    factors::recovery::regenerate(&call.state.pool, &admin, &call.meta, now()).await.map_err(|e| call.fail(e))
}

/// Owners only: who must use a second factor after a password (`none`, `owners`, `all`).
#[server(prefix = "/rpc", endpoint = "settings/second-factor-policy")]
pub async fn set_second_factor_policy(policy: String) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let Some(policy) = SecondFactorPolicy::parse(&policy) else {
        return Err(call.request_error(AppError::invalid("Choose none, owners or all")));
    };
    factors::set_policy(&call.state.pool, &admin, policy, &call.meta, now()).await.map_err(|e| call.fail(e))
}
