//! `/Groups`: directory groups and their members (users of the same directory).

use super::resource::{self, clean_resource, project, ResourceKind};
use super::{
    if_match, if_none_match, list_response, outcome, parse_body, patch, resource_response, ListQuery, ScimCaller,
    ScimError,
};
use crate::server::domain::directory::groups::{self, GroupInput, GroupRecord};
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

const KIND: ResourceKind = ResourceKind::Group;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn to_input(map: &Map<String, Value>) -> Result<GroupInput, ScimError> {
    let display_name = map
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ScimError::bad_request("invalidValue", "displayName is required"))?;
    let mut members = Vec::new();
    for member in map.get("members").and_then(Value::as_array).into_iter().flatten() {
        if member.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("group")) {
            return Err(ScimError::bad_request("invalidValue", "groups cannot contain groups here: list the users"));
        }
        let value = member.get("value").and_then(Value::as_str).unwrap_or_default();
        let id = value.parse::<Uuid>().map_err(|_| {
            ScimError::bad_request("invalidValue", format!("member {value:?} is not a user id of this directory"))
        })?;
        members.push(id);
    }
    Ok(GroupInput {
        display_name,
        external_id: map.get("externalId").and_then(Value::as_str).map(str::to_string),
        members,
    })
}

/// The group as its stored representation (before `id` and `meta`).
fn document(caller: &ScimCaller, record: &GroupRecord) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("displayName".into(), json!(record.display_name));
    if let Some(external_id) = &record.external_id {
        body.insert("externalId".into(), json!(external_id));
    }
    if !record.members.is_empty() {
        let members: Vec<Value> = record
            .members
            .iter()
            .map(|m| json!({ "value": m.user_id, "$ref": caller.location(ResourceKind::User, m.user_id), "type": "User" }))
            .collect();
        body.insert("members".into(), Value::Array(members));
    }
    body
}

fn render(caller: &ScimCaller, record: &GroupRecord) -> Value {
    let location = caller.location(KIND, record.id);
    resource::render(
        KIND,
        &record.id.to_string(),
        document(caller, record),
        &location,
        record.created_at,
        record.updated_at,
        record.version,
    )
}

fn id_of(raw: &HashMap<String, String>) -> Result<Uuid, ScimError> {
    raw.get("id").and_then(|id| id.parse().ok()).ok_or_else(|| ScimError::not_found("no such group in this directory"))
}

fn wants_members(query: &ListQuery) -> bool {
    let named = |list: &[String]| {
        list.iter().any(|a| a.eq_ignore_ascii_case("members") || a.to_ascii_lowercase().starts_with("members."))
    };
    if !query.attributes.is_empty() {
        return named(&query.attributes);
    }
    !named(&query.excluded)
}

pub async fn list(
    State(state): State<AppState>,
    caller: ScimCaller,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let query = ListQuery::parse(&raw)?;
    let (total, records) = groups::list_groups(
        &state.pool,
        &caller.directory,
        query.filter.as_ref(),
        query.start,
        query.count,
        wants_members(&query),
    )
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
    let record =
        groups::get_group(&state.pool, &caller.directory, id_of(&params)?).await.map_err(|e| caller.error(e))?;
    if if_none_match(&headers) == Some(record.version) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut body = render(&caller, &record);
    project(KIND, &mut body, &query.attributes, &query.excluded);
    Ok(resource_response(StatusCode::OK, &body, record.version, None))
}

pub async fn create(State(state): State<AppState>, caller: ScimCaller, body: Bytes) -> Response {
    let outcome = async {
        let input = to_input(&clean_resource(KIND, &parse_body(&body)?)?)?;
        let record = groups::create_group(&state.pool, state.mandates(), caller.call(now()), input)
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
        Ok((id, response)) => (Some(("Group", id.to_string())), Ok(response)),
        Err(err) => (None, Err(err)),
    };
    caller.log(&state, "group.created", resource, outcome).await
}

async fn modify(
    state: &AppState,
    caller: &ScimCaller,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    change: impl FnOnce(&GroupRecord) -> Result<GroupInput, ScimError>,
) -> Result<Response, ScimError> {
    let id = id_of(params)?;
    let result =
        groups::modify_group(&state.pool, state.mandates(), caller.call(now()), id, if_match(headers), change).await;
    let record = outcome(caller, result)?;
    Ok(resource_response(StatusCode::OK, &render(caller, &record), record.version, None))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: ScimCaller,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = match parse_body(&body).and_then(|b| clean_resource(KIND, &b)) {
        Err(err) => Err(err),
        Ok(map) => modify(&state, &caller, &params, &headers, |_| to_input(&map)).await,
    };
    caller.log(&state, "group.updated", params.get("id").map(|id| ("Group", id.clone())), outcome).await
}

pub async fn patch(
    State(state): State<AppState>,
    caller: ScimCaller,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = match parse_body(&body).and_then(|b| patch::parse_operations(&b)) {
        Err(err) => Err(err),
        Ok(operations) => {
            modify(&state, &caller, &params, &headers, |current| {
                let mut doc = document(&caller, current);
                patch::apply(KIND, &mut doc, &operations)?;
                to_input(&doc)
            })
            .await
        }
    };
    caller.log(&state, "group.updated", params.get("id").map(|id| ("Group", id.clone())), outcome).await
}

pub async fn delete(
    State(state): State<AppState>,
    caller: ScimCaller,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        let id = id_of(&params)?;
        groups::delete_group(&state.pool, state.mandates(), caller.call(now()), id, if_match(&headers))
            .await
            .map_err(|e| caller.error(e))?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    caller.log(&state, "group.deleted", params.get("id").map(|id| ("Group", id.clone())), outcome).await
}
