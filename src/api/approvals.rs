//! Approvals: pending scope requests and decisions on them.

use crate::error::AppError;
use crate::model::agents::ScopeRequestRow;
use leptos::prelude::*;
use uuid::Uuid;
#[cfg(feature = "ssr")]
use {
    super::context::{call, now},
    crate::server::domain::{self, agents::approvals::Decision, Call, Caller},
};

#[server(prefix = "/rpc", endpoint = "approvals/list")]
pub async fn list_scope_requests(status: String) -> Result<Vec<ScopeRequestRow>, AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::approvals::list(&call.state.pool, Caller::Admin(&admin), &status).await.map_err(|e| call.fail(e))
}

/// Approves a request, optionally until the end of a day (`YYYY-MM-DD`, UTC).
#[server(prefix = "/rpc", endpoint = "approvals/approve")]
pub async fn approve_scope_request(
    request_id: Uuid,
    #[server(default)] until: String,
    #[server(default)] note: String,
) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    let until = match until.trim() {
        "" => None,
        date => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let day = time::Date::parse(date, &format)
                .map_err(|_| call.request_error(AppError::invalid("Give the end date as YYYY-MM-DD")))?;
            Some(day.with_hms(23, 59, 59).map_err(|_| AppError::internal())?.assume_utc())
        }
    };
    decide(&call, &admin, request_id, Decision::Approve { until, note }).await
}

#[server(prefix = "/rpc", endpoint = "approvals/deny")]
pub async fn deny_scope_request(request_id: Uuid, reason: String) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    decide(&call, &admin, request_id, Decision::Deny { reason }).await
}

/// The signed-in admin decides a request.
#[cfg(feature = "ssr")]
async fn decide(
    call: &super::context::Call,
    admin: &crate::server::domain::AdminSession,
    request_id: Uuid,
    decision: Decision,
) -> Result<(), AppError> {
    let mandates = call.state.mandates();
    domain::agents::approvals::decide(
        &call.state.pool,
        mandates,
        Call::new(Caller::Admin(admin), &call.meta, now()),
        request_id,
        decision,
    )
    .await
    .map(|_| ())
    .map_err(|e| call.fail(e))
}

/// Withdraws an approval: the scope leaves every live token at once.
#[server(prefix = "/rpc", endpoint = "approvals/withdraw")]
pub async fn withdraw_approval(request_id: Uuid, #[server(default)] reason: String) -> Result<(), AppError> {
    let call = call().await?;
    let admin = call.admin().await?;
    domain::agents::approvals::withdraw(
        &call.state.pool,
        call.state.mandates(),
        Call::new(Caller::Admin(&admin), &call.meta, now()),
        request_id,
        &reason,
    )
    .await
    .map_err(|e| call.fail(e))
}
