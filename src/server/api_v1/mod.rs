//! The platform API (`/api/v1`): JSON over HTTPS, authenticated by an organization's API key
//! (`Authorization: Bearer mnd_key_...`), errors as RFC 9457 problem documents. Every handler
//! acts only inside the key's organization.

mod agents;
mod audit;
mod connections;
mod context;
mod directories;
mod streams;

use super::domain::org::api_keys;
use super::domain::{ApiKeyPrincipal, Caller, DomainError};
use super::errors::Problem;
use super::middleware::request_meta::from_parts;
use super::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/api/v1`, nested by the caller.
pub fn router() -> Router<AppState> {
    routes().0.fallback(not_found)
}

/// The OpenAPI document with the `/api/v1` prefix in its paths, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = routes().1;
        document.paths.paths = std::mem::take(&mut document.paths.paths)
            .into_iter()
            .map(|(path, item)| (format!("/api/v1{path}"), item))
            .collect();
        document
    })
}

impl ApiCaller {
    pub fn caller(&self) -> Caller<'_> {
        Caller::ApiKey(&self.principal)
    }

    /// Fails unless the key holds the scope that grants `permission` (for handlers that read
    /// without going through a domain operation that checks it).
    pub fn require(&self, permission: crate::model::Permission) -> Result<(), Problem> {
        self.caller().require(permission).map_err(|err| self.problem(err))
    }

    /// A domain error as a problem document.
    pub fn problem(&self, err: DomainError) -> Problem {
        Problem::from_domain(err, self.request_id.as_deref())
    }

    /// Reads a JSON body, turning a bad body into a 400/415/422 problem that says what is wrong.
    pub fn body<T: DeserializeOwned>(&self, body: Result<axum::Json<T>, JsonRejection>) -> Result<T, Problem> {
        body.map(|axum::Json(value)| value).map_err(|rejection| {
            let status = rejection.status();
            Problem::new(status, format!("Bad JSON body: {}", rejection.body_text()), self.request_id.as_deref())
        })
    }

    /// A path id; anything that is not a UUID cannot name an object, so it is "not found".
    pub fn id(&self, raw: &str) -> Result<uuid::Uuid, Problem> {
        raw.parse().map_err(|_| self.problem(DomainError::NotFound))
    }
}

/// The caller, proven by a live API key.
pub struct ApiCaller {
    pub principal: ApiKeyPrincipal,
    pub request_id: Option<String>,
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let request_id = from_parts(parts, 0).request_id;
        let unauthorized =
            |detail: &str| Problem::new(StatusCode::UNAUTHORIZED, detail, request_id.as_deref()).into_response();
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = value.and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))) else {
            return Err(unauthorized("Send an organization API key as `Authorization: Bearer mnd_key_...`."));
        };
        match api_keys::authenticate(&state.pool, token.trim(), OffsetDateTime::now_utc()).await {
            Ok(Some(principal)) => Ok(ApiCaller { principal, request_id }),
            Ok(None) => Err(unauthorized("The API key is not valid or was revoked.")),
            Err(err) => Err(Problem::from_domain(err, request_id.as_deref()).into_response()),
        }
    }
}

async fn not_found(parts: Parts) -> Response {
    let request_id = from_parts(&parts, 0).request_id;
    Problem::new(StatusCode::NOT_FOUND, format!("No API endpoint at {}.", parts.uri.path()), request_id.as_deref())
        .into_response()
}

/// `GET /api/v1/organization`: the organization the key belongs to.
#[utoipa::path(get, path = "/organization", tag = "organization",
    responses((status = 200, description = "The key's organization: `{id, name}`", body = Object)))]
async fn organization(State(state): State<AppState>, caller: ApiCaller) -> Response {
    match super::domain::org::organizations::name(&state.pool, caller.principal.org_id()).await {
        Ok(Some(name)) => Json(serde_json::json!({ "id": caller.principal.org_id(), "name": name })).into_response(),
        Ok(None) => {
            Problem::from_domain(super::domain::DomainError::NotFound, caller.request_id.as_deref()).into_response()
        }
        Err(err) => Problem::from_domain(err, caller.request_id.as_deref()).into_response(),
    }
}

/// Reads a query string, turning a bad one into a 400 problem that says what is wrong.
pub fn query<T>(caller: &ApiCaller, query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query.map(|Query(value)| value).map_err(|rejection| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("Bad query string: {}", rejection.body_text()),
            caller.request_id.as_deref(),
        )
    })
}

/// `GET /api/v1/openapi.json`: the description of this API, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object)))]
async fn openapi() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(document())
}

/// The document's frame; the handlers' `#[utoipa::path]` attributes fill in the paths.
#[derive(OpenApi)]
#[openapi(
    info(title = "Mandate platform API", version = "1",
        description = "Manage an organization's agents, scope approvals, directories, SSO connections and audit trail. Authenticate with an organization API key."),
    components(schemas(Problem)),
    security(("apiKey" = [])),
)]
struct ApiDoc;

/// What every operation shares: the two bearer schemes, and refusals as RFC 9457 problems.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Organization API key (mnd_key_...)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "accessToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An agent's access token"))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let public = operation.security.as_ref().is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                let responses = &mut operation.responses.responses;
                if !public {
                    responses.entry("401".into()).or_insert_with(|| problem("No valid credentials").into());
                    responses.entry("403".into()).or_insert_with(|| problem("The caller may not do this").into());
                }
                responses.entry("400".into()).or_insert_with(|| problem("A malformed request").into());
                responses.entry("404".into()).or_insert_with(|| problem("No such object in this organization").into());
                responses
                    .entry("422".into())
                    .or_insert_with(|| problem("The request breaks a rule; the detail says which").into());
            }
        }
    }
}

/// The routes and the document describing them, from one list: a route cannot exist undocumented.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi))
        .routes(routes!(organization))
        .merge(agents::routes())
        .merge(audit::routes())
        .merge(context::routes())
        .merge(connections::routes())
        .merge(directories::routes())
        .merge(streams::routes())
        .split_for_parts();
    // After the paths are in: a `modifiers(...)` on the derive would run before them.
    Conventions.modify(&mut document);
    (router, document)
}

#[cfg(test)]
mod tests {
    /// The platform API's sources, to check that routes are added only through `routes!`.
    const SOURCES: [&str; 7] = [
        include_str!("mod.rs"),
        include_str!("agents.rs"),
        include_str!("audit.rs"),
        include_str!("connections.rs"),
        include_str!("context.rs"),
        include_str!("directories.rs"),
        include_str!("streams.rs"),
    ];

    #[test]
    fn routes_are_added_only_with_their_documentation() {
        // Split so that this list does not find itself.
        let undocumented = [concat!(".rou", "te("), concat!(".ne", "st("), concat!("axum::rou", "ting")];
        for source in SOURCES {
            for pattern in undocumented {
                assert!(!source.contains(pattern), "{pattern} adds a route the OpenAPI document would not describe");
            }
        }
    }

    #[test]
    fn the_document_lists_every_annotated_handler() {
        let annotated: usize = SOURCES.iter().map(|s| s.matches(concat!("#[utoipa", "::path(")).count()).sum();
        let document = super::routes().1;
        let operations: usize = document
            .paths
            .paths
            .values()
            .map(|item| {
                [&item.get, &item.post, &item.put, &item.delete, &item.patch].iter().filter(|o| o.is_some()).count()
            })
            .sum();
        assert_eq!(operations, annotated);
        assert_eq!(operations, 34, "a new operation? update this count and the README's API table");
    }
}
