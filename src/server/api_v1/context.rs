//! `GET /api/v1/agent/context`: an agent runtime presents its access token and learns who it
//! acts for and what it may do — structured, and as a paragraph ready for a model's system
//! prompt or tool context. Inactive tokens get 401.

use crate::server::errors::Problem;
use crate::server::middleware::request_meta::Meta;
use crate::server::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(context))
}

/// Who an agent acts for and what it may do, with a paragraph for a model's prompt.
#[utoipa::path(get, path = "/agent/context", tag = "agents", security(("accessToken" = [])),
    responses((status = 200, description = "`{person, organization, agent, delegation, scopes, mandate_id, token, prompt}`", body = Object)))]
async fn context(State(state): State<AppState>, Meta(meta): Meta, headers: HeaderMap) -> Response {
    let unauthorized =
        |detail: &str| Problem::new(StatusCode::UNAUTHORIZED, detail, meta.request_id.as_deref()).into_response();
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
    else {
        return unauthorized("Send the agent's access token as `Authorization: Bearer <token>`.");
    };
    let now = OffsetDateTime::now_utc();
    let active = match state.tokens.introspect_bearer(token.trim(), now).await {
        Ok(active) => active,
        Err(err) => return Problem::from_domain(err, meta.request_id.as_deref()).into_response(),
    };
    let Some(active) = active else {
        return unauthorized("The access token is not active (expired, revoked, or its mandate changed).");
    };
    let root = &active.root;
    let holder = active.holder();
    let scopes: Vec<_> = active
        .scopes
        .iter()
        .filter_map(|name| root.grant(name, now))
        .map(|g| json!({ "name": g.scope, "description": g.description, "risk": g.risk }))
        .collect();
    let expires = active.expires_at.format(&Rfc3339).unwrap_or_default();
    let may = active
        .scopes
        .iter()
        .filter_map(|name| root.grant(name, now))
        .map(|g| if g.description.is_empty() { g.scope.clone() } else { format!("{} ({})", g.scope, g.description) })
        .collect::<Vec<_>>()
        .join("; ");
    let via =
        if active.delegates.is_empty() { String::new() } else { format!(", delegated to you by agent {}", root.name) };
    let prompt = format!(
        "You are the AI agent \"{}\" acting on behalf of {} <{}> of {}{}. You may only: {}. \
         Do not act outside these permissions. This authority expires at {} and can be revoked at any time.",
        holder.name, root.owner_name, root.owner_email, root.org_name, via, may, expires
    );
    Json(json!({
        "person": { "id": root.owner_id, "email": root.owner_email, "display_name": root.owner_name },
        "organization": { "id": root.org_id, "name": root.org_name },
        "agent": { "id": holder.agent_id, "name": holder.name, "client_id": holder.client_id },
        "delegation": active.delegates.iter().map(|d| json!({ "id": d.agent_id, "name": d.name }))
            .chain(std::iter::once(json!({ "id": root.agent_id, "name": root.name }))).collect::<Vec<_>>(),
        "scopes": scopes,
        "mandate_id": active.claims.get("mandate_id"),
        "token": { "jti": active.jti, "expires_at": expires },
        "prompt": prompt,
    }))
    .into_response()
}
