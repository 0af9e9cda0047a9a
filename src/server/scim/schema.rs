//! The schemas this server publishes (RFC 7643 §7) and the attribute knowledge the SCIM layer
//! needs: canonical (case-preserving) names for case-insensitive input, types for coercing what
//! IdPs send (`"active": "False"`), and mutability. Only attributes stored and echoed exactly are
//! published; anything else a client sends is ignored.

use serde_json::{json, Value};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    Reference,
    Complex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadWrite,
    ReadOnly,
    Immutable,
}

#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub unique: bool,
    pub sub: &'static [Attr],
    pub canonical: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub description: &'static str,
}

const fn attr(name: &'static str, kind: Kind, description: &'static str) -> Attr {
    Attr {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        sub: &[],
        canonical: &[],
        reference_types: &[],
        description,
    }
}

const fn string(name: &'static str, description: &'static str) -> Attr {
    attr(name, Kind::String, description)
}

const fn multi_value(kind_values: &'static [&'static str], description: &'static str) -> [Attr; 4] {
    [
        string("value", description),
        string("display", "A human-readable name, primarily used for display purposes"),
        Attr { canonical: kind_values, ..string("type", "A label indicating the attribute's function") },
        attr("primary", Kind::Boolean, "Whether this is the primary value"),
    ]
}

static NAME_SUB: [Attr; 6] = [
    string("formatted", "The full name, formatted for display"),
    string("familyName", "The family name"),
    string("givenName", "The given name"),
    string("middleName", "The middle name"),
    string("honorificPrefix", "The honorific prefix"),
    string("honorificSuffix", "The honorific suffix"),
];
static EMAIL_SUB: [Attr; 4] = multi_value(&["work", "home", "other"], "The email address");
static PHONE_SUB: [Attr; 4] = multi_value(&["work", "home", "mobile", "fax", "pager", "other"], "The phone number");
static USER_GROUPS_SUB: [Attr; 4] = [
    Attr { mutability: Mutability::ReadOnly, ..string("value", "The identifier of the group") },
    Attr {
        mutability: Mutability::ReadOnly,
        reference_types: &["Group"],
        ..attr("$ref", Kind::Reference, "The URI of the group")
    },
    Attr { mutability: Mutability::ReadOnly, ..string("display", "The group's display name") },
    Attr {
        mutability: Mutability::ReadOnly,
        canonical: &["direct"],
        ..string("type", "How the membership was derived")
    },
];

pub static USER_ATTRS: [Attr; 16] = [
    Attr {
        required: true,
        unique: true,
        ..string("userName", "Unique identifier for the user, typically the sign-in name")
    },
    Attr { sub: &NAME_SUB, ..attr("name", Kind::Complex, "The components of the user's name") },
    string("displayName", "The name of the user, suitable for display"),
    string("nickName", "The casual way to address the user"),
    Attr {
        reference_types: &["external"],
        ..attr("profileUrl", Kind::Reference, "A URI of the user's online profile")
    },
    string("title", "The user's title, such as Vice President"),
    string("userType", "The relationship between the organization and the user"),
    string("preferredLanguage", "The user's preferred written or spoken language"),
    string("locale", "The user's default location for localisation"),
    string("timezone", "The user's time zone in IANA format"),
    attr("active", Kind::Boolean, "Whether the user may act in the organization: false makes them a leaver"),
    Attr { multi: true, sub: &EMAIL_SUB, ..attr("emails", Kind::Complex, "Email addresses of the user") },
    Attr { multi: true, sub: &PHONE_SUB, ..attr("phoneNumbers", Kind::Complex, "Phone numbers of the user") },
    Attr {
        multi: true,
        mutability: Mutability::ReadOnly,
        sub: &USER_GROUPS_SUB,
        ..attr("groups", Kind::Complex, "Groups the user belongs to")
    },
    // Kept last: never sent by clients to us as writable data, published for completeness.
    Attr {
        mutability: Mutability::ReadOnly,
        case_exact: true,
        ..string("id", "Unique identifier assigned by the service provider")
    },
    Attr { case_exact: true, ..string("externalId", "Identifier assigned by the provisioning client") },
];

static MANAGER_SUB: [Attr; 2] = [
    string("value", "The id of the user's manager"),
    Attr { reference_types: &["User"], ..attr("$ref", Kind::Reference, "The URI of the manager") },
];

pub static ENTERPRISE_ATTRS: [Attr; 6] = [
    string("employeeNumber", "A string identifier of the user, typically assigned by HR"),
    string("costCenter", "The name of a cost center"),
    string("organization", "The name of an organization"),
    string("division", "The name of a division"),
    string("department", "The name of a department"),
    Attr { sub: &MANAGER_SUB, ..attr("manager", Kind::Complex, "The user's manager") },
];

static MEMBER_SUB: [Attr; 3] = [
    Attr { mutability: Mutability::Immutable, ..string("value", "The id of the member") },
    Attr {
        mutability: Mutability::Immutable,
        reference_types: &["User", "Group"],
        ..attr("$ref", Kind::Reference, "The URI of the member")
    },
    Attr {
        mutability: Mutability::Immutable,
        canonical: &["User", "Group"],
        ..string("type", "The type of the member")
    },
];

pub static GROUP_ATTRS: [Attr; 4] = [
    Attr { required: true, ..string("displayName", "A human-readable name for the group") },
    Attr { multi: true, sub: &MEMBER_SUB, ..attr("members", Kind::Complex, "The members of the group") },
    Attr {
        mutability: Mutability::ReadOnly,
        case_exact: true,
        ..string("id", "Unique identifier assigned by the service provider")
    },
    Attr { case_exact: true, ..string("externalId", "Identifier assigned by the provisioning client") },
];

/// Attributes of a schema that clients may send and `/Schemas` describes (id and externalId
/// are common attributes, handled outside the published lists).
pub fn published(attrs: &'static [Attr]) -> impl Iterator<Item = &'static Attr> {
    attrs.iter().filter(|a| a.name != "id" && a.name != "externalId")
}

pub fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

fn describe(attr: &Attr) -> Value {
    let kind = match attr.kind {
        Kind::String => "string",
        Kind::Boolean => "boolean",
        Kind::Reference => "reference",
        Kind::Complex => "complex",
    };
    let mut value = json!({
        "name": attr.name,
        "type": kind,
        "multiValued": attr.multi,
        "description": attr.description,
        "required": attr.required,
        "caseExact": attr.case_exact,
        "mutability": match attr.mutability { Mutability::ReadWrite => "readWrite", Mutability::ReadOnly => "readOnly", Mutability::Immutable => "immutable" },
        "returned": "default",
        "uniqueness": if attr.unique { "server" } else { "none" },
    });
    if !attr.sub.is_empty() {
        value["subAttributes"] = Value::Array(attr.sub.iter().map(describe).collect());
    }
    if !attr.canonical.is_empty() {
        value["canonicalValues"] = json!(attr.canonical);
    }
    if attr.kind == Kind::Reference {
        value["referenceTypes"] = json!(attr.reference_types);
    }
    value
}

fn schema_document(id: &str, name: &str, description: &str, attrs: &'static [Attr], location: &str) -> Value {
    json!({
        "schemas": [SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": published(attrs).map(describe).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("{location}/Schemas/{id}") },
    })
}

/// `/Schemas` items.
pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        schema_document(USER, "User", "User account", &USER_ATTRS, base),
        schema_document(ENTERPRISE, "EnterpriseUser", "Enterprise user", &ENTERPRISE_ATTRS, base),
        schema_document(GROUP, "Group", "Group", &GROUP_ATTRS, base),
    ]
}

/// `/ResourceTypes` items.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE], "id": "User", "name": "User", "endpoint": "/Users", "description": "User account",
            "schema": USER, "schemaExtensions": [{ "schema": ENTERPRISE, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": [RESOURCE_TYPE], "id": "Group", "name": "Group", "endpoint": "/Groups", "description": "Group",
            "schema": GROUP, "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

pub const MAX_RESULTS: i64 = 1000;
pub const DEFAULT_COUNT: i64 = 500;

/// `/ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Directory bearer token",
            "description": "The bearer token shown once when the directory was created in Mandate",
            "primary": true,
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig") },
    })
}
