//! Settings → Admins: list, invite, change roles, withdraw invitations.

use crate::error::AppError;
use crate::model::admins::{AdminsOverview, CreatedInvitation};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::model::Role,
    crate::server::domain::{self, Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "admins/list")]
pub async fn list_admins() -> Result<AdminsOverview, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::admins::overview(&call.state.pool, &admin, now()).await.map_err(|e| call.fail(e))
}

/// Owner only. Returns the link once; it is not stored.
#[server(prefix = "/rpc", endpoint = "admins/invite")]
pub async fn invite_admin(email: String, role: String) -> Result<CreatedInvitation, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let role: Role = role.parse().map_err(|e: String| call.request_error(AppError::invalid(e)))?;
    let invitation = domain::org::admins::invite(
        &call.state.pool,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        &email,
        role,
    )
    .await
    .map_err(|e| call.fail(e))?;
    Ok(CreatedInvitation {
        email: email.trim().to_lowercase(),
        role,
        link: call.state.config.url(&domain::org::admins::setup_path(&invitation.token)),
        expires_at: invitation.expires_at,
    })
}

#[server(prefix = "/rpc", endpoint = "admins/role")]
pub async fn change_admin_role(admin_id: Uuid, role: String) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let role: Role = role.parse().map_err(|e: String| call.request_error(AppError::invalid(e)))?;
    domain::org::admins::change_role(
        &call.state.pool,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        admin_id,
        role,
    )
    .await
    .map_err(|e| call.fail(e))
}

/// Removes an admin from the portal (owners only; never the last active owner).
#[server(prefix = "/rpc", endpoint = "admins/remove")]
pub async fn remove_admin(admin_id: Uuid) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::admins::remove(&call.state.pool, Call::new(Caller::Admin(&admin), &call.meta, now()), admin_id)
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "admins/revoke-invitation")]
pub async fn revoke_invitation(invitation_id: Uuid) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::org::admins::revoke_invitation(
        &call.state.pool,
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        invitation_id,
    )
    .await
    .map_err(|e| call.fail(e))
}
