//! `/api/v1/connections`: list and create SSO connections, OIDC (the client secret is
//! write-only) or SAML (from IdP metadata by URL or XML, or entered by hand).

use super::ApiCaller;
use crate::model::connections::{OidcConnectionInput, SamlConnectionInput};
use crate::server::domain::sso::connections;
use crate::server::domain::sso::oidc::{self, OIDC_CALLBACK_PATH};
use crate::server::domain::Call;
use crate::server::domain::{sso::saml, DomainError};
use crate::server::errors::Problem;
use crate::server::middleware::request_meta::Meta;
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create))
}

/// SSO connections (never their secrets).
#[utoipa::path(get, path = "/connections", tag = "sso",
    responses((status = 200, description = "`{connections: [...]}`", body = Object)))]
async fn list(State(state): State<AppState>, api: ApiCaller) -> Response {
    match connections::list(&state.pool, api.caller()).await {
        Ok(rows) => Json(json!({ "connections": rows })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

/// An OIDC connection (issuer, client id and secret, claims) or a SAML one (IdP metadata by URL
/// or XML, or entity id + SSO URL + PEM certificates).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// `oidc` or `saml`.
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    /// Stored encrypted, never returned.
    #[serde(default)]
    #[schema(write_only)]
    client_secret: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    metadata_url: String,
    #[serde(default)]
    metadata_xml: String,
    #[serde(default)]
    idp_entity_id: String,
    #[serde(default)]
    sso_url: String,
    #[serde(default)]
    certificates_pem: String,
    #[serde(default)]
    allow_idp_initiated: bool,
    #[serde(default)]
    sign_requests: bool,
    #[serde(default)]
    claim_email: String,
    #[serde(default)]
    claim_name: String,
    #[serde(default)]
    claim_groups: String,
    /// `group = role` lines.
    #[serde(default)]
    role_mappings: String,
    /// The IdP verifies every email it asserts (then an email links a first sign-in to a person
    /// already in the directory; never to an admin).
    #[serde(default)]
    trusts_idp_email: bool,
}

/// Create an SSO connection. It starts turned off: an owner turns it on after a passing Test
/// connection run in the portal.
#[utoipa::path(post, path = "/connections", tag = "sso", request_body = CreateBody,
    responses((status = 201, description = "`{connection_id, type, enabled: false, redirect_uri}` (OIDC) or `{connection_id, type, enabled: false, sp_entity_id, acs_url, metadata_url}` (SAML)", body = Object)))]
async fn create(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Response {
    let result = async {
        let body = api.body(body)?;
        let now = OffsetDateTime::now_utc();
        let created = match body.kind.as_str() {
            "oidc" => {
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
                    trusts_idp_email: body.trusts_idp_email,
                };
                let id = oidc::create(&state.pool, &state.master, Call::new(api.caller(), &meta, now), &input)
                    .await
                    .map_err(|e| api.problem(e))?;
                json!({
                    "connection_id": id,
                    "type": "oidc",
                    "enabled": false,
                    "redirect_uri": state.config.url(OIDC_CALLBACK_PATH),
                })
            }
            "saml" => {
                let input = SamlConnectionInput {
                    name: if body.name.trim().is_empty() { "SAML".into() } else { body.name },
                    metadata_url: body.metadata_url,
                    metadata_xml: body.metadata_xml,
                    idp_entity_id: body.idp_entity_id,
                    sso_url: body.sso_url,
                    certificates_pem: body.certificates_pem,
                    claim_email: body.claim_email,
                    claim_name: body.claim_name,
                    claim_groups: body.claim_groups,
                    role_mappings: body.role_mappings,
                    allow_idp_initiated: body.allow_idp_initiated,
                    sign_requests: body.sign_requests,
                    trusts_idp_email: body.trusts_idp_email,
                };
                // Before any outbound request: only a key that may create connections makes
                // Mandate fetch metadata.
                api.require(crate::model::Permission::ChangeSsoTrust)?;
                let idp = crate::server::auth::saml::idp_settings(&state.idp_http, &input)
                    .await
                    .map_err(|e| api.problem(e))?;
                let id = saml::create(&state.pool, &state.master, Call::new(api.caller(), &meta, now), &input, &idp)
                    .await
                    .map_err(|e| api.problem(e))?;
                let public_url = &state.config.public_url;
                json!({
                    "connection_id": id,
                    "type": "saml",
                    "enabled": false,
                    "sp_entity_id": saml::sp_entity_id(public_url, id),
                    "acs_url": saml::acs_url(public_url, id),
                    "metadata_url": saml::sp_entity_id(public_url, id),
                })
            }
            _ => return Err(api.problem(DomainError::invalid("type must be \"oidc\" or \"saml\""))),
        };
        Ok::<_, Problem>((StatusCode::CREATED, Json(created)).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
