//! The authenticator app (TOTP, RFC 6238 through `totp-rs`: SHA-1, 6 digits, 30-second steps,
//! one step of clock skew either way). Setting one up stores an unconfirmed factor whose secret
//! is encrypted under the master key; a correct code confirms it. Every accepted code records
//! its time step, and no step is accepted twice (a code seen over someone's shoulder is spent).

use super::{ensure_may_go_without, recovery};
use crate::model::factors::{AuthenticatorApp, AuthenticatorSetup, RecoveryCodes};
use crate::model::Permission;
use crate::server::domain::actor::{Actor, AdminSession, RequestMeta};
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::{DomainError, Work};
use rand::RngCore;
use serde_json::json;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use totp_rs::{Algorithm, Secret, Totp};
use uuid::Uuid;

/// Digits of a code.
pub const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
/// How long an unconfirmed setup may be confirmed.
const SETUP_LIFETIME: time::Duration = time::Duration::minutes(15);

fn context(factor_id: Uuid) -> String {
    format!("admin_factor:{factor_id}")
}

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<Totp, DomainError> {
    // Colons separate issuer and account in the otpauth label: neither may carry one.
    let issuer: String = issuer.chars().filter(|c| *c != ':').collect();
    let account: String = account.chars().filter(|c| *c != ':').collect();
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(Secret::new(secret.into_boxed_slice()))
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|err| DomainError::Internal(format!("authenticator app: {err}")))
}

fn unix_seconds(now: OffsetDateTime) -> u64 {
    u64::try_from(now.unix_timestamp()).unwrap_or(0)
}

/// The admin's confirmed authenticator app.
pub async fn enrolled(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
    admin_id: Uuid,
) -> Result<Option<AuthenticatorApp>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        AuthenticatorApp,
        "select id, name, created_at, last_used_at from admin_factors
         where org_id = $1 and admin_id = $2 and kind = 'totp' and confirmed_at is not null",
        org_id,
        admin_id
    )
    .fetch_optional(db)
    .await?)
}

/// Starts setting up an authenticator app: a fresh 160-bit secret, shown once (as text, an
/// `otpauth://` URL and its QR code) and stored encrypted until a code confirms it. Replaces an
/// earlier unconfirmed setup; refused while one is confirmed (remove it first).
/// Permission: view portal (each admin their own).
pub async fn begin(
    pool: &PgPool,
    master: &MasterKey,
    admin: &AdminSession,
    now: OffsetDateTime,
) -> Result<AuthenticatorSetup, DomainError> {
    admin.require(Permission::ViewPortal)?;
    let mut work = Work::system(pool, now).await?;
    // language=PostgreSQL
    sqlx::query!(
        "delete from admin_factors where org_id = $1 and admin_id = $2 and kind = 'totp' and confirmed_at is null",
        admin.org_id(),
        admin.admin_id()
    )
    .execute(work.conn())
    .await?;
    if enrolled(work.conn(), admin.org_id(), admin.admin_id()).await?.is_some() {
        return Err(DomainError::Conflict(
            "You already have an authenticator app. Remove it first to set up another.".into(),
        ));
    }
    let mut secret = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let factor_id = Uuid::new_v4();
    let sealed = master.encrypt(&secret, &context(factor_id))?;
    // language=PostgreSQL
    sqlx::query!(
        "insert into admin_factors (org_id, id, admin_id, kind, name, secret_encrypted, created_at)
         values ($1, $2, $3, 'totp', 'Authenticator app', $4, $5)",
        admin.org_id(),
        factor_id,
        admin.admin_id(),
        sealed,
        now
    )
    .execute(work.conn())
    .await?;
    work.commit().await?;
    let app = totp(secret, &format!("Mandate ({})", admin.org_name()), admin.email())?;
    let otpauth_url = app.to_url().map_err(|err| DomainError::Internal(format!("authenticator app: {err}")))?;
    Ok(AuthenticatorSetup { factor_id, secret: app.secret().to_base32(), qr_svg: qr_svg(&otpauth_url)?, otpauth_url })
}

/// Confirms a setup with a code from the app. The factor counts from now on; an admin without
/// recovery codes gets ten, returned here and never shown again.
/// Permission: view portal (each admin their own).
pub async fn confirm(
    pool: &PgPool,
    master: &MasterKey,
    admin: &AdminSession,
    factor_id: Uuid,
    code: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<Option<RecoveryCodes>, DomainError> {
    admin.require(Permission::ViewPortal)?;
    let mut work = Work::begin(pool, admin.org_id(), Actor::admin(admin), meta, now).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select secret_encrypted, created_at from admin_factors
         where org_id = $1 and id = $2 and admin_id = $3 and kind = 'totp' and confirmed_at is null
         for update",
        admin.org_id(),
        factor_id,
        admin.admin_id()
    )
    .fetch_optional(work.conn())
    .await?
    .filter(|row| row.created_at + SETUP_LIFETIME > now)
    .ok_or_else(|| DomainError::invalid("This setup has expired or was replaced. Start again."))?;
    let secret = master.decrypt(row.secret_encrypted.as_deref().unwrap_or_default(), &context(factor_id))?;
    let code = code.trim();
    let Some(step) = totp(secret, "Mandate", admin.email())?.check(code, unix_seconds(now)) else {
        return Err(DomainError::invalid(
            "That code is not right. Check that your device's clock is correct and enter the current 6-digit code.",
        ));
    };
    // language=PostgreSQL
    sqlx::query!(
        "update admin_factors set confirmed_at = $3, last_used_at = $3, last_totp_step = $4
         where org_id = $1 and id = $2",
        admin.org_id(),
        factor_id,
        now,
        step as i64
    )
    .execute(work.conn())
    .await?;
    let event = work
        .event("factor.enrolled")
        .target("admin", admin.admin_id(), admin.email())
        .details(json!({ "kind": "totp", "factor_id": factor_id }));
    work.record(event).await?;
    let codes = if recovery::left(work.conn(), admin.org_id(), admin.admin_id()).await? == 0 {
        Some(recovery::replace(&mut work, admin).await?)
    } else {
        None
    };
    work.commit().await?;
    Ok(codes)
}

/// Whether `code` is the admin's current code, not accepted before. Spends its time step.
pub async fn verify(
    pool: &PgPool,
    master: &MasterKey,
    org_id: Uuid,
    admin_id: Uuid,
    code: &str,
    now: OffsetDateTime,
) -> Result<bool, DomainError> {
    // language=PostgreSQL
    let Some(row) = sqlx::query!(
        "select id, secret_encrypted from admin_factors
         where org_id = $1 and admin_id = $2 and kind = 'totp' and confirmed_at is not null",
        org_id,
        admin_id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(false);
    };
    let secret = master.decrypt(row.secret_encrypted.as_deref().unwrap_or_default(), &context(row.id))?;
    let Some(step) = totp(secret, "Mandate", "admin")?.check(code, unix_seconds(now)) else {
        return Ok(false);
    };
    // Only a later step than the last accepted one: the same code twice, or an older one, fails.
    // language=PostgreSQL
    let spent = sqlx::query_scalar!(
        r#"update admin_factors set last_totp_step = $3, last_used_at = $4
           where org_id = $1 and id = $2 and (last_totp_step is null or last_totp_step < $3)
           returning 1 as "one!""#,
        org_id,
        row.id,
        step as i64,
        now
    )
    .fetch_optional(pool)
    .await?;
    Ok(spent.is_some())
}

/// Removes the admin's authenticator app (and, with it, their recovery codes: they recover
/// access to a second factor, and there is none left). Refused when the policy requires a
/// second factor of this admin.
/// Permission: view portal (each admin their own).
pub async fn remove(
    pool: &PgPool,
    admin: &AdminSession,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    admin.require(Permission::ViewPortal)?;
    let mut work = Work::begin(pool, admin.org_id(), Actor::admin(admin), meta, now).await?;
    ensure_may_go_without(work.conn(), admin).await?;
    // language=PostgreSQL
    let removed = sqlx::query_scalar!(
        "delete from admin_factors where org_id = $1 and admin_id = $2 and kind = 'totp' and confirmed_at is not null
         returning id",
        admin.org_id(),
        admin.admin_id()
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    recovery::delete_all(work.conn(), admin.org_id(), admin.admin_id()).await?;
    let event = work
        .event("factor.removed")
        .target("admin", admin.admin_id(), admin.email())
        .details(json!({ "kind": "totp", "factor_id": removed }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}

/// The QR code of `text` as an SVG document (one path of dark modules, a 4-module quiet zone).
fn qr_svg(text: &str) -> Result<String, DomainError> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|err| DomainError::Internal(format!("QR code: {err:?}")))?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\" \
         role=\"img\" aria-label=\"QR code for your authenticator app\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_checked_within_one_step_of_skew() {
        let app = totp(vec![7; 20], "Mandate (Acme: Corp)", "dana@acme.example").unwrap();
        let now = 1_800_000_000u64;
        let code = app.generate(now).to_string();
        assert_eq!(code.len(), DIGITS);
        assert_eq!(app.check(&code, now), Some(now / STEP_SECONDS));
        assert!(app.check(&code, now + STEP_SECONDS).is_some(), "one step late is accepted");
        assert!(app.check(&code, now + 3 * STEP_SECONDS).is_none(), "three steps late is not");
        let url = app.to_url().unwrap();
        assert!(url.starts_with("otpauth://totp/") && url.contains("secret=") && !url.contains("Acme:"), "{url}");
    }

    #[test]
    fn the_qr_code_is_an_svg_of_dark_modules() {
        let svg = qr_svg("otpauth://totp/Mandate:dana@acme.example?secret=ABC").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>") && svg.contains("h1v1h-1z"));
    }
}
