//! People: list, deactivate / reactivate, and revoke every agent of a person.

use crate::error::AppError;
use crate::model::agents::{PersonRow, RevocationImpact};
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::domain::{self, Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "people/list")]
pub async fn list_people() -> Result<Vec<PersonRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::directory::people::list(&call.state.pool, Caller::Admin(&admin), now()).await.map_err(|e| call.fail(e))
}

/// Deactivates (`active=false`) or reactivates a person; returns the tokens that stopped.
#[server(prefix = "/rpc", endpoint = "people/set-active")]
pub async fn set_person_active(person_id: Uuid, active: bool) -> Result<i64, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::directory::leaver::set_active(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        person_id,
        active,
    )
    .await
    .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "people/impact")]
pub async fn preview_person_revocation(person_id: Uuid) -> Result<RevocationImpact, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::revocation::person_impact(&call.state.pool, Caller::Admin(&admin), person_id, now())
        .await
        .map_err(|e| call.fail(e))
}

#[server(prefix = "/rpc", endpoint = "people/revoke-agents")]
pub async fn revoke_person_agents(
    person_id: Uuid,
    #[server(default)] reason: String,
) -> Result<RevocationImpact, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::revocation::revoke_all_of_person(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        person_id,
        &reason,
    )
    .await
    .map_err(|e| call.fail(e))
}
