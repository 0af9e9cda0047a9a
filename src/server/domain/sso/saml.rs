//! SAML connections' own rules: the IdP's entity id and SSO URL, its pinned signing
//! certificates (parsed here for their expiry; two may be active while the IdP rotates, the
//! last one cannot be removed), the SP identifiers we publish, and the single use of every
//! assertion id. Metadata fetching and XML signature checks live in `server::auth::saml`.

use crate::model::connections::{CertificateRow, ExpiringCertificate, SamlConnectionInput, SamlDetail};
use crate::model::Permission;
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::sso::fields::{check_common, replace_role_mappings, unlink_identities, CommonFields};
use crate::server::domain::Call;
use crate::server::domain::DomainError;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Certificates expiring within this window are flagged on the dashboard.
pub const EXPIRY_WARNING: Duration = Duration::days(60);
const MAX_CERTIFICATES: usize = 4;

/// A parsed X.509 certificate.
#[derive(Clone, Debug)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub fingerprint: String,
    pub subject: String,
    pub not_after: OffsetDateTime,
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Certificate, DomainError> {
        let x509 = openssl::x509::X509::from_der(der)
            .map_err(|_| DomainError::invalid("A signing certificate is not a valid X.509 certificate"))?;
        let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|e| DomainError::Internal(e.to_string()))?;
        let age = epoch.diff(x509.not_after()).map_err(|e| DomainError::Internal(e.to_string()))?;
        let not_after =
            OffsetDateTime::UNIX_EPOCH + Duration::days(age.days.into()) + Duration::seconds(age.secs.into());
        let subject = x509
            .subject_name()
            .entries()
            .filter_map(|entry| {
                let key = entry.object().nid().short_name().unwrap_or("?");
                entry.data().to_string().ok().map(|value| format!("{key}={value}"))
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Certificate { der: der.to_vec(), fingerprint: hex::encode(Sha256::digest(der)), subject, not_after })
    }

    /// Every certificate in PEM text (one or more `BEGIN CERTIFICATE` blocks), or one bare
    /// base64 certificate as IdP metadata carries it.
    pub fn parse_many(text: &str) -> Result<Vec<Certificate>, DomainError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let ders: Vec<Vec<u8>> = if text.contains("-----BEGIN") {
            openssl::x509::X509::stack_from_pem(text.as_bytes())
                .map_err(|_| DomainError::invalid("The certificate text is not valid PEM"))?
                .into_iter()
                .map(|x509| x509.to_der().map_err(|e| DomainError::Internal(e.to_string())))
                .collect::<Result<_, _>>()?
        } else {
            use base64::Engine;
            let compact: String = text.split_whitespace().collect();
            vec![base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| DomainError::invalid("The certificate is neither PEM nor base64"))?]
        };
        ders.iter().map(|der| Certificate::from_der(der)).collect()
    }
}

/// What the IdP told us about itself (from metadata or typed in), checked.
#[derive(Clone, Debug)]
pub struct IdpSettings {
    pub entity_id: String,
    pub sso_url: String,
    pub metadata_url: Option<String>,
    pub certificates: Vec<Certificate>,
}

/// Everything the SAML protocol needs for one connection.
#[derive(Clone, Debug)]
pub struct SamlSettings {
    pub org_id: Uuid,
    pub connection_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub idp: IdpSettings,
    pub allow_idp_initiated: bool,
    /// Our signing key for AuthnRequests (DER, decrypted) and its certificate, when on.
    pub request_signing: Option<SpKey>,
    pub claim_email: String,
    pub claim_name: String,
    pub claim_groups: String,
}

/// The key this SP signs AuthnRequests with for one connection.
#[derive(Clone)]
pub struct SpKey {
    pub key_der: Vec<u8>,
    pub certificate_der: Vec<u8>,
}

impl std::fmt::Debug for SpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpKey(<redacted>)")
    }
}

fn sp_key_context(connection_id: Uuid) -> String {
    format!("saml_sp_key:{connection_id}")
}

/// A fresh RSA-2048 key and a self-signed certificate valid for `days` (both DER): our request
/// signing key, and the stand-in for an IdP's certificate in the demo and the tests.
pub fn generate_key_and_certificate(common_name: &str, days: u32) -> Result<(Vec<u8>, Vec<u8>), DomainError> {
    use openssl::{asn1::Asn1Time, bn::BigNum, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
    let build = || -> Result<(Vec<u8>, Vec<u8>), openssl::error::ErrorStack> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let mut name = x509::X509NameBuilder::new()?;
        name.append_entry_by_text("CN", common_name)?;
        let name = name.build();
        let mut builder = x509::X509Builder::new()?;
        builder.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
        let serial = serial.to_asn1_integer()?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(days)?);
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.sign(&key, MessageDigest::sha256())?;
        Ok((key.private_key_to_der()?, builder.build().to_der()?))
    };
    build().map_err(|e| DomainError::Internal(format!("could not generate a key: {e}")))
}

/// Makes sure a connection that signs its requests has a key (made once, kept encrypted).
async fn ensure_sp_key(
    conn: &mut sqlx::PgConnection,
    master: &MasterKey,
    org_id: Uuid,
    connection_id: Uuid,
    sign_requests: bool,
) -> Result<(), DomainError> {
    // language=PostgreSQL
    let has_key = sqlx::query_scalar!(
        r#"select saml_sp_key is not null as "has!" from connections where org_id = $1 and id = $2"#,
        org_id,
        connection_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !sign_requests || has_key {
        return Ok(());
    }
    let (key, certificate) = generate_key_and_certificate(&format!("Mandate SP {connection_id}"), 3650)?;
    let sealed = master.encrypt(&key, &sp_key_context(connection_id))?;
    // language=PostgreSQL
    sqlx::query!(
        "update connections set saml_sp_key = $3, saml_sp_certificate = $4 where org_id = $1 and id = $2",
        org_id,
        connection_id,
        sealed,
        certificate
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Our entity id (the SP metadata URL, which also makes it resolvable).
pub fn sp_entity_id(public_url: &str, connection_id: Uuid) -> String {
    format!("{public_url}/sso/saml/{connection_id}/metadata")
}

pub fn acs_url(public_url: &str, connection_id: Uuid) -> String {
    format!("{public_url}/sso/saml/{connection_id}/acs")
}

fn check_idp(idp: &IdpSettings) -> Result<(), DomainError> {
    if idp.entity_id.trim().is_empty() || idp.entity_id.len() > 500 {
        return Err(DomainError::invalid("Enter the IdP's entity id (issuer), at most 500 characters"));
    }
    crate::server::domain::sso::fields::issuer_url(&idp.sso_url).map_err(|_| {
        DomainError::invalid(
            "The IdP's single sign-on URL must be an https:// URL (http only on 127.0.0.1 or localhost)",
        )
    })?;
    if idp.certificates.is_empty() {
        return Err(DomainError::invalid(
            "Add the IdP's signing certificate: Mandate only accepts answers signed with a certificate you pinned",
        ));
    }
    if idp.certificates.len() > MAX_CERTIFICATES {
        return Err(DomainError::invalid(format!("At most {MAX_CERTIFICATES} signing certificates per connection")));
    }
    Ok(())
}

fn common_of(input: &SamlConnectionInput) -> Result<CommonFields, DomainError> {
    check_common(&input.name, &input.claim_email, &input.claim_name, &input.claim_groups, &input.role_mappings)
}

async fn replace_certificates(
    conn: &mut sqlx::PgConnection,
    org_id: Uuid,
    connection_id: Uuid,
    certificates: &[Certificate],
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!("delete from saml_certificates where org_id = $1 and connection_id = $2", org_id, connection_id)
        .execute(&mut *conn)
        .await?;
    for cert in certificates {
        // language=PostgreSQL
        sqlx::query!(
            "insert into saml_certificates (org_id, connection_id, fingerprint, der, subject, not_after, created_at)
             values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
            org_id,
            connection_id,
            cert.fingerprint,
            cert.der,
            cert.subject,
            cert.not_after,
            now
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Creates a SAML connection from checked IdP settings, turned off until a Test connection run
/// passes (or an owner turns it on without one). Permission: SSO trust.
pub async fn create(
    pool: &PgPool,
    master: &MasterKey,
    call: Call<'_>,
    input: &SamlConnectionInput,
    idp: &IdpSettings,
) -> Result<Uuid, DomainError> {
    call.require(Permission::ChangeSsoTrust)?;
    let common = common_of(input)?;
    check_idp(idp)?;
    let org_id = call.org_id();
    let id = Uuid::new_v4();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into connections (org_id, id, kind, name, saml_idp_entity_id, saml_sso_url, saml_metadata_url,
                                  saml_allow_idp_initiated, claim_email, claim_name, claim_groups, created_at, updated_at,
                                  saml_sign_requests, trusts_idp_email, enabled, trust_changed_at)
         select $1, $2, 'saml', $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, false, $11
         where exists (select 1 from organizations where id = $1)",
        org_id,
        id,
        common.name,
        idp.entity_id.trim(),
        idp.sso_url.trim(),
        idp.metadata_url,
        input.allow_idp_initiated,
        common.claim_email,
        common.claim_name,
        common.claim_groups,
        call.now,
        input.sign_requests,
        input.trusts_idp_email
    )
    .execute(work.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    ensure_sp_key(work.conn(), master, org_id, id, input.sign_requests).await?;
    replace_role_mappings(work.conn(), org_id, id, &common.role_mappings).await?;
    replace_certificates(work.conn(), org_id, id, &idp.certificates, call.now).await?;
    work.record(work.event("connection.created").target("connection", id, &common.name).details(json!({
            "type": "saml",
            "idp_entity_id": idp.entity_id,
            "sso_url": idp.sso_url,
            "metadata_url": idp.metadata_url,
            "certificates": idp.certificates.iter().map(|c| json!({ "fingerprint": c.fingerprint, "not_after": c.not_after.unix_timestamp() })).collect::<Vec<_>>(),
            "idp_initiated": input.allow_idp_initiated,
            "signed_requests": input.sign_requests,
            "trusts_idp_email": input.trusts_idp_email,
            "enabled": false,
        }))).await?;
    work.commit().await?;
    Ok(id)
}

/// Replaces a SAML connection's settings. Certificates given replace the pinned ones (rotation
/// is "save with both, then with the new one"); none given keeps them. A new IdP entity id, or
/// certificates none of which was pinned before, unlink the connection's identities.
/// Permission: SSO trust.
pub async fn update(
    pool: &PgPool,
    master: &MasterKey,
    call: Call<'_>,
    connection_id: Uuid,
    input: &SamlConnectionInput,
    idp: &IdpSettings,
) -> Result<(), DomainError> {
    call.require(Permission::ChangeSsoTrust)?;
    let common = common_of(input)?;
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // No certificate given: the pinned ones stay.
    let mut idp = idp.clone();
    let previous = certificates(work.conn(), connection_id).await?;
    if idp.certificates.is_empty() {
        // language=PostgreSQL
        let owned = sqlx::query_scalar!(
            r#"select exists (select 1 from connections where org_id = $1 and id = $2) as "owned!""#,
            org_id,
            connection_id
        )
        .fetch_one(work.conn())
        .await?;
        if owned {
            idp.certificates = previous.clone();
        }
    }
    check_idp(&idp)?;
    // language=PostgreSQL
    let updated = sqlx::query!(
        "update connections set name = $3, saml_idp_entity_id = $4, saml_sso_url = $5,
                saml_metadata_url = coalesce($6, saml_metadata_url),
                saml_allow_idp_initiated = $7, claim_email = $8, claim_name = $9, claim_groups = $10, updated_at = $11,
                saml_sign_requests = $12, trusts_idp_email = $13, trust_changed_at = $11
         where org_id = $1 and id = $2 and kind = 'saml'",
        org_id,
        connection_id,
        common.name,
        idp.entity_id.trim(),
        idp.sso_url.trim(),
        idp.metadata_url,
        input.allow_idp_initiated,
        common.claim_email,
        common.claim_name,
        common.claim_groups,
        call.now,
        input.sign_requests,
        input.trusts_idp_email
    )
    .execute(work.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    // None of the pinned keys stays: whoever holds the new ones is another IdP, whatever its
    // entity id says.
    let rekeyed = !idp.certificates.iter().any(|c| previous.iter().any(|p| p.fingerprint == c.fingerprint));
    let keep = (!rekeyed).then(|| idp.entity_id.trim());
    let unlinked = unlink_identities(work.conn(), org_id, connection_id, keep).await?;
    ensure_sp_key(work.conn(), master, org_id, connection_id, input.sign_requests).await?;
    replace_role_mappings(work.conn(), org_id, connection_id, &common.role_mappings).await?;
    replace_certificates(work.conn(), org_id, connection_id, &idp.certificates, call.now).await?;
    work.record(work.event("connection.updated").target("connection", connection_id, &common.name).details(json!({
        "idp_entity_id": idp.entity_id,
        "sso_url": idp.sso_url,
        "certificates": idp.certificates.iter().map(|c| c.fingerprint.clone()).collect::<Vec<_>>(),
        "idp_initiated": input.allow_idp_initiated,
        "trusts_idp_email": input.trusts_idp_email,
        "identities_unlinked": unlinked,
    })))
    .await?;
    work.commit().await?;
    Ok(())
}

async fn certificates(
    executor: impl sqlx::PgExecutor<'_>,
    connection_id: Uuid,
) -> Result<Vec<Certificate>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select der, fingerprint, subject, not_after from saml_certificates where connection_id = $1 order by not_after",
        connection_id
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Certificate { der: r.der, fingerprint: r.fingerprint, subject: r.subject, not_after: r.not_after })
        .collect())
}

/// A SAML connection's settings (any organization: the id comes from the ACS URL).
pub async fn settings(pool: &PgPool, master: &MasterKey, connection_id: Uuid) -> Result<SamlSettings, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query!(
        "select org_id, name, enabled, saml_idp_entity_id, saml_sso_url, saml_metadata_url, saml_allow_idp_initiated,
                claim_email, claim_name, claim_groups, saml_sign_requests, saml_sp_key, saml_sp_certificate
         from connections where id = $1 and kind = 'saml'",
        connection_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok(SamlSettings {
        org_id: row.org_id,
        connection_id,
        name: row.name,
        enabled: row.enabled,
        idp: IdpSettings {
            entity_id: row.saml_idp_entity_id.unwrap_or_default(),
            sso_url: row.saml_sso_url.unwrap_or_default(),
            metadata_url: row.saml_metadata_url,
            certificates: certificates(pool, connection_id).await?,
        },
        allow_idp_initiated: row.saml_allow_idp_initiated,
        request_signing: match (row.saml_sign_requests, row.saml_sp_key, row.saml_sp_certificate) {
            (true, Some(sealed), Some(certificate_der)) => {
                Some(SpKey { key_der: master.decrypt(&sealed, &sp_key_context(connection_id))?, certificate_der })
            }
            _ => None,
        },
        claim_email: row.claim_email,
        claim_name: row.claim_name,
        claim_groups: row.claim_groups,
    })
}

/// The portal's view of a SAML connection.
pub async fn detail(
    pool: &PgPool,
    master: &MasterKey,
    connection_id: Uuid,
    public_url: &str,
) -> Result<SamlDetail, DomainError> {
    let settings = settings(pool, master, connection_id).await?;
    Ok(SamlDetail {
        sp_entity_id: sp_entity_id(public_url, connection_id),
        acs_url: acs_url(public_url, connection_id),
        metadata_url: sp_entity_id(public_url, connection_id),
        idp_entity_id: settings.idp.entity_id,
        idp_sso_url: settings.idp.sso_url,
        idp_metadata_url: settings.idp.metadata_url,
        allow_idp_initiated: settings.allow_idp_initiated,
        sign_requests: settings.request_signing.is_some(),
        certificates: settings
            .idp
            .certificates
            .into_iter()
            .map(|c| CertificateRow {
                days_left: (c.not_after - OffsetDateTime::now_utc()).whole_days(),
                fingerprint: c.fingerprint,
                subject: c.subject,
                not_after: c.not_after,
            })
            .collect(),
    })
}

/// Records an assertion id as used; `false` when it was used before (a replay).
pub async fn use_assertion_id(
    pool: &PgPool,
    connection_id: Uuid,
    assertion_id: &str,
    expires_at: OffsetDateTime,
) -> Result<bool, DomainError> {
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into saml_assertion_ids (connection_id, assertion_id, expires_at) values ($1, $2, $3) on conflict do nothing",
        connection_id,
        assertion_id,
        expires_at
    )
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Deletes assertion ids that could no longer be accepted (housekeeping).
pub async fn delete_expired_assertion_ids(pool: &PgPool, now: OffsetDateTime) -> Result<u64, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query!("delete from saml_assertion_ids where expires_at < $1", now).execute(pool).await?.rows_affected())
}

/// Signing certificates of the caller's organization that expire within `EXPIRY_WARNING`.
pub async fn expiring_certificates(
    pool: &PgPool,
    org_id: Uuid,
    now: OffsetDateTime,
) -> Result<Vec<ExpiringCertificate>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        ExpiringCertificate,
        "select c.id as connection_id, c.name as connection_name, s.not_after
         from saml_certificates s join connections c on c.org_id = s.org_id and c.id = s.connection_id
         where s.org_id = $1 and s.not_after < $2 order by s.not_after",
        org_id,
        now + EXPIRY_WARNING
    )
    .fetch_all(pool)
    .await?)
}
