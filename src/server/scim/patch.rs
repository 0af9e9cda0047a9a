//! PATCH (RFC 7644 §3.5.2) on a stored representation: `add`, `replace` and `remove` with
//! attribute paths, sub-attributes and value filters, plus the shapes Entra ID and Okta send
//! (capitalised ops, operations without a path whose value names attributes — even dotted or
//! URN-qualified ones —, `remove` of members by value, booleans as strings). Unknown attributes
//! are ignored as on POST; read-only ones are refused with `mutability`.

use super::error::ScimError;
use super::filter::{parse_patch_path, PatchPath};
use super::resource::{clean_object, clean_value, resolve_key, KeyTarget, ResourceKind};
use super::schema::{self, Attr, Kind, Mutability, PATCH_OP};
use crate::server::domain::directory::filter::{CompareOp, Filter};
use serde_json::{Map, Value};

pub const MAX_OPERATIONS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub op: Op,
    pub path: Option<String>,
    pub value: Option<Value>,
}

fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// Reads a PatchOp request body.
pub fn parse_operations(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let syntax = |detail: &str| ScimError::bad_request("invalidSyntax", detail.to_string());
    let Value::Object(object) = body else { return Err(syntax("the body must be a JSON object")) };
    let schemas = get_ci(object, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|v| v.as_str().is_some_and(|v| v.eq_ignore_ascii_case(PATCH_OP)))) {
        return Err(syntax("schemas must contain urn:ietf:params:scim:api:messages:2.0:PatchOp"));
    }
    let Some(Value::Array(operations)) = get_ci(object, "Operations") else {
        return Err(syntax("Operations must be an array"));
    };
    if operations.is_empty() || operations.len() > MAX_OPERATIONS {
        return Err(syntax(&format!("send between 1 and {MAX_OPERATIONS} operations")));
    }
    operations
        .iter()
        .map(|operation| {
            let Value::Object(operation) = operation else { return Err(syntax("each operation must be an object")) };
            let op = match get_ci(operation, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
                Some("add") => Op::Add,
                Some("replace") => Op::Replace,
                Some("remove") => Op::Remove,
                _ => return Err(syntax("op must be add, replace or remove")),
            };
            let path = match get_ci(operation, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(path)) if path.trim().is_empty() => None,
                Some(Value::String(path)) => Some(path.clone()),
                Some(_) => return Err(ScimError::bad_request("invalidPath", "path must be a string")),
            };
            let value = get_ci(operation, "value").cloned().filter(|v| !v.is_null());
            if op != Op::Remove && value.is_none() {
                return Err(ScimError::bad_request("invalidValue", "add and replace need a value"));
            }
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// Applies the operations in order; all or nothing (the caller keeps the original on error).
pub fn apply(kind: ResourceKind, doc: &mut Map<String, Value>, operations: &[Operation]) -> Result<(), ScimError> {
    for operation in operations {
        match &operation.path {
            None => apply_without_path(kind, doc, operation)?,
            Some(path) => apply_path(kind, doc, operation.op, path, operation.value.as_ref())?,
        }
    }
    tidy(doc);
    Ok(())
}

fn apply_without_path(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    operation: &Operation,
) -> Result<(), ScimError> {
    if operation.op == Op::Remove {
        return Err(ScimError::bad_request("noTarget", "remove needs a path"));
    }
    let Some(Value::Object(values)) = &operation.value else {
        return Err(ScimError::bad_request(
            "invalidValue",
            "without a path, the value must be an object of attributes",
        ));
    };
    for (key, value) in values {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        apply_path(kind, doc, operation.op, key, Some(value))?;
    }
    Ok(())
}

/// Runs `change` on an extension's object (created if missing, dropped if left empty).
fn with_extension<T>(doc: &mut Map<String, Value>, urn: &str, change: impl FnOnce(&mut Map<String, Value>) -> T) -> T {
    let mut object = match doc.remove(urn) {
        Some(Value::Object(object)) => object,
        _ => Map::new(),
    };
    let result = change(&mut object);
    if !object.is_empty() {
        doc.insert(urn.to_string(), Value::Object(object));
    }
    result
}

fn apply_path(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    op: Op,
    path: &str,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let (target, local) = resolve_key(kind, path);
    let (extension, attr) = match target {
        KeyTarget::Ignored => return Ok(()),
        KeyTarget::Extension(urn, attrs) => {
            match op {
                Op::Remove => {
                    doc.remove(urn);
                }
                Op::Add | Op::Replace => {
                    let Some(Value::Object(values)) = value else {
                        return Err(ScimError::bad_request("invalidValue", format!("{urn} takes an object")));
                    };
                    let cleaned = clean_object(attrs, values)?;
                    with_extension(doc, urn, |object| object.extend(cleaned));
                }
            }
            return Ok(());
        }
        KeyTarget::Core(attr) => (None, attr),
        KeyTarget::ExtensionAttr(urn, attr) => (Some(urn), attr),
    };
    if attr.mutability == Mutability::ReadOnly {
        return Err(ScimError::bad_request("mutability", format!("{} is read-only", attr.name)));
    }
    // `local` is the part after the URN: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`.
    let parsed = parse_patch_path(local).map_err(|e| ScimError::bad_request("invalidPath", e))?;
    match extension {
        None => apply_to(doc, attr, &parsed, op, value),
        Some(urn) => with_extension(doc, urn, |object| apply_to(object, attr, &parsed, op, value)),
    }
}

fn apply_to(
    target: &mut Map<String, Value>,
    attr: &'static Attr,
    path: &PatchPath,
    op: Op,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = attr.name;
    match (&path.filter, &path.attr.sub) {
        (None, Some(sub)) => {
            let sub_attr = schema::find(attr.sub, sub)
                .ok_or_else(|| ScimError::bad_request("invalidPath", format!("{name} has no {sub}")))?;
            if attr.multi {
                return Err(ScimError::bad_request(
                    "invalidPath",
                    format!("{name} is multi-valued: use {name}[filter].{sub}"),
                ));
            }
            let entry = target.entry(name.to_string()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(object) = entry else {
                return Err(ScimError::bad_request("invalidPath", format!("{name} is not complex")));
            };
            match op {
                Op::Remove => {
                    object.remove(sub_attr.name);
                }
                Op::Add | Op::Replace => match clean_value(sub_attr, value.unwrap_or(&Value::Null))? {
                    Some(v) => {
                        object.insert(sub_attr.name.to_string(), v);
                    }
                    None => {
                        object.remove(sub_attr.name);
                    }
                },
            }
            Ok(())
        }
        (None, None) => apply_whole(target, attr, op, value),
        (Some(filter), _) => {
            if !attr.multi {
                return Err(ScimError::bad_request(
                    "invalidPath",
                    format!("{name} is not multi-valued: it cannot take a filter"),
                ));
            }
            apply_filtered(target, attr, filter, path.sub.as_deref(), op, value)
        }
    }
}

fn same_member(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn apply_whole(
    target: &mut Map<String, Value>,
    attr: &'static Attr,
    op: Op,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = attr.name;
    match op {
        Op::Remove => {
            // Entra removes members by listing them in the value.
            match (attr.multi, value) {
                (true, Some(value)) => {
                    let Some(Value::Array(removing)) = clean_value(attr, value)? else { return Ok(()) };
                    if let Some(Value::Array(items)) = target.get_mut(name) {
                        items.retain(|item| !removing.iter().any(|r| same_member(item, r)));
                    }
                }
                _ => {
                    target.remove(name);
                }
            }
        }
        Op::Add => {
            let Some(cleaned) = clean_value(attr, value.unwrap_or(&Value::Null))? else { return Ok(()) };
            match (attr.multi, attr.kind, target.get_mut(name)) {
                (true, _, Some(Value::Array(items))) => {
                    if let Value::Array(new_items) = cleaned {
                        for item in new_items {
                            if let Some(existing) = items.iter_mut().find(|i| same_member(i, &item)) {
                                *existing = item;
                            } else {
                                items.push(item);
                            }
                        }
                    }
                }
                (false, Kind::Complex, Some(Value::Object(object))) => {
                    if let Value::Object(new) = cleaned {
                        object.extend(new);
                    }
                }
                _ => {
                    target.insert(name.to_string(), cleaned);
                }
            }
        }
        Op::Replace => match clean_value(attr, value.unwrap_or(&Value::Null))? {
            None => {
                target.remove(name);
            }
            Some(Value::Object(new)) if !attr.multi => match target.get_mut(name) {
                // RFC 7644 §3.5.2.3: sub-attributes not given are left unchanged.
                Some(Value::Object(object)) => object.extend(new),
                _ => {
                    target.insert(name.to_string(), Value::Object(new));
                }
            },
            Some(cleaned) => {
                target.insert(name.to_string(), cleaned);
            }
        },
    }
    Ok(())
}

fn apply_filtered(
    target: &mut Map<String, Value>,
    attr: &'static Attr,
    filter: &Filter,
    sub: Option<&str>,
    op: Op,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = attr.name;
    let sub_attr = match sub {
        Some(sub) => Some(
            schema::find(attr.sub, sub)
                .ok_or_else(|| ScimError::bad_request("invalidPath", format!("{name} has no {sub}")))?,
        ),
        None => None,
    };
    let mut items = match target.remove(name) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let result = edit_matching(&mut items, attr, filter, sub_attr, op, value);
    if !items.is_empty() {
        target.insert(name.to_string(), Value::Array(items));
    }
    result
}

fn edit_matching(
    items: &mut Vec<Value>,
    attr: &'static Attr,
    filter: &Filter,
    sub_attr: Option<&'static Attr>,
    op: Op,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = attr.name;
    let matched: Vec<usize> =
        items.iter().enumerate().filter(|(_, item)| matches(filter, item)).map(|(i, _)| i).collect();
    match (op, sub_attr) {
        (Op::Remove, None) => {
            let mut index = 0;
            items.retain(|_| {
                let keep = !matched.contains(&index);
                index += 1;
                keep
            });
        }
        (Op::Remove, Some(sub_attr)) => {
            for i in matched {
                if let Some(Value::Object(item)) = items.get_mut(i) {
                    item.remove(sub_attr.name);
                }
            }
        }
        (Op::Add | Op::Replace, Some(sub_attr)) => {
            let cleaned = clean_value(sub_attr, value.unwrap_or(&Value::Null))?;
            if matched.is_empty() {
                // `emails[type eq "work"].value` on a user without a work email: create it.
                let Some(Filter::Compare(key, CompareOp::Eq, literal)) = Some(filter) else {
                    return Err(ScimError::bad_request("noTarget", format!("no {name} value matches the filter")));
                };
                let mut item = Map::new();
                if let Some(key_attr) = schema::find(attr.sub, &key.attr) {
                    if let Some(v) = clean_value(key_attr, literal)? {
                        item.insert(key_attr.name.to_string(), v);
                    }
                }
                if let Some(v) = cleaned {
                    item.insert(sub_attr.name.to_string(), v);
                }
                items.push(Value::Object(item));
            } else {
                for i in matched {
                    if let Some(Value::Object(item)) = items.get_mut(i) {
                        match &cleaned {
                            Some(v) => {
                                item.insert(sub_attr.name.to_string(), v.clone());
                            }
                            None => {
                                item.remove(sub_attr.name);
                            }
                        }
                    }
                }
            }
        }
        (Op::Add | Op::Replace, None) => {
            let Some(Value::Object(raw)) = value else {
                return Err(ScimError::bad_request("invalidValue", format!("{name}[...] takes an object")));
            };
            let new = clean_object(attr.sub, raw)?;
            if matched.is_empty() {
                if op == Op::Replace {
                    return Err(ScimError::bad_request("noTarget", format!("no {name} value matches the filter")));
                }
                items.push(Value::Object(new));
            } else {
                for i in matched {
                    if let Some(Value::Object(item)) = items.get_mut(i) {
                        item.extend(new.clone());
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether one element of a multi-valued attribute matches a value filter.
pub fn matches(filter: &Filter, item: &Value) -> bool {
    let field = |name: &str| item.as_object().and_then(|o| get_ci(o, name));
    match filter {
        Filter::And(a, b) => matches(a, item) && matches(b, item),
        Filter::Or(a, b) => matches(a, item) || matches(b, item),
        Filter::Not(inner) => !matches(inner, item),
        Filter::Present(path) => field(&path.attr).is_some_and(|v| !v.is_null() && v != &Value::String(String::new())),
        Filter::ValuePath(..) => false,
        Filter::Compare(path, op, expected) => {
            let actual = field(&path.attr);
            match (actual, expected) {
                (Some(Value::String(a)), Value::String(e)) => {
                    let (a, e) = (a.to_lowercase(), e.to_lowercase());
                    match op {
                        CompareOp::Eq => a == e,
                        CompareOp::Ne => a != e,
                        CompareOp::Co => a.contains(&e),
                        CompareOp::Sw => a.starts_with(&e),
                        CompareOp::Ew => a.ends_with(&e),
                        CompareOp::Gt => a > e,
                        CompareOp::Ge => a >= e,
                        CompareOp::Lt => a < e,
                        CompareOp::Le => a <= e,
                    }
                }
                (Some(Value::Bool(a)), Value::Bool(e)) => match op {
                    CompareOp::Eq => a == e,
                    CompareOp::Ne => a != e,
                    _ => false,
                },
                (None, _) => *op == CompareOp::Ne,
                _ => false,
            }
        }
    }
}

/// Drops empty objects and arrays left behind by removals.
fn tidy(doc: &mut Map<String, Value>) {
    doc.retain(|_, value| {
        if let Value::Object(inner) = value {
            tidy(inner);
        }
        if let Value::Array(items) = value {
            items.retain(|item| !item.as_object().is_some_and(Map::is_empty));
        }
        !matches!(value, Value::Null)
            && !value.as_object().is_some_and(Map::is_empty)
            && !value.as_array().is_some_and(Vec::is_empty)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::scim::schema::ENTERPRISE;
    use serde_json::json;

    fn patch(kind: ResourceKind, doc: Value, ops: Value) -> Result<Value, ScimError> {
        let mut map = doc.as_object().unwrap().clone();
        let ops = parse_operations(&json!({ "schemas": [PATCH_OP], "Operations": ops }))?;
        apply(kind, &mut map, &ops)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn entra_shapes() {
        let user = json!({ "userName": "a", "active": true, "emails": [{ "value": "a@x.example", "type": "work", "primary": true }] });
        let out =
            patch(ResourceKind::User, user.clone(), json!([{ "op": "Replace", "path": "active", "value": "False" }]))
                .unwrap();
        assert_eq!(out["active"], false);
        let out = patch(
            ResourceKind::User,
            user.clone(),
            json!([{ "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.example" }]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{ "value": "b@x.example", "type": "work", "primary": true }]));
        let out = patch(
            ResourceKind::User,
            user.clone(),
            json!([{ "op": "Add", "value": {
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance",
            "name.givenName": "Ann", "displayName": "Ann" } }]),
        )
        .unwrap();
        assert_eq!(out[ENTERPRISE]["department"], "Finance");
        assert_eq!(out["name"]["givenName"], "Ann");
        let out = patch(ResourceKind::User, user.clone(), json!([{ "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-1" }])).unwrap();
        assert_eq!(out[ENTERPRISE]["manager"], json!({ "value": "m-1" }));
        let group = json!({ "displayName": "G", "members": [{ "value": "1" }, { "value": "2" }] });
        let out = patch(
            ResourceKind::Group,
            group.clone(),
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": "1" }] }]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{ "value": "2" }]));
        let out = patch(
            ResourceKind::Group,
            group.clone(),
            json!([{ "op": "Add", "path": "members", "value": [{ "value": "3" }, { "value": "2" }] }]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{ "value": "1" }, { "value": "2" }, { "value": "3" }]));
    }

    #[test]
    fn okta_shapes() {
        let user = json!({ "userName": "a", "active": true });
        let out = patch(ResourceKind::User, user, json!([{ "op": "replace", "value": { "active": false } }])).unwrap();
        assert_eq!(out["active"], false);
        let group = json!({ "displayName": "G", "members": [{ "value": "1" }, { "value": "2" }] });
        let out =
            patch(ResourceKind::Group, group.clone(), json!([{ "op": "remove", "path": "members[value eq \"2\"]" }]))
                .unwrap();
        assert_eq!(out["members"], json!([{ "value": "1" }]));
        let out = patch(
            ResourceKind::Group,
            group,
            json!([{ "op": "replace", "path": "members", "value": [{ "value": "9" }] }]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{ "value": "9" }]));
    }

    #[test]
    fn removals_are_idempotent_and_tidy() {
        let user = json!({ "userName": "a", ENTERPRISE: { "department": "F" } });
        let out = patch(ResourceKind::User, user.clone(), json!([{ "op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" }])).unwrap();
        assert!(out.get(ENTERPRISE).is_none(), "no empty extension object: {out}");
        let out = patch(
            ResourceKind::User,
            user.clone(),
            json!([{ "op": "remove", "path": "displayName" }, { "op": "remove", "path": ENTERPRISE }]),
        )
        .unwrap();
        assert_eq!(out, json!({ "userName": "a" }));
    }

    #[test]
    fn refusals() {
        let user = json!({ "userName": "a" });
        let err = |ops: Value| patch(ResourceKind::User, user.clone(), ops).unwrap_err();
        assert_eq!(err(json!([{ "op": "replace", "path": "id", "value": "x" }])).scim_type, Some("mutability"));
        assert_eq!(err(json!([{ "op": "remove" }])).scim_type, Some("noTarget"));
        assert_eq!(err(json!([{ "op": "move", "path": "userName" }])).scim_type, Some("invalidSyntax"));
        assert_eq!(
            err(json!([{ "op": "add", "path": "emails[type eq", "value": "x" }])).scim_type,
            Some("invalidPath")
        );
        assert_eq!(
            err(json!([{ "op": "replace", "path": "active", "value": "perhaps" }])).scim_type,
            Some("invalidValue")
        );
        assert!(parse_operations(&json!({ "Operations": [] })).is_err());
        // Multi-byte input around the schema URN's length must not split a character.
        let path = format!("members[value eq \"a{}\"]", "é".repeat(30));
        let group = json!({ "displayName": "G", "members": [{ "value": "1" }] });
        let out = patch(ResourceKind::Group, group, json!([{ "op": "remove", "path": path }])).unwrap();
        assert_eq!(out["members"], json!([{ "value": "1" }]));
    }
}
