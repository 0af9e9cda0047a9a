//! SSO connections: an organization's OIDC (later SAML) identity provider, its encrypted client
//! secret, claim mapping and IdP-group → role mappings. Creating, editing, turning off and
//! deleting one is audited; a connection that is the organization's only way in cannot be
//! turned off while password sign-in is off.

use super::actor::{Caller, RequestMeta};
use super::audit::{self, NewEvent};
use super::crypto::MasterKey;
use super::{validate, DomainError};
use crate::model::connections::{
    ConnectionDetail, ConnectionRow, ConnectionTestRun, OidcConnectionInput, PasswordSignIn, RoleMapping,
};
use crate::model::{Permission, Role};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The OIDC callback path; the redirect URI to register at the IdP is the public URL plus this.
pub const OIDC_CALLBACK_PATH: &str = "/sso/oidc/callback";

/// Everything the OIDC protocol needs to sign someone in through a connection (secret decrypted).
#[derive(Clone)]
pub struct OidcSettings {
    pub org_id: Uuid,
    pub connection_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub claim_email: String,
    pub claim_name: String,
    pub claim_groups: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("connection_id", &self.connection_id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn secret_context(connection_id: Uuid) -> String {
    format!("connection_secret:{connection_id}")
}

/// The checked fields every kind of connection has.
pub struct CommonFields {
    pub name: String,
    pub claim_email: String,
    pub claim_name: String,
    pub claim_groups: String,
    pub role_mappings: Vec<RoleMapping>,
}

pub fn check_common(
    name: &str,
    claim_email: &str,
    claim_name_: &str,
    claim_groups: &str,
    role_mappings: &str,
) -> Result<CommonFields, DomainError> {
    Ok(CommonFields {
        name: validate::label("Connection name", name, 100)?,
        claim_email: claim_name("Email claim", claim_email, "email")?,
        claim_name: claim_name("Name claim", claim_name_, "name")?,
        claim_groups: claim_name("Groups claim", claim_groups, "groups")?,
        role_mappings: parse_role_mappings(role_mappings)?,
    })
}

/// A checked OIDC connection input.
struct OidcFields {
    name: String,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: String,
    claim_email: String,
    claim_name: String,
    claim_groups: String,
    role_mappings: Vec<RoleMapping>,
}

/// An issuer must be an https URL (plain http only on this machine's loopback, for development)
/// without query or fragment; the trailing slash is kept as typed because issuers compare exactly.
pub fn issuer_url(input: &str) -> Result<String, DomainError> {
    let issuer = input.trim();
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        if !matches!(host, "127.0.0.1" | "localhost") && !rest.starts_with("[::1]") {
            return Err(DomainError::invalid(
                "The issuer must be an https:// URL (plain http is accepted only for 127.0.0.1 and localhost)",
            ));
        }
        rest
    } else {
        return Err(DomainError::invalid(
            "The issuer must be a URL starting with https://, e.g. https://acme.okta.com",
        ));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || issuer.len() > 500 || issuer.contains(['?', '#', ' ', '\n', '\r', '@']) {
        return Err(DomainError::invalid(format!(
            "{issuer:?} is not a valid issuer URL: it needs a host and no query, fragment or credentials"
        )));
    }
    Ok(issuer.to_string())
}

/// A claim name: letters, digits and `_ : . / -`.
fn claim_name(field: &str, input: &str, default: &str) -> Result<String, DomainError> {
    let value = input.trim();
    if value.is_empty() {
        return Ok(default.to_string());
    }
    if value.len() <= 100 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:./-".contains(&b)) {
        Ok(value.to_string())
    } else {
        Err(DomainError::invalid(format!(
            "{field} must be a claim name such as \"email\" (letters, digits, _ : . / -)"
        )))
    }
}

/// Space-separated scopes; `openid` is required.
fn scopes(input: &str) -> Result<String, DomainError> {
    let scopes: Vec<&str> = input.split_whitespace().collect();
    if scopes.is_empty() {
        return Ok("openid email profile".to_string());
    }
    if !scopes.contains(&"openid") {
        return Err(DomainError::invalid("Scopes must include openid"));
    }
    if scopes.len() > 20
        || scopes.iter().any(|s| s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
    {
        return Err(DomainError::invalid("Scopes must be at most 20 space-separated words"));
    }
    Ok(scopes.join(" "))
}

/// Parses `group = role` lines (blank lines and `#` comments ignored). Owners are never mapped.
pub fn parse_role_mappings(input: &str) -> Result<Vec<RoleMapping>, DomainError> {
    let mut mappings: Vec<RoleMapping> = Vec::new();
    for (number, line) in input.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((group, role)) = line.rsplit_once('=') else {
            return Err(DomainError::invalid(format!(
                "Role mapping line {number}: write it as \"group = role\", e.g. \"mandate-admins = admin\""
            )));
        };
        let group = group.trim();
        if group.is_empty() || group.len() > 200 {
            return Err(DomainError::invalid(format!(
                "Role mapping line {number}: the group name is missing or too long"
            )));
        }
        let role: Role = role.parse().map_err(|e| DomainError::invalid(format!("Role mapping line {number}: {e}")))?;
        if role == Role::Owner {
            return Err(DomainError::invalid(format!(
                "Role mapping line {number}: owners are never granted by a group; map to admin, approver or auditor"
            )));
        }
        if mappings.iter().any(|m| m.group == group) {
            return Err(DomainError::invalid(format!("Role mapping line {number}: {group:?} is mapped twice")));
        }
        if mappings.len() == 50 {
            return Err(DomainError::invalid("At most 50 role mappings per connection"));
        }
        mappings.push(RoleMapping { group: group.to_string(), role });
    }
    Ok(mappings)
}

fn check_oidc(input: &OidcConnectionInput, secret_required: bool) -> Result<OidcFields, DomainError> {
    let common =
        check_common(&input.name, &input.claim_email, &input.claim_name, &input.claim_groups, &input.role_mappings)?;
    let issuer = issuer_url(&input.issuer)?;
    let client_id = input.client_id.trim();
    if client_id.is_empty() || client_id.len() > 255 || client_id.chars().any(char::is_control) {
        return Err(DomainError::invalid("Enter the client id the IdP gave you (at most 255 characters)"));
    }
    let secret = input.client_secret.trim();
    if secret.len() > 1000 || secret.chars().any(char::is_control) {
        return Err(DomainError::invalid("The client secret is too long or contains control characters"));
    }
    if secret.is_empty() && secret_required {
        return Err(DomainError::invalid("Enter the client secret the IdP gave you"));
    }
    Ok(OidcFields {
        name: common.name,
        issuer,
        client_id: client_id.to_string(),
        client_secret: (!secret.is_empty()).then(|| secret.to_string()),
        scopes: scopes(&input.scopes)?,
        claim_email: common.claim_email,
        claim_name: common.claim_name,
        claim_groups: common.claim_groups,
        role_mappings: common.role_mappings,
    })
}

pub(super) async fn replace_role_mappings(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    mappings: &[RoleMapping],
) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!(
        "delete from connection_role_mappings where org_id = $1 and connection_id = $2",
        org_id,
        connection_id
    )
    .execute(&mut *conn)
    .await?;
    for mapping in mappings {
        // language=PostgreSQL
        sqlx::query!(
            "insert into connection_role_mappings (org_id, connection_id, idp_group, role) values ($1, $2, $3, $4)",
            org_id,
            connection_id,
            mapping.group,
            mapping.role.as_str()
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn mappings_json(mappings: &[RoleMapping]) -> serde_json::Value {
    json!(mappings.iter().map(|m| json!({ "group": m.group, "role": m.role.as_str() })).collect::<Vec<_>>())
}

/// Creates an OIDC connection (enabled). Test it before relying on it.
pub async fn create_oidc(
    pool: &PgPool,
    master: &MasterKey,
    caller: Caller<'_>,
    input: &OidcConnectionInput,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<Uuid, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let fields = check_oidc(input, true)?;
    let org_id = caller.org_id();
    let id = Uuid::new_v4();
    let secret = master.encrypt(fields.client_secret.unwrap_or_default().as_bytes(), &secret_context(id))?;
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into connections (org_id, id, kind, name, oidc_issuer, oidc_client_id, oidc_client_secret, oidc_scopes,
                                  claim_email, claim_name, claim_groups, created_at, updated_at)
         select $1, $2, 'oidc', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11 where exists (select 1 from organizations where id = $1)",
        org_id,
        id,
        fields.name,
        fields.issuer,
        fields.client_id,
        secret,
        fields.scopes,
        fields.claim_email,
        fields.claim_name,
        fields.claim_groups,
        now
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    replace_role_mappings(&mut tx, org_id, id, &fields.role_mappings).await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "connection.created").target("connection", id, &fields.name).details(
            json!({
                "type": "oidc",
                "issuer": fields.issuer,
                "client_id": fields.client_id,
                "scopes": fields.scopes,
                "role_mappings": mappings_json(&fields.role_mappings),
            }),
        ),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Edits an OIDC connection; an empty client secret keeps the stored one.
pub async fn update_oidc(
    pool: &PgPool,
    master: &MasterKey,
    caller: Caller<'_>,
    connection_id: Uuid,
    input: &OidcConnectionInput,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    caller.require(Permission::ManageAgents)?;
    let fields = check_oidc(input, false)?;
    let org_id = caller.org_id();
    let secret = match &fields.client_secret {
        Some(secret) => Some(master.encrypt(secret.as_bytes(), &secret_context(connection_id))?),
        None => None,
    };
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let updated = sqlx::query!(
        "update connections set name = $3, oidc_issuer = $4, oidc_client_id = $5,
                oidc_client_secret = coalesce($6, oidc_client_secret), oidc_scopes = $7,
                claim_email = $8, claim_name = $9, claim_groups = $10, updated_at = $11
         where org_id = $1 and id = $2 and kind = 'oidc'",
        org_id,
        connection_id,
        fields.name,
        fields.issuer,
        fields.client_id,
        secret,
        fields.scopes,
        fields.claim_email,
        fields.claim_name,
        fields.claim_groups,
        now
    )
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    replace_role_mappings(&mut tx, org_id, connection_id, &fields.role_mappings).await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "connection.updated")
            .target("connection", connection_id, &fields.name)
            .details(json!({
                "issuer": fields.issuer,
                "client_id": fields.client_id,
                "client_secret_replaced": fields.client_secret.is_some(),
                "scopes": fields.scopes,
                "claims": { "email": fields.claim_email, "name": fields.claim_name, "groups": fields.claim_groups },
                "role_mappings": mappings_json(&fields.role_mappings),
            })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refuses to take away the last way in: with password sign-in off, the last enabled connection
/// cannot be turned off or deleted.
async fn ensure_not_last_way_in(conn: &mut PgConnection, org_id: Uuid, connection_id: Uuid) -> Result<(), DomainError> {
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select o.password_sign_in,
                  (select count(*) from connections c where c.org_id = o.id and c.enabled and c.id <> $2) as "others!"
           from organizations o where o.id = $1 for update"#,
        org_id,
        connection_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if PasswordSignIn::parse(&row.password_sign_in) == Some(PasswordSignIn::Off) && row.others == 0 {
        return Err(DomainError::NotAllowed(
            "This is the only way admins can sign in: turn password sign-in back on in Settings first".into(),
        ));
    }
    Ok(())
}

/// Turns a connection on or off. Off: nobody signs in through it until it is turned back on.
pub async fn set_enabled(
    pool: &PgPool,
    caller: Caller<'_>,
    connection_id: Uuid,
    enabled: bool,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let mut tx = pool.begin().await?;
    if !enabled {
        ensure_not_last_way_in(&mut tx, org_id, connection_id).await?;
    }
    // language=PostgreSQL
    let name = sqlx::query_scalar!(
        "update connections set enabled = $3, updated_at = $4 where org_id = $1 and id = $2 returning name",
        org_id,
        connection_id,
        enabled,
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    let action = if enabled { "connection.enabled" } else { "connection.disabled" };
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), action).target("connection", connection_id, &name),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a connection with its sign-in identities (people and admins stay).
pub async fn delete(
    pool: &PgPool,
    caller: Caller<'_>,
    connection_id: Uuid,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let mut tx = pool.begin().await?;
    ensure_not_last_way_in(&mut tx, org_id, connection_id).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"delete from connections where org_id = $1 and id = $2
           returning name, kind, (select count(*) from sso_identities i where i.org_id = $1 and i.connection_id = $2) as "identities!""#,
        org_id,
        connection_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "connection.deleted")
            .target("connection", connection_id, &row.name)
            .details(json!({ "type": row.kind, "identities_removed": row.identities })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<ConnectionRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    rows(pool, caller.org_id(), None).await
}

async fn rows(pool: &PgPool, org_id: Uuid, id: Option<Uuid>) -> Result<Vec<ConnectionRow>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        ConnectionRow,
        r#"select c.id, c.kind, c.name, c.enabled, coalesce(c.oidc_issuer, c.saml_idp_entity_id) as issuer,
                  c.oidc_client_id as client_id, c.created_at,
                  (select count(*) from sso_identities i where i.org_id = c.org_id and i.connection_id = c.id) as "identities!",
                  (select max(i.last_login_at) from sso_identities i where i.org_id = c.org_id and i.connection_id = c.id) as last_sign_in_at,
                  (select t.succeeded from connection_tests t where t.org_id = c.org_id and t.connection_id = c.id
                   order by t.started_at desc limit 1) as last_test_succeeded
           from connections c where c.org_id = $1 and ($2::uuid is null or c.id = $2) order by c.created_at"#,
        org_id,
        id
    )
    .fetch_all(pool)
    .await?)
}

pub async fn detail(
    pool: &PgPool,
    master: &MasterKey,
    caller: Caller<'_>,
    connection_id: Uuid,
    public_url: &str,
) -> Result<ConnectionDetail, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    let connection = rows(pool, org_id, Some(connection_id)).await?.pop().ok_or(DomainError::NotFound)?;
    // language=PostgreSQL
    let settings = sqlx::query!(
        "select oidc_scopes, claim_email, claim_name, claim_groups from connections where org_id = $1 and id = $2",
        org_id,
        connection_id
    )
    .fetch_one(pool)
    .await?;
    Ok(ConnectionDetail {
        scopes: settings.oidc_scopes,
        claim_email: settings.claim_email,
        claim_name: settings.claim_name,
        claim_groups: settings.claim_groups,
        role_mappings: role_mappings(pool, org_id, connection_id).await?,
        redirect_uri: format!("{public_url}{OIDC_CALLBACK_PATH}"),
        tests: tests(pool, org_id, connection_id, 5).await?,
        saml: match connection.kind.as_str() {
            "saml" => Some(super::saml::detail(pool, master, connection_id, public_url).await?),
            _ => None,
        },
        connection,
    })
}

pub async fn role_mappings(
    executor: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    connection_id: Uuid,
) -> Result<Vec<RoleMapping>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select idp_group, role from connection_role_mappings where org_id = $1 and connection_id = $2 order by idp_group",
        org_id,
        connection_id
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|row| Ok(RoleMapping { group: row.idp_group, role: row.role.parse().map_err(DomainError::Internal)? }))
        .collect()
}

async fn tests(
    pool: &PgPool,
    org_id: Uuid,
    connection_id: Uuid,
    limit: i64,
) -> Result<Vec<ConnectionTestRun>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select id, started_at, succeeded, steps from connection_tests
         where org_id = $1 and connection_id = $2 order by started_at desc limit $3",
        org_id,
        connection_id,
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ConnectionTestRun {
                id: row.id,
                started_at: row.started_at,
                succeeded: row.succeeded,
                steps: serde_json::from_value(row.steps).map_err(|e| DomainError::Internal(e.to_string()))?,
            })
        })
        .collect()
}

/// A connection's OIDC settings with the client secret decrypted (any organization: the
/// connection id comes from a sign-in URL or a sign-in attempt).
pub async fn oidc_settings(
    pool: &PgPool,
    master: &MasterKey,
    connection_id: Uuid,
) -> Result<OidcSettings, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query!(
        "select org_id, name, enabled, oidc_issuer, oidc_client_id, oidc_client_secret, oidc_scopes,
                claim_email, claim_name, claim_groups
         from connections where id = $1 and kind = 'oidc'",
        connection_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    let (Some(issuer), Some(client_id), Some(sealed)) = (row.oidc_issuer, row.oidc_client_id, row.oidc_client_secret)
    else {
        return Err(DomainError::Internal("an OIDC connection lacks its issuer, client id or secret".into()));
    };
    let secret = master.decrypt(&sealed, &secret_context(connection_id))?;
    Ok(OidcSettings {
        org_id: row.org_id,
        connection_id,
        name: row.name,
        enabled: row.enabled,
        issuer,
        client_id,
        client_secret: String::from_utf8(secret)
            .map_err(|_| DomainError::Internal("client secret is not UTF-8".into()))?,
        scopes: row.oidc_scopes.split_whitespace().map(str::to_string).collect(),
        claim_email: row.claim_email,
        claim_name: row.claim_name,
        claim_groups: row.claim_groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert_eq!(issuer_url(" https://acme.okta.com ").unwrap(), "https://acme.okta.com");
        assert_eq!(issuer_url("https://login.example/tenant/v2.0/").unwrap(), "https://login.example/tenant/v2.0/");
        assert!(issuer_url("http://127.0.0.1:9000").is_ok());
        assert!(issuer_url("http://localhost:9000/oidc").is_ok());
        for bad in [
            "http://idp.example",
            "ftp://idp.example",
            "https://",
            "https://idp.example/?x=1",
            "https://u:p@idp.example",
            "idp.example",
        ] {
            assert!(issuer_url(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn role_mappings_parse_with_line_numbers() {
        let mappings = parse_role_mappings("# comment\nmandate-admins = admin\n\nSecurity Team=auditor\n").unwrap();
        assert_eq!(
            mappings,
            vec![
                RoleMapping { group: "mandate-admins".into(), role: Role::Admin },
                RoleMapping { group: "Security Team".into(), role: Role::Auditor },
            ]
        );
        let err = parse_role_mappings("a = admin\nb = owner").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("owners"), "{err}");
        assert!(parse_role_mappings("just-a-group").unwrap_err().to_string().contains("line 1"));
        assert!(parse_role_mappings("a = admin\na = auditor").unwrap_err().to_string().contains("twice"));
        assert!(parse_role_mappings("a = root").is_err());
    }

    #[test]
    fn scopes_need_openid_and_claims_are_names() {
        assert_eq!(scopes("").unwrap(), "openid email profile");
        assert_eq!(scopes(" openid  groups ").unwrap(), "openid groups");
        assert!(scopes("email profile").is_err());
        assert_eq!(claim_name("Email claim", "", "email").unwrap(), "email");
        assert_eq!(
            claim_name("Groups claim", "https://acme.example/groups", "groups").unwrap(),
            "https://acme.example/groups"
        );
        assert!(claim_name("Email claim", "e mail", "email").is_err());
    }
}
