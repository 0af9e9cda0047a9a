//! Recovery codes: ten single-use codes for when the authenticator app is lost, shown once when
//! made and stored only as SHA-256 (each is 80 random bits, so a fast hash is enough). Making
//! new ones replaces every earlier code.

use crate::model::factors::RecoveryCodes;
use crate::model::Permission;
use crate::server::domain::actor::{Actor, AdminSession, RequestMeta};
use crate::server::domain::{DomainError, Work};
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// Codes made at a time.
pub const COUNT: usize = 10;
/// Letters and digits that cannot be mistaken for each other (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters per code (16 × log2(31) ≈ 79 bits), shown in groups of four.
const LENGTH: usize = 16;

fn digest(normalised: &str) -> Vec<u8> {
    Sha256::digest(normalised.as_bytes()).to_vec()
}

fn generate() -> String {
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..LENGTH).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    raw.as_bytes().chunks(4).map(|chunk| String::from_utf8_lossy(chunk).into_owned()).collect::<Vec<_>>().join("-")
}

/// Unused codes left.
pub async fn left(db: impl PgExecutor<'_>, org_id: Uuid, admin_id: Uuid) -> Result<i64, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        r#"select count(*) as "left!" from admin_recovery_codes where org_id = $1 and admin_id = $2 and used_at is null"#,
        org_id,
        admin_id
    )
    .fetch_one(db)
    .await?)
}

/// Replaces the admin's codes inside `work`; returns the new ones.
pub(super) async fn replace(work: &mut Work<'_>, admin: &AdminSession) -> Result<RecoveryCodes, DomainError> {
    delete_all(work.conn(), admin.org_id(), admin.admin_id()).await?;
    let codes: Vec<String> = (0..COUNT).map(|_| generate()).collect();
    let digests: Vec<Vec<u8>> = codes.iter().map(|code| digest(&code.replace('-', ""))).collect();
    // language=PostgreSQL
    sqlx::query!(
        "insert into admin_recovery_codes (org_id, admin_id, code_hash, created_at)
         select $1, $2, code_hash, $4 from unnest($3::bytea[]) as code_hash",
        admin.org_id(),
        admin.admin_id(),
        &digests,
        work.now()
    )
    .execute(work.conn())
    .await?;
    let event = work
        .event("recovery_codes.generated")
        .target("admin", admin.admin_id(), admin.email())
        .details(json!({ "count": COUNT }));
    work.record(event).await?;
    Ok(RecoveryCodes { codes })
}

pub(super) async fn delete_all(conn: &mut PgConnection, org_id: Uuid, admin_id: Uuid) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!("delete from admin_recovery_codes where org_id = $1 and admin_id = $2", org_id, admin_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes ten new codes, replacing every earlier one. Only for an admin with a second factor.
/// Permission: view portal (each admin their own).
pub async fn regenerate(
    pool: &PgPool,
    admin: &AdminSession,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<RecoveryCodes, DomainError> {
    admin.require(Permission::ViewPortal)?;
    let mut work = Work::begin(pool, admin.org_id(), Actor::admin(admin), meta, now).await?;
    if !super::has_factor(work.conn(), admin.org_id(), admin.admin_id()).await? {
        return Err(DomainError::NotAllowed(
            "Set up an authenticator app first: recovery codes stand in for it.".into(),
        ));
    }
    let codes = replace(&mut work, admin).await?;
    work.commit().await?;
    Ok(codes)
}

/// Spends `code` (any case, with or without dashes) if it is one of the admin's unused codes.
pub async fn use_code(
    pool: &PgPool,
    org_id: Uuid,
    admin_id: Uuid,
    code: &str,
    now: OffsetDateTime,
) -> Result<bool, DomainError> {
    let normalised: String =
        code.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect::<String>().to_lowercase();
    if normalised.len() != LENGTH {
        return Ok(false);
    }
    // language=PostgreSQL
    let spent = sqlx::query_scalar!(
        r#"update admin_recovery_codes set used_at = $4
           where org_id = $1 and admin_id = $2 and code_hash = $3 and used_at is null
           returning 1 as "one!""#,
        org_id,
        admin_id,
        digest(&normalised),
        now
    )
    .fetch_optional(pool)
    .await?;
    Ok(spent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sixteen_unambiguous_characters_in_groups_of_four() {
        let code = generate();
        assert_eq!(code.len(), LENGTH + 3);
        assert_eq!(code.split('-').count(), 4);
        assert!(code.replace('-', "").bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(generate(), generate());
    }
}
