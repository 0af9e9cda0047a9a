//! Second factors of portal admins: an authenticator app (TOTP, `totp`) and single-use recovery
//! codes (`recovery`), the organization's policy of who must use one after a password, password
//! sign-in as a whole (`login` checks the password; this decides where it leads and completes
//! the second step) and the operator's recovery of an admin who lost every factor. Single
//! sign-on relies on the identity provider's own factors. Failed second steps count toward the
//! account's lockout like wrong passwords.

pub mod recovery;
pub mod totp;

use crate::model::factors::{SecondFactorPolicy, SecurityOverview};
use crate::model::{Permission, Role};
use crate::server::domain::actor::{Actor, AdminSession, RequestMeta};
use crate::server::domain::audit::{self, NewEvent};
use crate::server::domain::crypto::master_key::MasterKey;
use crate::server::domain::org::{admins, login};
use crate::server::domain::{validate, Call, Caller, DomainError, Work};
use serde_json::json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a correct password leads to.
#[derive(Debug)]
pub enum AfterPassword {
    /// Signed in (no factor enrolled, none required).
    SignedIn(AdminSession),
    /// The admin has a second factor: the sign-in completes with it (`second_step`).
    SecondStep(AdminSession),
    /// The policy requires a factor the admin does not have: signed in to enrol one, and to do
    /// nothing else first.
    MustEnrol(AdminSession),
}

/// The organization's policy.
pub async fn policy(db: impl PgExecutor<'_>, org_id: Uuid) -> Result<SecondFactorPolicy, DomainError> {
    // language=PostgreSQL
    let policy = sqlx::query_scalar!("select second_factor_policy from organizations where id = $1", org_id)
        .fetch_one(db)
        .await?;
    Ok(SecondFactorPolicy::parse(&policy).unwrap_or(SecondFactorPolicy::None))
}

/// Whether the admin has a confirmed second factor.
pub async fn has_factor(db: impl PgExecutor<'_>, org_id: Uuid, admin_id: Uuid) -> Result<bool, DomainError> {
    // language=PostgreSQL
    let has = sqlx::query_scalar!(
        r#"select exists(select 1 from admin_factors
                         where org_id = $1 and admin_id = $2 and confirmed_at is not null) as "has!""#,
        org_id,
        admin_id
    )
    .fetch_one(db)
    .await?;
    Ok(has)
}

/// A password sign-in waiting for its second factor.
#[derive(Clone, Copy, Debug)]
pub struct PendingSecondStep {
    pub org_id: Uuid,
    pub admin_id: Uuid,
    pub password_checked_at: OffsetDateTime,
}

/// Password sign-in: checks the email and password (`login::check_password`), then says where
/// that leads. A completed sign-in is recorded here (`login.succeeded`); a second step records
/// its own, and the password's attempt is given back so the code gets the account's tries.
pub async fn sign_in_with_password(
    pool: &PgPool,
    email: &str,
    password: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<AfterPassword, DomainError> {
    let admin = login::check_password(pool, email, password, meta, now).await?;
    let outcome = after_password(pool, admin).await?;
    let (admin, details) = match &outcome {
        AfterPassword::SecondStep(admin) => {
            login::give_back_account_attempt(pool, admin.email()).await?;
            return Ok(outcome);
        }
        AfterPassword::SignedIn(admin) => (admin, json!({ "method": "password" })),
        AfterPassword::MustEnrol(admin) => (admin, json!({ "method": "password", "must_enrol_second_factor": true })),
    };
    let mut work = Work::begin(pool, admin.org_id(), Actor::admin(admin), meta, now).await?;
    login::record_success(&mut work, admin, details).await?;
    work.commit().await?;
    Ok(outcome)
}

/// Where a correct password leads for `admin`.
async fn after_password(pool: &PgPool, admin: AdminSession) -> Result<AfterPassword, DomainError> {
    if has_factor(pool, admin.org_id(), admin.admin_id()).await? {
        return Ok(AfterPassword::SecondStep(admin));
    }
    if policy(pool, admin.org_id()).await?.applies_to(admin.role()) {
        return Ok(AfterPassword::MustEnrol(admin));
    }
    Ok(AfterPassword::SignedIn(admin))
}

/// The signed-in admin's factors and what the policy asks of them.
/// Permission: view portal (each admin sees their own).
pub async fn overview(pool: &PgPool, admin: &AdminSession) -> Result<SecurityOverview, DomainError> {
    admin.require(Permission::ViewPortal)?;
    let policy = policy(pool, admin.org_id()).await?;
    Ok(SecurityOverview {
        authenticator: totp::enrolled(pool, admin.org_id(), admin.admin_id()).await?,
        recovery_codes_left: recovery::left(pool, admin.org_id(), admin.admin_id()).await?,
        policy,
        required: policy.applies_to(admin.role()),
    })
}

/// Changes who must use a second factor after a password.
/// Permission: organization settings.
pub async fn set_policy(
    pool: &PgPool,
    admin: &AdminSession,
    policy: SecondFactorPolicy,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    admin.require(Permission::ManageOrganization)?;
    let mut work = Work::begin(pool, admin.org_id(), Actor::admin(admin), meta, now).await?;
    // language=PostgreSQL
    let previous = sqlx::query_scalar!(
        "update organizations o set second_factor_policy = $2 from organizations old
         where o.id = $1 and old.id = o.id returning old.second_factor_policy",
        admin.org_id(),
        policy.as_str()
    )
    .fetch_one(work.conn())
    .await?;
    let event = work
        .event("settings.second_factor_policy_changed")
        .target("organization", admin.org_id(), admin.org_name())
        .details(json!({ "from": previous, "to": policy.as_str() }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}

/// Completes a password sign-in with a code from the authenticator app or a recovery code.
/// Each try is counted against the account's lockout before the code is checked; a wrong code
/// is audited (repeats summarised) and answered without saying which kind was tried.
pub async fn second_step(
    pool: &PgPool,
    master: &MasterKey,
    pending: PendingSecondStep,
    code: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<AdminSession, DomainError> {
    let PendingSecondStep { org_id, admin_id, password_checked_at } = pending;
    // Still an admin, still active, and not recovered since the password was checked.
    let admin = admins::load_signed_in(pool, org_id, admin_id, password_checked_at)
        .await?
        .ok_or(DomainError::InvalidCredentials)?;
    let failure = |reason: &'static str| {
        NewEvent::new(org_id, Actor::Anonymous, "login.failed")
            .target("admin", admin_id, admin.email())
            .failed()
            .details(json!({ "method": "password", "reason": reason }))
    };
    if let Err(locked) = login::take_account_attempt(pool, admin.email(), now).await {
        audit::failures::record(pool, failure("throttled"), meta, now).await?;
        return Err(locked);
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_lowercase();
    let used = if code.len() == totp::DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        totp::verify(pool, master, org_id, admin_id, &code, now).await?.then_some("totp")
    } else {
        recovery::use_code(pool, org_id, admin_id, &code, now).await?.then_some("recovery_code")
    };
    let Some(factor) = used else {
        audit::failures::record(pool, failure("bad_second_factor"), meta, now).await?;
        return Err(DomainError::Invalid(
            "That code is not right. Enter the current 6-digit code from your authenticator app, or an unused recovery code."
                .into(),
        ));
    };
    let mut work = Work::begin(pool, org_id, Actor::admin(&admin), meta, now).await?;
    login::record_success(&mut work, &admin, json!({ "method": "password", "second_factor": factor })).await?;
    if factor == "recovery_code" {
        let left = recovery::left(work.conn(), org_id, admin_id).await?;
        let event = work
            .event("recovery_code.used")
            .target("admin", admin_id, admin.email())
            .details(json!({ "codes_left": left }));
        work.record(event).await?;
    }
    work.commit().await?;
    Ok(admin)
}

/// The operator's way back in for an admin who lost every second factor (or their password):
/// their factors, recovery codes and password are cleared, every session of theirs ends, and a
/// one-time setup link (72 hours) sets a new password. Audited as `admin.recovered`.
/// Permission: the operator CLI only.
pub async fn recover(pool: &PgPool, call: Call<'_>, email: &str) -> Result<admins::NewInvitation, DomainError> {
    if !matches!(call.caller, Caller::Operator { .. }) {
        return Err(DomainError::Forbidden("recovering an admin is for the platform operator (mandate admin recover)"));
    }
    let email = validate::email(email)?;
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    // language=PostgreSQL
    let admin = sqlx::query!(
        "select a.id, a.role from admins a join people p on p.org_id = a.org_id and p.id = a.person_id
         where a.org_id = $1 and p.email = $2 for update of a",
        org_id,
        email
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    let role: Role = admin.role.parse().map_err(DomainError::Internal)?;
    let factors_removed = clear(work.conn(), org_id, admin.id).await?;
    // language=PostgreSQL
    sqlx::query!(
        "update admins set password_hash = null, sessions_not_before = clock_timestamp() where org_id = $1 and id = $2",
        org_id,
        admin.id
    )
    .execute(work.conn())
    .await?;
    // language=PostgreSQL
    sqlx::query!(
        "update admin_invitations set revoked_at = $3
         where org_id = $1 and email = $2 and accepted_at is null and revoked_at is null",
        org_id,
        email,
        call.now
    )
    .execute(work.conn())
    .await?;
    let invitation = admins::create_invitation(&mut work, None, &email, role, Some(admin.id)).await?;
    let event = work
        .event("admin.recovered")
        .target("admin", admin.id, &email)
        .details(json!({ "factors_removed": factors_removed, "invitation_id": invitation.id }));
    work.record(event).await?;
    work.commit().await?;
    Ok(invitation)
}

/// Removes every second factor and recovery code of an admin (a recovery); returns how many
/// factors were removed.
pub async fn clear(conn: &mut PgConnection, org_id: Uuid, admin_id: Uuid) -> Result<i64, DomainError> {
    recovery::delete_all(&mut *conn, org_id, admin_id).await?;
    // language=PostgreSQL
    let removed = sqlx::query!("delete from admin_factors where org_id = $1 and admin_id = $2", org_id, admin_id)
        .execute(conn)
        .await?;
    Ok(removed.rows_affected() as i64)
}

/// Refuses to leave an admin whom the policy covers without a factor (called before removing
/// their only one).
async fn ensure_may_go_without(conn: &mut PgConnection, admin: &AdminSession) -> Result<(), DomainError> {
    if policy(&mut *conn, admin.org_id()).await?.applies_to(admin.role()) {
        return Err(DomainError::NotAllowed(
            "Your organization requires a second factor for you: this is your only one. Ask an owner to change the policy first."
                .into(),
        ));
    }
    Ok(())
}
