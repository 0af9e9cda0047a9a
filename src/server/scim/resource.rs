//! SCIM resources as JSON: cleaning what clients send (canonical attribute names, known
//! attributes only, booleans from strings, read-only parts dropped), rendering what we store
//! (with `id`, `meta`, `schemas`), and projecting with `attributes` / `excludedAttributes`.

use super::error::ScimError;
use super::schema::{self, Attr, Kind, Mutability, ENTERPRISE, ENTERPRISE_ATTRS, GROUP, GROUP_ATTRS, USER, USER_ATTRS};
use serde_json::{json, Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub fn core(self) -> &'static str {
        match self {
            ResourceKind::User => USER,
            ResourceKind::Group => GROUP,
        }
    }

    pub fn attrs(self) -> &'static [Attr] {
        match self {
            ResourceKind::User => &USER_ATTRS,
            ResourceKind::Group => &GROUP_ATTRS,
        }
    }

    pub fn extension(self) -> Option<(&'static str, &'static [Attr])> {
        match self {
            ResourceKind::User => Some((ENTERPRISE, &ENTERPRISE_ATTRS)),
            ResourceKind::Group => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }
}

/// Where a (possibly URN-qualified) top-level key points.
pub enum KeyTarget {
    Core(&'static Attr),
    Extension(&'static str, &'static [Attr]),
    ExtensionAttr(&'static str, &'static Attr),
    Ignored,
}

/// The attribute name a path starts with: `emails` of `emails[type eq "work"].value`.
fn head(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or("")
}

/// `key` without a leading `urn:`-qualified schema (compared without case), as written.
fn strip_schema<'k>(key: &'k str, urn: &str) -> Option<&'k str> {
    let (schema, rest) = (key.get(..urn.len())?, key.get(urn.len()..)?);
    rest.strip_prefix(':').filter(|_| schema.eq_ignore_ascii_case(urn))
}

/// Resolves a top-level key or path case-insensitively. Also returns the path after its schema
/// URN, in its original case (`name.givenName`, `members[value eq "…"]`).
pub fn resolve_key(kind: ResourceKind, key: &str) -> (KeyTarget, &str) {
    if let Some((urn, attrs)) = kind.extension() {
        if key.eq_ignore_ascii_case(urn) {
            return (KeyTarget::Extension(urn, attrs), "");
        }
        if let Some(rest) = strip_schema(key, urn) {
            let target =
                schema::find(attrs, head(rest)).map_or(KeyTarget::Ignored, |attr| KeyTarget::ExtensionAttr(urn, attr));
            return (target, rest);
        }
    }
    let local = strip_schema(key, kind.core()).unwrap_or(key);
    (schema::find(kind.attrs(), head(local)).map_or(KeyTarget::Ignored, KeyTarget::Core), local)
}

fn invalid(detail: String) -> ScimError {
    ScimError::bad_request("invalidValue", detail)
}

/// Cleans one attribute's value; `None` when it carries nothing (null, empty, read-only).
pub fn clean_value(attr: &Attr, value: &Value) -> Result<Option<Value>, ScimError> {
    if attr.mutability == Mutability::ReadOnly || value.is_null() {
        return Ok(None);
    }
    if attr.multi {
        let items: Vec<Value> = match value {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        let mut cleaned = Vec::new();
        for item in &items {
            if let Some(item) = clean_single(attr, item)? {
                cleaned.push(item);
            }
        }
        return Ok((!cleaned.is_empty()).then_some(Value::Array(cleaned)));
    }
    clean_single(attr, value)
}

fn clean_single(attr: &Attr, value: &Value) -> Result<Option<Value>, ScimError> {
    Ok(match (attr.kind, value) {
        (_, Value::Null) => None,
        (Kind::Boolean, Value::Bool(b)) => Some(Value::Bool(*b)),
        (Kind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        (Kind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
        (Kind::Boolean, other) => return Err(invalid(format!("{} must be true or false, not {other}", attr.name))),
        (Kind::String | Kind::Reference, Value::String(s)) => {
            if s.len() > 4096 {
                return Err(invalid(format!("{} is longer than 4096 characters", attr.name)));
            }
            Some(Value::String(s.clone()))
        }
        (Kind::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (Kind::String | Kind::Reference, other) => {
            return Err(invalid(format!("{} must be a string, not {other}", attr.name)))
        }
        (Kind::Complex, Value::Object(object)) => {
            let cleaned = clean_object(attr.sub, object)?;
            (!cleaned.is_empty()).then_some(Value::Object(cleaned))
        }
        // IdPs send a manager (or a member) as its bare id.
        (Kind::Complex, Value::String(s)) if schema::find(attr.sub, "value").is_some() => Some(json!({ "value": s })),
        (Kind::Complex, other) => return Err(invalid(format!("{} must be an object, not {other}", attr.name))),
    })
}

/// Cleans an object of known attributes (sub-attributes of a complex attribute, or an
/// extension's attributes). Unknown keys are ignored.
pub fn clean_object(attrs: &'static [Attr], object: &Map<String, Value>) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (key, value) in object {
        if let Some(attr) = schema::find(attrs, key) {
            if let Some(value) = clean_value(attr, value)? {
                out.insert(attr.name.to_string(), value);
            }
        }
    }
    Ok(out)
}

/// Cleans a whole resource sent with POST or PUT.
pub fn clean_resource(kind: ResourceKind, body: &Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(object) = body else {
        return Err(ScimError::bad_request("invalidSyntax", "the body must be a JSON object"));
    };
    let mut out = Map::new();
    for (key, value) in object {
        match resolve_key(kind, key).0 {
            KeyTarget::Core(attr) => {
                if let Some(value) = clean_value(attr, value)? {
                    out.insert(attr.name.to_string(), value);
                }
            }
            KeyTarget::Extension(urn, attrs) => {
                let Value::Object(inner) = value else {
                    if value.is_null() {
                        continue;
                    }
                    return Err(invalid(format!("{urn} must be an object")));
                };
                let cleaned = clean_object(attrs, inner)?;
                if !cleaned.is_empty() {
                    out.insert(urn.to_string(), Value::Object(cleaned));
                }
            }
            KeyTarget::ExtensionAttr(urn, attr) => {
                if let Some(value) = clean_value(attr, value)? {
                    let entry = out.entry(urn.to_string()).or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(map) = entry {
                        map.insert(attr.name.to_string(), value);
                    }
                }
            }
            KeyTarget::Ignored => {}
        }
    }
    Ok(out)
}

/// `W/"<version>"`
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Parses an `If-Match` / `If-None-Match` value into a version; `*` and unparseable tags give
/// `None` (no precondition we can check).
pub fn parse_etag(value: &str) -> Option<i64> {
    let value = value.trim();
    if value == "*" {
        return None;
    }
    value.trim_start_matches("W/").trim_matches('"').parse().ok()
}

/// Adds `id`, `schemas` and `meta` to a stored representation.
pub fn render(
    kind: ResourceKind,
    id: &str,
    mut body: Map<String, Value>,
    location: &str,
    created: time::OffsetDateTime,
    modified: time::OffsetDateTime,
    version: i64,
) -> Value {
    let format = &time::format_description::well_known::Rfc3339;
    let mut schemas = vec![Value::String(kind.core().to_string())];
    if let Some((urn, _)) = kind.extension() {
        if body.get(urn).is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty())) {
            schemas.push(Value::String(urn.to_string()));
        } else {
            body.remove(urn);
        }
    }
    body.insert("schemas".into(), Value::Array(schemas));
    body.insert("id".into(), Value::String(id.to_string()));
    body.insert(
        "meta".into(),
        json!({
            "resourceType": kind.name(),
            "created": created.format(format).unwrap_or_default(),
            "lastModified": modified.format(format).unwrap_or_default(),
            "location": location,
            "version": etag(version),
        }),
    );
    Value::Object(body)
}

/// Applies `attributes` (keep only these, plus `id`, `schemas`, `meta`) or `excludedAttributes`.
pub fn project(kind: ResourceKind, resource: &mut Value, attributes: &[String], excluded: &[String]) {
    let Value::Object(object) = resource else { return };
    let always = ["schemas", "id", "meta"];
    if !attributes.is_empty() {
        let mut kept = Map::new();
        for key in always {
            if let Some(v) = object.remove(key) {
                kept.insert(key.to_string(), v);
            }
        }
        for wanted in attributes {
            copy_path(kind, object, &mut kept, wanted);
        }
        *object = kept;
        return;
    }
    for name in excluded {
        let (target, local) = resolve_key(kind, name);
        match target {
            KeyTarget::Core(attr) if !always.contains(&attr.name) => match sub_name(local) {
                Some(sub) => {
                    if let Some(Value::Object(inner)) = object.get_mut(attr.name) {
                        inner.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                    }
                }
                None => {
                    object.remove(attr.name);
                }
            },
            KeyTarget::Extension(urn, _) => {
                object.remove(urn);
            }
            KeyTarget::ExtensionAttr(urn, attr) => {
                if let Some(Value::Object(inner)) = object.get_mut(urn) {
                    inner.remove(attr.name);
                }
            }
            _ => {}
        }
    }
}

/// `givenName` of `name.givenName`.
fn sub_name(local: &str) -> Option<&str> {
    local.split_once('.').map(|(_, sub)| sub)
}

fn copy_path(kind: ResourceKind, from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    let (target, local) = resolve_key(kind, path);
    match target {
        KeyTarget::Core(attr) => {
            let Some(value) = from.get(attr.name) else { return };
            match (sub_name(local), value) {
                (Some(sub), Value::Object(inner)) => {
                    if let Some((k, v)) = inner.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub)) {
                        let entry = to.entry(attr.name.to_string()).or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(map) = entry {
                            map.insert(k.clone(), v.clone());
                        }
                    }
                }
                _ => {
                    to.insert(attr.name.to_string(), value.clone());
                }
            }
        }
        KeyTarget::Extension(urn, _) => {
            if let Some(value) = from.get(urn) {
                to.insert(urn.to_string(), value.clone());
            }
        }
        KeyTarget::ExtensionAttr(urn, attr) => {
            if let Some(value) = from.get(urn).and_then(|v| v.get(attr.name)) {
                let entry = to.entry(urn.to_string()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = entry {
                    map.insert(attr.name.to_string(), value.clone());
                }
            }
        }
        KeyTarget::Ignored => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_canonicalises_names_and_coerces_what_idps_send() {
        let body = json!({
            "schemas": [USER], "id": "ignored", "username": "Dana@Acme.example", "ACTIVE": "False",
            "emails": [{ "Value": "dana@acme.example", "type": "work", "primary": "true" }],
            "name": { "givenname": "Dana" },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "Department": "Finance", "manager": "123" },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": 42,
            "password": "never stored", "groups": [{ "value": "x" }], "unknownThing": 1,
        });
        let cleaned = clean_resource(ResourceKind::User, &body).unwrap();
        assert_eq!(
            Value::Object(cleaned),
            json!({
                "userName": "Dana@Acme.example", "active": false,
                "emails": [{ "value": "dana@acme.example", "type": "work", "primary": true }],
                "name": { "givenName": "Dana" },
                ENTERPRISE: { "department": "Finance", "manager": { "value": "123" }, "employeeNumber": "42" },
            })
        );
        assert!(clean_resource(ResourceKind::User, &json!({ "active": "maybe" })).is_err());
        assert!(clean_resource(ResourceKind::User, &json!([1, 2])).is_err());
    }

    #[test]
    fn projection_keeps_identity_and_honours_lists() {
        let mut user = json!({ "schemas": [USER], "id": "1", "meta": {}, "userName": "a", "displayName": "A", "externalId": "e",
                               "name": { "givenName": "G", "familyName": "F" } });
        let mut only = user.clone();
        project(ResourceKind::User, &mut only, &["externalId".into(), "name.givenName".into()], &[]);
        assert_eq!(
            only,
            json!({ "schemas": [USER], "id": "1", "meta": {}, "externalId": "e", "name": { "givenName": "G" } })
        );
        project(ResourceKind::User, &mut user, &[], &["displayName".into(), "id".into(), "name.familyName".into()]);
        assert_eq!(
            user,
            json!({ "schemas": [USER], "id": "1", "meta": {}, "userName": "a", "externalId": "e", "name": { "givenName": "G" } })
        );
    }

    #[test]
    fn etags_round_trip() {
        assert_eq!(parse_etag(&etag(7)), Some(7));
        assert_eq!(parse_etag("\"7\""), Some(7));
        assert_eq!(parse_etag("*"), None);
    }
}
