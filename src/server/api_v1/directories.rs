//! `/api/v1/directories`: list and create directories (the bearer token is in the answer once).

use super::ApiCaller;
use crate::server::domain::directory;
use crate::server::domain::Call;
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

/// Directories (SCIM), never their tokens.
#[utoipa::path(get, path = "/directories", tag = "directories",
    responses((status = 200, description = "`{directories: [...]}`", body = Object)))]
async fn list(State(state): State<AppState>, api: ApiCaller) -> Response {
    match directory::list(&state.pool, api.caller()).await {
        Ok(directories) => Json(json!({ "directories": directories })).into_response(),
        Err(err) => api.problem(err).into_response(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// `okta`, `entra`, `google`, `jumpcloud` or `generic` (default).
    #[serde(default = "generic")]
    provider: String,
}

fn generic() -> String {
    "generic".into()
}

/// Create a directory; its SCIM bearer token is in the answer once.
#[utoipa::path(post, path = "/directories", tag = "directories", request_body = CreateBody,
    responses((status = 201, description = "`{directory_id, scim_base_url, bearer_token}`", body = Object)))]
async fn create(
    State(state): State<AppState>,
    api: ApiCaller,
    Meta(meta): Meta,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Response {
    let result = async {
        let body = api.body(body)?;
        let created = directory::create(
            &state.pool,
            Call::new(api.caller(), &meta, OffsetDateTime::now_utc()),
            &body.name,
            &body.provider,
        )
        .await
        .map_err(|e| api.problem(e))?;
        Ok::<_, Problem>(
            (
                StatusCode::CREATED,
                Json(json!({
                    "directory_id": created.directory_id,
                    "scim_base_url": state.config.url(&directory::scim_base_path(created.directory_id)),
                    "bearer_token": created.bearer_token,
                })),
            )
                .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
