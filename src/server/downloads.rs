//! File downloads: plain HTTP responses streamed from the domain, for the portal (session,
//! `/audit/export`) and the platform API (`/api/v1/audit/export`) alike.

use super::domain::audit::export;
use super::domain::{AdminSession, DomainError};
use super::errors::to_app_error;
use super::state::AppState;
use crate::model::audit::AuditFilter;
use crate::model::Permission;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit/export", get(portal_audit_export))
}

/// A streamed download of an organization's events, oldest first.
pub fn audit_export(
    state: &AppState,
    org_id: Uuid,
    filter: &AuditFilter,
    format: Option<&str>,
) -> Result<Response, DomainError> {
    let format = export::Format::parse(format.unwrap_or("ndjson"))?;
    let chunks = export::stream(state.pool.clone(), org_id, filter, format)?.map(|chunk| {
        chunk.map_err(|err| {
            // The status line is gone by now: log and cut the download short, so the client
            // sees an incomplete transfer rather than a file that looks whole.
            tracing::error!(error = %err, "audit export failed mid-stream");
            std::io::Error::other("export failed")
        })
    });
    let stamp = OffsetDateTime::now_utc().unix_timestamp();
    let disposition = format!("attachment; filename=\"audit-{org_id}-{stamp}.{}\"", format.extension());
    Ok((
        [(header::CONTENT_TYPE, format.content_type().to_string()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(chunks),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
struct ExportQuery {
    format: Option<String>,
    #[serde(flatten)]
    filter: AuditFilter,
}

/// `GET /audit/export?format=csv|ndjson&<filters>`: the Audit page's Export buttons. The page
/// guard has already sent signed-out browsers to `/login` and put the admin in the request.
async fn portal_audit_export(
    State(state): State<AppState>,
    admin: Option<Extension<AdminSession>>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Response {
    let Some(Extension(admin)) = admin else { return StatusCode::UNAUTHORIZED.into_response() };
    let Ok(Query(query)) = query else {
        return (StatusCode::BAD_REQUEST, "The export's filters are malformed; adjust them on the Audit page.")
            .into_response();
    };
    let result = admin
        .require(Permission::ReadAudit)
        .and_then(|()| audit_export(&state, admin.org_id(), &query.filter, query.format.as_deref()));
    match result {
        Ok(response) => response,
        Err(err) => {
            let error = to_app_error(err, None);
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], error.message).into_response()
        }
    }
}
