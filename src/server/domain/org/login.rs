//! Password sign-in with throttling, and sign-out. Attempts count per account and per client
//! address in the database (so every node enforces the same limit), taken atomically before the
//! password is checked (so parallel guesses cannot overrun the limit); a success gives its
//! attempt back. Failures on a known account are audited in its organization, repeats
//! summarised per window (`audit::failures`). The caller learns only "incorrect email or
//! password" or "too many attempts", never which part was wrong.

use crate::model::connections::{PasswordSignIn, SignInSettings};
use crate::model::Permission;
use crate::server::domain::actor::{Actor, AdminSession, RequestMeta};
use crate::server::domain::audit::{self, NewEvent};
use crate::server::domain::Work;
use crate::server::domain::{crypto::passwords, org::admins, DomainError};
use serde_json::json;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Failures allowed per account within `WINDOW` before it is locked for `LOCKOUT`.
pub const ACCOUNT_LIMIT: i32 = 5;
/// Failures allowed per client address within `WINDOW` (covers password spraying across accounts).
pub const IP_LIMIT: i32 = 30;
pub const WINDOW: Duration = Duration::minutes(15);
pub const LOCKOUT: Duration = Duration::minutes(15);

fn account_bucket(email: &str) -> String {
    format!("account:{email}")
}

fn ip_bucket(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Takes one attempt from a bucket before the password is checked, atomically (the row is
/// locked for the update), so parallel guesses cannot all pass a check made before any of them
/// is counted. Returns when the bucket is locked, if it is: the attempt past the limit locks it
/// for `LOCKOUT`, a locked bucket allows none, and a new window (or the end of a lock) starts
/// the count again.
async fn take_attempt(
    pool: &PgPool,
    bucket: &str,
    limit: i32,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, DomainError> {
    // language=PostgreSQL
    let locked_until = sqlx::query_scalar!(
        "insert into login_throttle as t (bucket, failures, window_started_at) values ($1, 1, $2)
         on conflict (bucket) do update set
           failures = case when t.window_started_at < $2 - $3::interval or t.locked_until <= $2 then 1
                           else t.failures + 1 end,
           window_started_at = case when t.window_started_at < $2 - $3::interval or t.locked_until <= $2 then $2
                                    else t.window_started_at end,
           locked_until = case
             when t.locked_until > $2 then t.locked_until
             when t.window_started_at < $2 - $3::interval or t.locked_until <= $2 then null
             when t.failures + 1 > $4 then $2 + $5::interval
             end
         returning locked_until",
        bucket,
        now,
        interval(WINDOW)?,
        limit,
        interval(LOCKOUT)?
    )
    .fetch_one(pool)
    .await?;
    Ok(locked_until.filter(|until| *until > now))
}

fn interval(duration: Duration) -> Result<sqlx::postgres::types::PgInterval, DomainError> {
    sqlx::postgres::types::PgInterval::try_from(duration).map_err(|err| DomainError::Internal(err.to_string()))
}

fn too_many(until: OffsetDateTime, now: OffsetDateTime) -> DomainError {
    let minutes = ((until - now).whole_seconds() + 59) / 60;
    DomainError::RateLimited(format!(
        "Too many failed sign-in attempts. Try again in {} minute{}.",
        minutes.max(1),
        if minutes > 1 { "s" } else { "" }
    ))
}

struct Candidate {
    org_id: Uuid,
    admin_id: Uuid,
    password_hash: Option<String>,
}

/// Checks an admin's email and password (throttled, failures audited); returns the admin whose
/// password it is. Nothing is recorded as a success here: where a correct password leads (signed
/// in, a second step, enrolment) is `factors::sign_in_with_password`'s to decide.
pub async fn check_password(
    pool: &PgPool,
    email: &str,
    password: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<AdminSession, DomainError> {
    let email = email.trim().to_lowercase();
    if email.is_empty() || password.is_empty() {
        return Err(DomainError::invalid("Enter your email and password"));
    }
    if email.len() > 320 {
        return Err(DomainError::InvalidCredentials);
    }
    let account = account_bucket(&email);
    let ip = meta.ip.as_deref().map(ip_bucket);

    // language=PostgreSQL
    let candidates = sqlx::query_as!(
        Candidate,
        "select a.org_id, a.id as admin_id, a.password_hash
         from admins a
         join people p on p.org_id = a.org_id and p.id = a.person_id
         join organizations o on o.id = a.org_id
         where p.email = $1 and p.active and a.password_hash is not null
           and (o.password_sign_in = 'all' or (o.password_sign_in = 'owners' and a.role = 'owner'))
         order by a.last_login_at desc nulls last
         limit 5",
        email
    )
    .fetch_all(pool)
    .await?;

    let audit_failure = |reason: &'static str| {
        let candidates = &candidates;
        let email = &email;
        async move {
            for candidate in candidates {
                let event = NewEvent::new(candidate.org_id, Actor::Anonymous, "login.failed")
                    .target("admin", candidate.admin_id, email.as_str())
                    .failed()
                    .details(json!({ "method": "password", "reason": reason }));
                audit::failures::record(pool, event, meta, now).await?;
            }
            Ok::<(), DomainError>(())
        }
    };

    // Every attempt is counted before the password is checked; a success gives it back.
    // The address first: a locked address must not go on counting against (and locking) the
    // accounts it tries.
    let mut locked = match &ip {
        Some(ip) => take_attempt(pool, ip, IP_LIMIT, now).await?,
        None => None,
    };
    if locked.is_none() {
        locked = take_attempt(pool, &account, ACCOUNT_LIMIT, now).await?;
    }
    if let Some(until) = locked {
        audit_failure("throttled").await?;
        return Err(too_many(until, now));
    }

    let mut signed_in = None;
    if candidates.is_empty() {
        // Same cost as a real check, so timing does not reveal whether the account exists.
        passwords::verify(None, password.to_string()).await;
    }
    for candidate in &candidates {
        if passwords::verify(candidate.password_hash.clone(), password.to_string()).await {
            signed_in = Some((candidate.org_id, candidate.admin_id));
            break;
        }
    }

    let Some((org_id, admin_id)) = signed_in else {
        audit_failure("bad_credentials").await?;
        return Err(DomainError::InvalidCredentials);
    };

    let session = admins::load_session(pool, org_id, admin_id).await?.ok_or(DomainError::InvalidCredentials)?;
    // The address counts failures: this attempt was not one. (The account's attempt is given
    // back by a completed sign-in, or before a second step that counts its own tries.)
    if let Some(ip) = &ip {
        give_back(pool, ip).await?;
    }
    Ok(session)
}

/// Gives back the account's attempt of a correct password whose sign-in continues with a second
/// step (whose tries count on the same account).
pub async fn give_back_account_attempt(pool: &PgPool, email: &str) -> Result<(), DomainError> {
    give_back(pool, &account_bucket(&email.trim().to_lowercase())).await
}

/// Returns an attempt that turned out not to be a failure.
async fn give_back(pool: &PgPool, bucket: &str) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!(
        "update login_throttle set failures = greatest(failures - 1, 0) where bucket = $1 and locked_until is null",
        bucket
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Takes one attempt from the account's bucket (a second factor's try counts like a
/// password's); `RateLimited` when the account is locked.
pub async fn take_account_attempt(pool: &PgPool, email: &str, now: OffsetDateTime) -> Result<(), DomainError> {
    match take_attempt(pool, &account_bucket(&email.trim().to_lowercase()), ACCOUNT_LIMIT, now).await? {
        Some(until) => Err(too_many(until, now)),
        None => Ok(()),
    }
}

/// Records a completed sign-in in `work`: the account's count starts again, and
/// `login.succeeded` says how (`details`).
pub async fn record_success(
    work: &mut Work<'_>,
    admin: &AdminSession,
    details: serde_json::Value,
) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!("delete from login_throttle where bucket = $1", account_bucket(admin.email()))
        .execute(work.conn())
        .await?;
    // language=PostgreSQL
    sqlx::query!(
        "update admins set last_login_at = $3 where org_id = $1 and id = $2",
        admin.org_id(),
        admin.admin_id(),
        work.now()
    )
    .execute(work.conn())
    .await?;
    let event = work.event("login.succeeded").target("admin", admin.admin_id(), admin.email()).details(details);
    work.record(event).await?;
    Ok(())
}

pub async fn logout(
    pool: &PgPool,
    admin: &AdminSession,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let event =
        NewEvent::new(admin.org_id(), Actor::admin(admin), "logout").target("admin", admin.admin_id(), admin.email());
    Work::record_alone(pool, event, meta, now).await?;
    Ok(())
}

/// Whether the organization's admins can sign in through an IdP: an enabled connection and a
/// verified domain.
async fn sso_ready(executor: impl sqlx::PgExecutor<'_>, org_id: Uuid) -> Result<bool, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from connections where org_id = $1 and enabled)
              and exists (select 1 from organization_domains where org_id = $1 and verified_at is not null) as "ready!""#,
        org_id
    )
    .fetch_one(executor)
    .await?)
}

/// Permission: view portal.
pub async fn sign_in_settings(pool: &PgPool, admin: &AdminSession) -> Result<SignInSettings, DomainError> {
    admin.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    let policy = sqlx::query_scalar!("select password_sign_in from organizations where id = $1", admin.org_id())
        .fetch_one(pool)
        .await?;
    Ok(SignInSettings {
        password_sign_in: PasswordSignIn::parse(&policy).unwrap_or(PasswordSignIn::All),
        sso_ready: sso_ready(pool, admin.org_id()).await?,
    })
}

/// Changes who may sign in with a password (owners only). Restricting it needs working single
/// sign-on; turning it off entirely needs the owner to have signed in through the IdP in this
/// session, which proves the way in works.
/// Permission: organization settings.
pub async fn set_password_sign_in(
    pool: &PgPool,
    admin: &AdminSession,
    policy: PasswordSignIn,
    signed_in_with_sso: bool,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    admin.require(Permission::ManageOrganization)?;
    let mut work = Work::begin(pool, admin.org_id(), Actor::admin(admin), meta, now).await?;
    if policy != PasswordSignIn::All && !sso_ready(work.conn(), admin.org_id()).await? {
        return Err(DomainError::NotAllowed(
            "Set up single sign-on first: an enabled connection and a verified domain".into(),
        ));
    }
    if policy == PasswordSignIn::Off && !signed_in_with_sso {
        return Err(DomainError::NotAllowed(
            "Sign in through your identity provider once before turning password sign-in off, so you know the way in works".into(),
        ));
    }
    // language=PostgreSQL
    let previous = sqlx::query_scalar!(
        "update organizations o set password_sign_in = $2 from organizations old
         where o.id = $1 and old.id = o.id returning old.password_sign_in",
        admin.org_id(),
        policy.as_str()
    )
    .fetch_one(work.conn())
    .await?;
    let event = work
        .event("settings.password_sign_in_changed")
        .target("organization", admin.org_id(), admin.org_name())
        .details(json!({ "from": previous, "to": policy.as_str() }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}
