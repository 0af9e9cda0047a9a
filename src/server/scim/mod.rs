//! SCIM 2.0 service provider (RFC 7643 / RFC 7644), one per directory, authenticated by the
//! directory's bearer token. A token reads and writes only its own directory: anything else
//! is "not found". Every write and every refused request is kept in the directory's events
//! feed; successful writes are audited (see `domain::directory`).
//!
//! | method | path under `/scim/v2/{directory_id}` | RFC 7644 |
//! |---|---|---|
//! | GET | `/ServiceProviderConfig` | §4 |
//! | GET | `/ResourceTypes`, `/ResourceTypes/{id}` | §4 |
//! | GET | `/Schemas`, `/Schemas/{id}` | §4 |
//! | GET, POST | `/Users`, `/Groups` | §3.4.2 query (filter, startIndex, count, attributes), §3.3 create |
//! | GET, PUT, PATCH, DELETE | `/Users/{id}`, `/Groups/{id}` | §3.4.1, §3.5.1, §3.5.2, §3.6 |
//! | POST | `/.search` | §3.4.3 — answered 501 (not implemented) |

pub mod error;
pub mod filter;
mod groups;
pub mod patch;
pub mod resource;
pub mod schema;
pub mod users;

use super::domain::directory::{self, ChangeError, Directory, DirectoryCall, FeedEntry};
use super::domain::RequestMeta;
use super::middleware::request_meta::from_parts;
use super::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
pub use error::ScimError;
use serde_json::{json, Value};
use std::collections::HashMap;
use time::OffsetDateTime;

pub fn router() -> Router<AppState> {
    let endpoints = Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/Users", get(users::list).post(users::create))
        .route("/Users/{id}", get(users::read).put(users::replace).patch(users::patch).delete(users::delete))
        .route("/Groups", get(groups::list).post(groups::create))
        .route("/Groups/{id}", get(groups::read).put(groups::replace).patch(groups::patch).delete(groups::delete))
        .route("/.search", post(search))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new().nest("/scim/v2/{directory_id}", endpoints)
}

/// The caller: a directory proven by its bearer token, and the directory named in the path.
pub struct ScimCaller {
    pub directory: Directory,
    pub meta: RequestMeta,
    /// `https://.../scim/v2/{directory_id}`
    pub base: String,
    pub method: Method,
    pub path: String,
}

impl FromRequestParts<AppState> for ScimCaller {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let meta = from_parts(parts, state.config.trusted_proxies);
        let unauthorized = |detail: &str| ScimError::new(StatusCode::UNAUTHORIZED, None, detail);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(
                |v| if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") { Some(v[7..].trim()) } else { None },
            )
            .ok_or_else(|| unauthorized("send the directory's bearer token: Authorization: Bearer mnd_scim_..."))?;
        let directory = directory::authenticate(&state.pool, token)
            .await
            .map_err(|e| ScimError::from_domain(e, meta.request_id.as_deref()))?
            .ok_or_else(|| unauthorized("the bearer token is not valid (it may have been rotated)"))?;
        // The original path (nesting strips the prefix from `uri`).
        let full_path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map(|uri| uri.path().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let named = full_path.strip_prefix("/scim/v2/").and_then(|rest| rest.split('/').next()).unwrap_or_default();
        if named != directory.id().to_string() {
            return Err(ScimError::not_found("no such directory for this token"));
        }
        let base = state.config.url(&directory::scim_base_path(directory.id()));
        Ok(ScimCaller { directory, meta, base, method: parts.method.clone(), path: full_path })
    }
}

impl ScimCaller {
    pub fn location(&self, kind: resource::ResourceKind, id: impl std::fmt::Display) -> String {
        format!("{}/{}/{id}", self.base, kind.endpoint())
    }

    pub fn error(&self, err: super::domain::DomainError) -> ScimError {
        ScimError::from_domain(err, self.meta.request_id.as_deref())
    }

    /// This request as a call into the domain, at `now`.
    pub fn call(&self, now: OffsetDateTime) -> DirectoryCall<'_> {
        DirectoryCall { directory: &self.directory, meta: &self.meta, now }
    }

    /// Records a write (or a refused request) in the directory's events feed, and answers.
    pub async fn log(
        &self,
        state: &AppState,
        event: &str,
        resource: Option<(&str, String)>,
        outcome: Result<Response, ScimError>,
    ) -> Response {
        let (status, detail) = match &outcome {
            Ok(response) => (response.status().as_u16(), String::new()),
            Err(err) => (err.status.as_u16(), err.detail.clone()),
        };
        let response = outcome.unwrap_or_else(IntoResponse::into_response);
        self.record(state, event, resource, status, &detail).await;
        response
    }

    async fn record(&self, state: &AppState, event: &str, resource: Option<(&str, String)>, status: u16, detail: &str) {
        let now = OffsetDateTime::now_utc();
        if let Err(err) = directory::record_event(
            &state.pool,
            self.call(now),
            FeedEntry { method: self.method.as_str(), path: &self.path, event, resource, status, detail },
        )
        .await
        {
            tracing::warn!(error = %err, "could not record a directory event");
        }
    }
}

/// The answer to a domain modification whose change function may refuse with a SCIM error.
pub fn outcome<R>(caller: &ScimCaller, result: Result<R, ChangeError<ScimError>>) -> Result<R, ScimError> {
    result.map_err(|err| match err {
        ChangeError::Refused(err) => err,
        ChangeError::Domain(err) => caller.error(err),
    })
}

/// A JSON body as `application/scim+json`.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/scim+json"));
    response
}

/// A single resource with its ETag (and Location when created).
pub fn resource_response(status: StatusCode, body: &Value, version: i64, location: Option<&str>) -> Response {
    let mut response = scim_json(status, body);
    if let Ok(etag) = HeaderValue::from_str(&resource::etag(version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub fn list_response(total: i64, start: i64, resources: Vec<Value>) -> Response {
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [schema::LIST],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": resources.len(),
            "Resources": resources,
        }),
    )
}

/// Query parameters of list and read requests, names compared without case.
pub struct ListQuery {
    pub filter: Option<crate::server::domain::directory::filter::Filter>,
    pub start: i64,
    pub count: i64,
    pub attributes: Vec<String>,
    pub excluded: Vec<String>,
}

impl ListQuery {
    pub fn parse(raw: &HashMap<String, String>) -> Result<ListQuery, ScimError> {
        let get = |name: &str| raw.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let number = |name: &str, default: i64| -> Result<i64, ScimError> {
            match get(name) {
                None | Some("") => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| ScimError::bad_request("invalidValue", format!("{name} must be a whole number"))),
            }
        };
        let filter = match get("filter") {
            Some(f) if !f.trim().is_empty() => {
                Some(filter::parse_filter(f).map_err(|e| ScimError::bad_request("invalidFilter", e))?)
            }
            _ => None,
        };
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        Ok(ListQuery {
            filter,
            start: number("startIndex", 1)?.max(1),
            count: number("count", schema::DEFAULT_COUNT)?.clamp(0, schema::MAX_RESULTS),
            attributes: list("attributes"),
            excluded: list("excludedAttributes"),
        })
    }
}

/// The version named by `If-Match`, if any.
pub fn if_match(headers: &HeaderMap) -> Option<i64> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).and_then(resource::parse_etag)
}

pub fn if_none_match(headers: &HeaderMap) -> Option<i64> {
    headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).and_then(resource::parse_etag)
}

/// A JSON body, or `invalidSyntax`.
pub fn parse_body(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad_request("invalidSyntax", format!("the body is not valid JSON: {e}")))
}

async fn service_provider_config(caller: ScimCaller) -> Response {
    scim_json(StatusCode::OK, &schema::service_provider_config(&caller.base))
}

async fn resource_types(caller: ScimCaller) -> Response {
    let items = schema::resource_types(&caller.base);
    list_response(items.len() as i64, 1, items)
}

async fn resource_type(
    caller: ScimCaller,
    axum::extract::Path(params): axum::extract::Path<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let id = params.get("id").cloned().unwrap_or_default();
    schema::resource_types(&caller.base)
        .into_iter()
        .find(|rt| rt["id"].as_str().is_some_and(|v| v.eq_ignore_ascii_case(&id)))
        .map(|rt| scim_json(StatusCode::OK, &rt))
        .ok_or_else(|| ScimError::not_found(format!("no resource type {id}")))
}

async fn schemas(caller: ScimCaller) -> Response {
    let items = schema::schemas(&caller.base);
    list_response(items.len() as i64, 1, items)
}

async fn schema_by_id(
    caller: ScimCaller,
    axum::extract::Path(params): axum::extract::Path<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let id = params.get("id").cloned().unwrap_or_default();
    schema::schemas(&caller.base)
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|v| v.eq_ignore_ascii_case(&id)))
        .map(|s| scim_json(StatusCode::OK, &s))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id}")))
}

async fn search(_caller: ScimCaller) -> ScimError {
    ScimError::new(StatusCode::NOT_IMPLEMENTED, None, "POST /.search is not supported: use GET with ?filter=")
}

async fn not_found(caller: ScimCaller) -> ScimError {
    ScimError::not_found(format!("no SCIM endpoint at {}", caller.path))
}

async fn method_not_allowed(method: Method) -> ScimError {
    ScimError::new(StatusCode::METHOD_NOT_ALLOWED, None, format!("{method} is not allowed here"))
}
