//! What every SSO connection has, whatever its protocol: a name, the claim (or attribute) names
//! for email, name and groups, and IdP-group → role mappings; with the rules that check them.

use crate::model::connections::RoleMapping;
use crate::model::Role;
use crate::server::domain::{validate, DomainError};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

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
pub(crate) fn claim_name(field: &str, input: &str, default: &str) -> Result<String, DomainError> {
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

pub(crate) async fn replace_role_mappings(
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

/// Unlinks a connection's identities: those learned from any IdP but `keep` (the OIDC issuer or
/// SAML entity id it now trusts), or all of them when `keep` is `None` (a SAML connection whose
/// certificates were all replaced: the entity id is only a name, the keys are the trust). A
/// connection repointed at another IdP does not inherit its people, who link again the way
/// first sign-ins do. Returns how many were unlinked.
pub(crate) async fn unlink_identities(
    conn: &mut PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    keep: Option<&str>,
) -> Result<u64, DomainError> {
    // language=PostgreSQL
    let deleted = sqlx::query!(
        "delete from sso_identities where org_id = $1 and connection_id = $2 and ($3::text is null or issuer <> $3)",
        org_id,
        connection_id,
        keep
    )
    .execute(&mut *conn)
    .await?;
    Ok(deleted.rows_affected())
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

pub(crate) fn mappings_json(mappings: &[RoleMapping]) -> serde_json::Value {
    json!(mappings.iter().map(|m| json!({ "group": m.group, "role": m.role.as_str() })).collect::<Vec<_>>())
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
    fn claims_are_names() {
        assert_eq!(claim_name("Email claim", "", "email").unwrap(), "email");
        assert_eq!(
            claim_name("Groups claim", "https://acme.example/groups", "groups").unwrap(),
            "https://acme.example/groups"
        );
        assert!(claim_name("Email claim", "e mail", "email").is_err());
    }
}
