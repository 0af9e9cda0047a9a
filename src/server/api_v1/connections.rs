//! `/api/v1/connections`: list and create SSO connections (the client secret is write-only).

use super::ApiCaller;
use crate::model::connections::OidcConnectionInput;
use crate::server::domain::connections::{self, OIDC_CALLBACK_PATH};
use crate::server::errors::Problem;
use crate::server::middleware::request_meta::Meta;
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

pub fn router() -> Router<AppState> {
    Router::new().route("/connections", get(list).post(create))
}

async fn list(State(state): State<AppState>, api: ApiCaller) -> Response {
    match connections::list(&state.pool, api.caller()).await {
        Ok(rows) => Json(json!({ "connections": rows })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    issuer: String,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    claim_email: String,
    #[serde(default)]
    claim_name: String,
    #[serde(default)]
    claim_groups: String,
    /// `group = role` lines.
    #[serde(default)]
    role_mappings: String,
}

async fn create(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Response {
    let result = async {
        let body = api.body(body)?;
        if body.kind != "oidc" {
            return Err(api.problem(crate::server::domain::DomainError::invalid(
                "type must be \"oidc\" (SAML connections arrive in a later release)",
            )));
        }
        let input = OidcConnectionInput {
            name: if body.name.trim().is_empty() { "OpenID Connect".into() } else { body.name },
            issuer: body.issuer,
            client_id: body.client_id,
            client_secret: body.client_secret,
            scopes: body.scopes,
            claim_email: body.claim_email,
            claim_name: body.claim_name,
            claim_groups: body.claim_groups,
            role_mappings: body.role_mappings,
        };
        let now = OffsetDateTime::now_utc();
        let id = connections::create_oidc(&state.pool, &state.master, api.caller(), &input, &meta, now)
            .await
            .map_err(|e| api.problem(e))?;
        Ok::<_, Problem>(
            (
                StatusCode::CREATED,
                Json(json!({ "connection_id": id, "type": "oidc", "redirect_uri": state.config.url(OIDC_CALLBACK_PATH) })),
            )
                .into_response(),
        )
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
