//! Sign-in, the signed-in admin, and redeeming setup / invitation links.

use crate::error::AppError;
use crate::model::session::{InvitationPreview, Me};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::auth::{guard::safe_next, session as auth_session},
    crate::server::domain,
    crate::server::domain::org::factors::AfterPassword,
    crate::server::domain::rate_limits::Door,
};

/// The signed-in admin, `None` when signed out.
#[server(prefix = "/rpc", endpoint = "me")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    let call = call().await?;
    Ok(call.signed_in().await?.as_ref().map(auth_session::me))
}

/// Password sign-in; on success the session id is rotated and the browser goes to `next`.
#[server(prefix = "/rpc", endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    let call = call().await?;
    call.knock(Door::SignIn)?;
    let outcome = domain::org::factors::sign_in_with_password(&call.state.pool, &email, &password, &call.meta, now())
        .await
        .map_err(|e| call.fail(e))?;
    let next = safe_next(next.as_deref());
    match outcome {
        AfterPassword::SignedIn(admin) => {
            auth_session::sign_in(&call.session, &admin, "password", now()).await.map_err(|e| call.fail(e))?;
            leptos_axum::redirect(next);
        }
        AfterPassword::SecondStep(admin) => {
            auth_session::begin_second_step(&call.session, &admin, now()).await.map_err(|e| call.fail(e))?;
            let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            leptos_axum::redirect(&format!("/login?step=code&next={next}"));
        }
        AfterPassword::MustEnrol(admin) => {
            auth_session::sign_in_to_enrol(&call.session, &admin, "password", now()).await.map_err(|e| call.fail(e))?;
            leptos_axum::redirect("/settings?tab=security");
        }
    }
    Ok(())
}

/// The second step of a password sign-in: a code from the authenticator app, or a recovery
/// code. On success the session id is rotated and the browser goes to `next`.
#[server(prefix = "/rpc", endpoint = "login/code")]
pub async fn login_code(code: String, next: Option<String>) -> Result<(), AppError> {
    let call = call().await?;
    call.knock(Door::SignIn)?;
    let Some(pending) = auth_session::pending_second_step(&call.session, now()).await else {
        return Err(call.request_error(AppError::new(
            crate::error::ErrorKind::Unauthenticated,
            "This sign-in has expired. Enter your email and password again.",
        )));
    };
    let pending = domain::org::factors::PendingSecondStep {
        org_id: pending.org_id,
        admin_id: pending.admin_id,
        password_checked_at: auth_session::from_unix_millis(pending.started_at_ms).map_err(|e| call.fail(e))?,
    };
    let admin =
        domain::org::factors::second_step(&call.state.pool, &call.state.master, pending, &code, &call.meta, now())
            .await
            .map_err(|e| call.fail(e))?;
    auth_session::sign_in(&call.session, &admin, "password", now()).await.map_err(|e| call.fail(e))?;
    leptos_axum::redirect(safe_next(next.as_deref()));
    Ok(())
}

/// What a setup / invitation link is for (refused when used, expired or withdrawn).
#[server(prefix = "/rpc", endpoint = "setup/preview")]
pub async fn preview_setup(token: String) -> Result<InvitationPreview, AppError> {
    let call = call().await?;
    call.knock(Door::SignIn)?;
    domain::org::admins::preview_invitation(&call.state.pool, &token, now()).await.map_err(|e| call.fail(e))
}

/// Redeems a setup / invitation link: sets the name and password, then sends the new admin to
/// sign in.
#[server(prefix = "/rpc", endpoint = "setup/complete")]
pub async fn complete_setup(
    token: String,
    display_name: String,
    password: String,
    password_confirm: String,
) -> Result<(), AppError> {
    let call = call().await?;
    call.knock(Door::SignIn)?;
    if password != password_confirm {
        return Err(call.request_error(AppError::invalid("The two passwords do not match")));
    }
    let email =
        domain::org::admins::accept_invitation(&call.state.pool, &token, &display_name, &password, &call.meta, now())
            .await
            .map_err(|e| call.fail(e))?;
    let email: String = email.chars().filter(|c| c.is_ascii_alphanumeric() || "@.-_+".contains(*c)).collect();
    leptos_axum::redirect(&format!("/login?setup=done&method=password&email={email}"));
    Ok(())
}
