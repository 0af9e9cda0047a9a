//! `/Users`: directory users, stored as sent (known attributes only) and echoed exactly.

use super::resource::{self, clean_resource, project, ResourceKind};
use super::{
    if_match, if_none_match, list_response, outcome, parse_body, patch, resource_response, ListQuery, ScimCaller,
    ScimError,
};
use crate::server::domain::directory::users::{self, Modified, UserInput, UserRecord};
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

const KIND: ResourceKind = ResourceKind::User;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// The domain's input for a user resource as a client would send it (the demo uses this).
pub fn input_from(body: &Value) -> Result<UserInput, ScimError> {
    to_input(clean_resource(KIND, body)?)
}

/// What the domain needs from a cleaned user resource.
fn to_input(map: Map<String, Value>) -> Result<UserInput, ScimError> {
    let user_name =
        text(&map, "userName").ok_or_else(|| ScimError::bad_request("invalidValue", "userName is required"))?;
    let emails = map.get("emails").cloned().unwrap_or_else(|| json!([]));
    let addresses: Vec<&Value> = emails.as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let primary = addresses.iter().find(|e| e.get("primary") == Some(&Value::Bool(true))).or_else(|| addresses.first());
    let email = primary
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| user_name.clone());
    let name = map.get("name");
    let joined = name.map(|n| {
        [n.get("givenName"), n.get("familyName")]
            .iter()
            .filter_map(|v| v.and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let person_name = text(&map, "displayName")
        .or_else(|| name.and_then(|n| n.get("formatted")).and_then(Value::as_str).map(str::to_string))
        .or(joined.filter(|j| !j.trim().is_empty()))
        .unwrap_or_else(|| user_name.clone());
    Ok(UserInput {
        user_name,
        external_id: text(&map, "externalId"),
        display_name: text(&map, "displayName"),
        active: map.get("active").and_then(Value::as_bool).unwrap_or(true),
        emails,
        email,
        person_name: person_name.chars().take(200).collect(),
        resource: Value::Object(map),
    })
}

fn render(caller: &ScimCaller, record: &UserRecord) -> Value {
    let mut body = record.resource.as_object().cloned().unwrap_or_default();
    if !record.groups.is_empty() {
        let groups: Vec<Value> = record
            .groups
            .iter()
            .map(|g| json!({ "value": g.id, "$ref": caller.location(ResourceKind::Group, g.id), "display": g.display_name, "type": "direct" }))
            .collect();
        body.insert("groups".into(), Value::Array(groups));
    }
    let location = caller.location(KIND, record.id);
    resource::render(
        KIND,
        &record.id.to_string(),
        body,
        &location,
        record.created_at,
        record.updated_at,
        record.version,
    )
}

fn id_of(raw: &HashMap<String, String>) -> Result<Uuid, ScimError> {
    // A malformed id cannot name a resource: "not found", as for another directory's ids.
    raw.get("id").and_then(|id| id.parse().ok()).ok_or_else(|| ScimError::not_found("no such user in this directory"))
}

pub async fn list(
    State(state): State<AppState>,
    caller: ScimCaller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let query = ListQuery::parse(&raw)?;
    let (total, records) =
        users::list_users(&state.pool, &caller.directory, query.filter.as_ref(), query.start, query.count)
            .await
            .map_err(|e| caller.error(e))?;
    let resources = records
        .iter()
        .map(|r| {
            let mut v = render(&caller, r);
            project(KIND, &mut v, &query.attributes, &query.excluded);
            v
        })
        .collect();
    Ok(list_response(total, query.start, resources))
}

pub async fn read(
    State(state): State<AppState>,
    caller: ScimCaller,
    Path(params): Path<HashMap<String, String>>,
    Query(raw): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let query = ListQuery::parse(&raw)?;
    let record = users::get_user(&state.pool, &caller.directory, id_of(&params)?).await.map_err(|e| caller.error(e))?;
    if if_none_match(&headers) == Some(record.version) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut body = render(&caller, &record);
    project(KIND, &mut body, &query.attributes, &query.excluded);
    Ok(resource_response(StatusCode::OK, &body, record.version, None))
}

pub async fn create(State(state): State<AppState>, caller: ScimCaller, body: Bytes) -> Response {
    let outcome = async {
        let input = to_input(clean_resource(KIND, &parse_body(&body)?)?)?;
        let record = users::create_user(&state.pool, state.mandates(), caller.call(now()), input)
            .await
            .map_err(|e| caller.error(e))?;
        let location = caller.location(KIND, record.id);
        Ok::<_, ScimError>((
            record.id,
            resource_response(StatusCode::CREATED, &render(&caller, &record), record.version, Some(&location)),
        ))
    }
    .await;
    let (resource, outcome) = match outcome {
        Ok((id, response)) => (Some(("User", id.to_string())), Ok(response)),
        Err(err) => (None, Err(err)),
    };
    caller.log(&state, "user.created", resource, outcome).await
}

/// PUT and PATCH: the new representation, computed from the current one under the row lock.
/// The domain says what happened to the person, which names the directory event.
async fn modify(
    state: &AppState,
    caller: &ScimCaller,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    change: impl FnOnce(&UserRecord) -> Result<UserInput, ScimError>,
) -> (String, Result<Response, ScimError>) {
    let mut event = "user.updated";
    let outcome = async {
        let id = id_of(params)?;
        let result =
            users::modify_user(&state.pool, state.mandates(), caller.call(now()), id, if_match(headers), change).await;
        let (record, modified) = outcome(caller, result)?;
        event = match modified {
            Modified::Left(_) => "user.deactivated",
            Modified::Rejoined => "user.reactivated",
            Modified::Updated => "user.updated",
        };
        Ok(resource_response(StatusCode::OK, &render(caller, &record), record.version, None))
    };
    let outcome = outcome.await;
    (event.to_string(), outcome)
}

pub async fn replace(
    State(state): State<AppState>,
    caller: ScimCaller,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = parse_body(&body).and_then(|b| clean_resource(KIND, &b));
    let (event, outcome) = match parsed {
        Err(err) => ("user.updated".to_string(), Err(err)),
        Ok(map) => modify(&state, &caller, &params, &headers, |_| to_input(map)).await,
    };
    caller.log(&state, &event, params.get("id").map(|id| ("User", id.clone())), outcome).await
}

pub async fn patch(
    State(state): State<AppState>,
    caller: ScimCaller,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operations = parse_body(&body).and_then(|b| patch::parse_operations(&b));
    let (event, outcome) = match operations {
        Err(err) => ("user.updated".to_string(), Err(err)),
        Ok(operations) => {
            modify(&state, &caller, &params, &headers, |current| {
                let mut doc = current.resource.as_object().cloned().unwrap_or_default();
                patch::apply(KIND, &mut doc, &operations)?;
                to_input(doc)
            })
            .await
        }
    };
    caller.log(&state, &event, params.get("id").map(|id| ("User", id.clone())), outcome).await
}

pub async fn delete(
    State(state): State<AppState>,
    caller: ScimCaller,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        let id = id_of(&params)?;
        users::delete_user(&state.pool, state.mandates(), caller.call(now()), id, if_match(&headers))
            .await
            .map_err(|e| caller.error(e))?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    caller.log(&state, "user.deleted", params.get("id").map(|id| ("User", id.clone())), outcome).await
}
