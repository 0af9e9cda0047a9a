//! The email domains an organization claims. A domain is proven with a DNS TXT record whose
//! value the portal shows; once verified it belongs to that organization alone, and sign-ins
//! with an address at that domain go through the organization's connection. Consumer mail
//! domains are refused: nobody owns gmail.com's people.

use crate::model::connections::{DomainRow, PasswordSignIn};
use crate::model::Permission;
use crate::server::domain::actor::{Caller, RequestMeta};
use crate::server::domain::audit::{self, NewEvent};
use crate::server::domain::error::ResultExt;
use crate::server::domain::sso::dns::TxtResolver;
use crate::server::domain::Call;
use crate::server::domain::Work;
use crate::server::domain::{validate, DomainError};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

/// Where the TXT record goes, under the claimed domain.
pub const RECORD_LABEL: &str = "_mandate-verification";
const RECORD_VALUE_PREFIX: &str = "mandate-verification=";
const MAX_DOMAINS: i64 = 50;

/// Mail domains anyone can get an address at.
const CONSUMER_DOMAINS: [&str; 30] = [
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.ru",
    "yandex.com",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
];

pub fn record_name(domain: &str) -> String {
    format!("{RECORD_LABEL}.{domain}")
}

pub fn record_value(token: &str) -> String {
    format!("{RECORD_VALUE_PREFIX}{token}")
}

/// The domain part of an email address, lower-cased.
pub fn of_email(email: &str) -> Option<String> {
    let (_, domain) = email.trim().rsplit_once('@')?;
    validate::domain(domain).ok()
}

/// Permission: view portal.
pub async fn list(pool: &PgPool, caller: Caller<'_>) -> Result<Vec<DomainRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select domain, verified_at, verification_token, last_checked_at, last_check_error
         from organization_domains where org_id = $1 order by domain",
        caller.org_id()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| DomainRow {
            record_name: record_name(&row.domain),
            record_value: record_value(&row.verification_token),
            domain: row.domain,
            verified_at: row.verified_at,
            last_checked_at: row.last_checked_at,
            last_check_error: row.last_check_error,
        })
        .collect())
}

/// Claims a domain (unverified until its TXT record is found).
/// Permission: SSO.
pub async fn add(pool: &PgPool, call: Call<'_>, domain: &str) -> Result<String, DomainError> {
    call.require(Permission::ManageSso)?;
    let domain = validate::domain(domain)?;
    if CONSUMER_DOMAINS.contains(&domain.as_str()) {
        return Err(DomainError::invalid(format!(
            "{domain} is a public mail provider: claim your organization's own domain instead"
        )));
    }
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let taken = sqlx::query_scalar!(
        r#"select exists (select 1 from organization_domains where domain = $1 and verified_at is not null and org_id <> $2) as "taken!""#,
        domain,
        org_id
    )
    .fetch_one(work.conn())
    .await?;
    if taken {
        return Err(DomainError::Conflict(format!("{domain} is already verified by another organization")));
    }
    // language=PostgreSQL
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from organization_domains where org_id = $1"#, org_id)
        .fetch_one(work.conn())
        .await?;
    if count >= MAX_DOMAINS {
        return Err(DomainError::NotAllowed(format!("An organization can claim at most {MAX_DOMAINS} domains")));
    }
    // language=PostgreSQL
    sqlx::query!(
        "insert into organization_domains (org_id, domain, created_at) values ($1, $2, $3)",
        org_id,
        domain,
        call.now
    )
    .execute(work.conn())
    .await
    .on_constraint("organization_domains_pkey", || DomainError::Conflict(format!("{domain} is already on the list")))?;
    work.record(work.event("domain.added").target("domain", &domain, &domain)).await?;
    work.commit().await?;
    Ok(domain)
}

/// Looks up the domain's TXT record now; marks it verified when the expected value is there.
/// Returns whether it is verified; what went wrong is kept on the row for the portal to show.
/// Permission: SSO.
pub async fn verify(pool: &PgPool, dns: &TxtResolver, call: Call<'_>, domain: &str) -> Result<bool, DomainError> {
    call.require(Permission::ManageSso)?;
    let org_id = call.org_id();
    let domain = validate::domain(domain)?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select verification_token, verified_at from organization_domains where org_id = $1 and domain = $2",
        org_id,
        domain
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    if row.verified_at.is_some() {
        return Ok(true);
    }
    let name = record_name(&domain);
    let expected = record_value(&row.verification_token);
    let problem = match dns.txt(&name).await {
        Ok(values) if values.iter().any(|v| v.trim() == expected) => None,
        Ok(values) if values.is_empty() => {
            Some(format!("No TXT record found at {name} yet. DNS changes can take a few minutes to appear."))
        }
        Ok(values) => Some(format!("{name} has {} TXT record(s), none with the value {expected}.", values.len())),
        Err(err) => Some(err),
    };
    let mut work = call.begin(pool).await?;
    if let Some(problem) = &problem {
        // language=PostgreSQL
        sqlx::query!(
            "update organization_domains set last_checked_at = $3, last_check_error = $4 where org_id = $1 and domain = $2",
            org_id,
            domain,
            call.now,
            problem
        )
        .execute(work.conn())
        .await?;
        work.commit().await?;
        return Ok(false);
    }
    mark_verified(
        work.conn(),
        call.caller.actor(),
        org_id,
        &domain,
        json!({ "method": "dns_txt", "record": name }),
        call.meta,
        call.now,
    )
    .await?;
    work.commit().await?;
    Ok(true)
}

/// Marks a claimed domain verified on the platform operator's word (the demo organization;
/// installations whose operator vouches for a customer's domain). Audited as such.
pub async fn verify_by_operator(
    pool: &PgPool,
    org_id: uuid::Uuid,
    domain: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let domain = validate::domain(domain)?;
    let mut work = Work::begin(pool, org_id, crate::server::domain::Actor::Operator, meta, now).await?;
    mark_verified(
        work.conn(),
        crate::server::domain::Actor::Operator,
        org_id,
        &domain,
        json!({ "method": "operator" }),
        meta,
        now,
    )
    .await?;
    work.commit().await?;
    Ok(())
}

/// Marks a claimed, unverified domain verified and audits how; a domain already verified is
/// left as it is, one verified by another organization is a conflict.
async fn mark_verified(
    tx: &mut sqlx::PgConnection,
    actor: crate::server::domain::Actor,
    org_id: uuid::Uuid,
    domain: &str,
    how: serde_json::Value,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    // language=PostgreSQL
    let updated = sqlx::query!(
        "update organization_domains set verified_at = $3, last_checked_at = $3, last_check_error = null
         where org_id = $1 and domain = $2 and verified_at is null",
        org_id,
        domain,
        now
    )
    .execute(&mut *tx)
    .await
    .on_constraint("organization_domains_verified_key", || {
        DomainError::Conflict(format!("{domain} is already verified by another organization"))
    })?;
    if updated.rows_affected() == 1 {
        audit::record(
            tx,
            NewEvent::new(org_id, actor, "domain.verified").target("domain", domain, domain).details(how),
            meta,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Gives up a domain. With password sign-in off, the last verified domain stays (nobody could
/// reach the IdP otherwise).
/// Permission: SSO.
pub async fn remove(pool: &PgPool, call: Call<'_>, domain: &str) -> Result<(), DomainError> {
    call.require(Permission::ManageSso)?;
    let org_id = call.org_id();
    let domain = validate::domain(domain)?;
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let guard = sqlx::query!(
        r#"select o.password_sign_in,
                  (select count(*) from organization_domains d where d.org_id = o.id and d.verified_at is not null and d.domain <> $2) as "others!"
           from organizations o where o.id = $1 for update"#,
        org_id,
        domain
    )
    .fetch_one(work.conn())
    .await?;
    // language=PostgreSQL
    let verified_at = sqlx::query_scalar!(
        "delete from organization_domains where org_id = $1 and domain = $2 returning verified_at",
        org_id,
        domain
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    if verified_at.is_some()
        && PasswordSignIn::parse(&guard.password_sign_in) == Some(PasswordSignIn::Off)
        && guard.others == 0
    {
        return Err(DomainError::NotAllowed(
            "This is your last verified domain and password sign-in is off: admins could not sign in. Turn password sign-in back on first".into(),
        ));
    }
    work.record(work.event("domain.removed").target("domain", &domain, &domain)).await?;
    work.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains_and_records() {
        assert_eq!(of_email("Dana@Acme.Example").as_deref(), Some("acme.example"));
        assert_eq!(of_email("no-at-sign"), None);
        assert_eq!(record_name("acme.example"), "_mandate-verification.acme.example");
        assert_eq!(record_value("abc"), "mandate-verification=abc");
    }
}
