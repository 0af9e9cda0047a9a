//! OIDC connections: the issuer, the client id and its secret (encrypted at rest under the
//! master key, never returned), the scopes asked for, and the shared claim and role mapping.

use crate::model::connections::{OidcConnectionInput, RoleMapping};
use crate::model::Permission;
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::sso::fields::{
    check_common, issuer_url, mappings_json, replace_role_mappings, unlink_identities,
};
use crate::server::domain::Call;
use crate::server::domain::DomainError;
use serde_json::json;
use sqlx::PgPool;
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
    trusts_idp_email: bool,
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
        trusts_idp_email: input.trusts_idp_email,
    })
}

/// Creates an OIDC connection, turned off until a Test connection run passes (or an owner turns
/// it on without one). Permission: SSO trust.
pub async fn create(
    pool: &PgPool,
    master: &MasterKey,
    call: Call<'_>,
    input: &OidcConnectionInput,
) -> Result<Uuid, DomainError> {
    call.require(Permission::ChangeSsoTrust)?;
    let fields = check_oidc(input, true)?;
    let org_id = call.org_id();
    let id = Uuid::new_v4();
    let secret = master.encrypt(fields.client_secret.unwrap_or_default().as_bytes(), &secret_context(id))?;
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into connections (org_id, id, kind, name, oidc_issuer, oidc_client_id, oidc_client_secret, oidc_scopes,
                                  claim_email, claim_name, claim_groups, trusts_idp_email, enabled,
                                  created_at, updated_at, trust_changed_at)
         select $1, $2, 'oidc', $3, $4, $5, $6, $7, $8, $9, $10, $12, false, $11, $11, $11
         where exists (select 1 from organizations where id = $1)",
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
        call.now,
        fields.trusts_idp_email
    )
    .execute(work.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    replace_role_mappings(work.conn(), org_id, id, &fields.role_mappings).await?;
    work.record(work.event("connection.created").target("connection", id, &fields.name).details(json!({
        "type": "oidc",
        "issuer": fields.issuer,
        "client_id": fields.client_id,
        "scopes": fields.scopes,
        "role_mappings": mappings_json(&fields.role_mappings),
        "trusts_idp_email": fields.trusts_idp_email,
        "enabled": false,
    })))
    .await?;
    work.commit().await?;
    Ok(id)
}

/// Edits an OIDC connection; an empty client secret keeps the stored one. A new issuer unlinks
/// the identities of the old one. Permission: SSO trust.
pub async fn update(
    pool: &PgPool,
    master: &MasterKey,
    call: Call<'_>,
    connection_id: Uuid,
    input: &OidcConnectionInput,
) -> Result<(), DomainError> {
    call.require(Permission::ChangeSsoTrust)?;
    let fields = check_oidc(input, false)?;
    let org_id = call.org_id();
    let secret = match &fields.client_secret {
        Some(secret) => Some(master.encrypt(secret.as_bytes(), &secret_context(connection_id))?),
        None => None,
    };
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let updated = sqlx::query!(
        "update connections set name = $3, oidc_issuer = $4, oidc_client_id = $5,
                oidc_client_secret = coalesce($6, oidc_client_secret), oidc_scopes = $7,
                claim_email = $8, claim_name = $9, claim_groups = $10, trusts_idp_email = $12,
                updated_at = $11, trust_changed_at = $11
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
        call.now,
        fields.trusts_idp_email
    )
    .execute(work.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    let unlinked = unlink_identities(work.conn(), org_id, connection_id, Some(&fields.issuer)).await?;
    replace_role_mappings(work.conn(), org_id, connection_id, &fields.role_mappings).await?;
    work.record(work.event("connection.updated").target("connection", connection_id, &fields.name).details(json!({
        "issuer": fields.issuer,
        "client_id": fields.client_id,
        "client_secret_replaced": fields.client_secret.is_some(),
        "scopes": fields.scopes,
        "claims": { "email": fields.claim_email, "name": fields.claim_name, "groups": fields.claim_groups },
        "role_mappings": mappings_json(&fields.role_mappings),
        "trusts_idp_email": fields.trusts_idp_email,
        "identities_unlinked": unlinked,
    })))
    .await?;
    work.commit().await?;
    Ok(())
}

/// A connection's OIDC settings with the client secret decrypted (any organization: the
/// connection id comes from a sign-in URL or a sign-in attempt).
pub async fn settings(pool: &PgPool, master: &MasterKey, connection_id: Uuid) -> Result<OidcSettings, DomainError> {
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
    fn scopes_need_openid() {
        assert_eq!(scopes("").unwrap(), "openid email profile");
        assert_eq!(scopes(" openid  groups ").unwrap(), "openid groups");
        assert!(scopes("email profile").is_err());
    }
}
