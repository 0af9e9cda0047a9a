//! Connections (SSO), the organization's email domains and its sign-in settings.

use crate::error::AppError;
use crate::model::connections::{
    ConnectionDetail, ConnectionRow, DomainRow, OidcConnectionInput, SamlConnectionInput, SignInSettings,
};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::model::connections::PasswordSignIn,
    crate::server::auth::session as auth_session,
    crate::server::domain::{self, Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "connections/list")]
pub async fn list_connections() -> Result<Vec<ConnectionRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::sso::connections::list(&call.state.pool, Caller::Admin(&admin)).await.map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "connections/detail")]
pub async fn get_connection(connection_id: Uuid) -> Result<ConnectionDetail, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let state = &call.state;
    domain::sso::connections::detail(
        &state.pool,
        &state.master,
        Caller::Admin(&admin),
        connection_id,
        &state.config.public_url,
    )
    .await
    .map_err(|e| call.fail(e))
}

/// Creates an OIDC connection and opens its page (redirect URI, Test connection).
#[server(prefix = "/rpc", endpoint = "connections/create-oidc")]
pub async fn create_oidc_connection(input: OidcConnectionInput) -> Result<Uuid, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let state = &call.state;
    let id = domain::sso::oidc::create(
        &state.pool,
        &state.master,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        &input,
    )
    .await
    .map_err(|e| call.fail(e))?;
    leptos_axum::redirect(&format!("/connections/{id}?created=1"));
    Ok(id)
}

/// Saves an OIDC connection's settings; an empty client secret keeps the stored one.
#[server(prefix = "/rpc", endpoint = "connections/update-oidc")]
pub async fn update_oidc_connection(connection_id: Uuid, input: OidcConnectionInput) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let state = &call.state;
    domain::sso::oidc::update(
        &state.pool,
        &state.master,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        connection_id,
        &input,
    )
    .await
    .map_err(|e| call.fail(e))
}

/// Creates a SAML connection from IdP metadata (URL or XML) or hand-entered settings.
#[server(prefix = "/rpc", endpoint = "connections/create-saml")]
pub async fn create_saml_connection(input: SamlConnectionInput) -> Result<Uuid, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let state = &call.state;
    // Before any outbound request: only those who may change connections make Mandate fetch metadata.
    admin.require(crate::model::Permission::ChangeSsoTrust).map_err(|e| call.fail(e))?;
    let idp = crate::server::auth::saml::idp_settings(&state.idp_http, &input).await.map_err(|e| call.fail(e))?;
    let id = domain::sso::saml::create(
        &state.pool,
        &state.master,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        &input,
        &idp,
    )
    .await
    .map_err(|e| call.fail(e))?;
    leptos_axum::redirect(&format!("/connections/{id}?created=1"));
    Ok(id)
}

/// Saves a SAML connection's settings, certificates included (rotation: save with both
/// certificates, then with the new one only).
#[server(prefix = "/rpc", endpoint = "connections/update-saml")]
pub async fn update_saml_connection(connection_id: Uuid, input: SamlConnectionInput) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let state = &call.state;
    // Before any outbound request: only those who may change connections make Mandate fetch metadata.
    admin.require(crate::model::Permission::ChangeSsoTrust).map_err(|e| call.fail(e))?;
    let idp = crate::server::auth::saml::idp_settings(&state.idp_http, &input).await.map_err(|e| call.fail(e))?;
    domain::sso::saml::update(
        &state.pool,
        &state.master,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        connection_id,
        &input,
        &idp,
    )
    .await
    .map_err(|e| call.fail(e))
}

/// Turns a connection on (after a passing test, or skipping it when `skip_test` is set) or off.
#[server(prefix = "/rpc", endpoint = "connections/set-enabled")]
pub async fn set_connection_enabled(
    connection_id: Uuid,
    enabled: bool,
    #[server(default)] skip_test: bool,
) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let domain_call = Call::new(Caller::Admin(&admin), &call.meta, now());
    let pool = &call.state.pool;
    let result = if enabled {
        domain::sso::connections::enable(pool, domain_call, connection_id, skip_test).await
    } else {
        domain::sso::connections::disable(pool, domain_call, connection_id).await
    };
    result.map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "connections/delete")]
pub async fn delete_connection(connection_id: Uuid) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::sso::connections::delete(
        &call.state.pool,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        connection_id,
    )
    .await
    .map_err(|e| call.fail(e))?;
    leptos_axum::redirect("/connections?deleted=1");
    Ok(())
}

#[server(prefix = "/rpc", endpoint = "domains/list")]
pub async fn list_domains() -> Result<Vec<DomainRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::sso::domains::list(&call.state.pool, Caller::Admin(&admin)).await.map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "domains/add")]
pub async fn add_domain(domain: String) -> Result<String, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::sso::domains::add(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), &domain)
        .await
        .map_err(|e| call.fail(e))
}

/// Checks the domain's TXT record now; `true` when verified.
#[server(prefix = "/rpc", endpoint = "domains/verify")]
pub async fn verify_domain(domain: String) -> Result<bool, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::sso::domains::verify(
        &call.state.pool,
        &call.state.dns,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        &domain,
    )
    .await
    .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "domains/remove")]
pub async fn remove_domain(domain: String) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::sso::domains::remove(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), &domain)
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "settings/sign-in")]
pub async fn get_sign_in_settings() -> Result<SignInSettings, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::login::sign_in_settings(&call.state.pool, &admin).await.map_err(|e| call.fail(e))
}

/// Owners only: who may still sign in with a password (`all`, `owners`, `off`).
#[server(prefix = "/rpc", endpoint = "settings/password-sign-in")]
pub async fn set_password_sign_in(policy: String) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let Some(policy) = PasswordSignIn::parse(&policy) else {
        return Err(call.request_error(AppError::invalid("Choose all, owners or off")));
    };
    let via_sso = auth_session::sign_in_method(&call.session).await.is_some_and(|m| m != "password");
    domain::org::login::set_password_sign_in(&call.state.pool, &admin, policy, via_sso, &call.meta, now())
        .await
        .map_err(|e| call.fail(e))
}
