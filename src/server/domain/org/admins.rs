//! Admins of an organization and the single-use links that create them. The owner's setup link
//! is an invitation with the owner role. Links expire after 72 hours; only their SHA-256 is kept.

use crate::model::admins::{AdminRow, AdminsOverview, InvitationRow};
use crate::model::session::InvitationPreview;
use crate::model::{Permission, Role};
use crate::server::domain::actor::{Actor, AdminSession, Caller, RequestMeta};
use crate::server::domain::audit::NewEvent;
use crate::server::domain::error::ResultExt;
use crate::server::domain::{crypto::passwords, crypto::secrets, validate, Call, DomainError, Work};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const INVITATION_LIFETIME: Duration = Duration::hours(72);

/// A freshly created invitation; `token` is shown once and never stored.
pub struct NewInvitation {
    pub id: Uuid,
    pub token: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvitation")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The path of the page that redeems an invitation token.
pub fn setup_path(token: &str) -> String {
    format!("/setup/{token}")
}

/// Inserts an invitation and its audit event inside the caller's unit of work. With `recovers`,
/// the link sets a new password for that existing admin instead of making a new one.
pub(crate) async fn create_invitation(
    work: &mut Work<'_>,
    invited_by: Option<Uuid>,
    email: &str,
    role: Role,
    recovers: Option<Uuid>,
) -> Result<NewInvitation, DomainError> {
    let (org_id, now) = (work.org_id(), work.now());
    let id = Uuid::new_v4();
    let token = secrets::generate(secrets::INVITATION_PREFIX);
    let expires_at = now + INVITATION_LIFETIME;
    // language=PostgreSQL
    sqlx::query!(
        "insert into admin_invitations (org_id, id, email, role, token_hash, invited_by, expires_at, created_at,
                                        recovers_admin_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        org_id,
        id,
        email,
        role.as_str(),
        secrets::digest(&token),
        invited_by,
        expires_at,
        now,
        recovers
    )
    .execute(work.conn())
    .await?;
    let event = work
        .event("admin.invited")
        .target("invitation", id, email)
        .details(json!({ "role": role.as_str(), "expires_at": expires_at.unix_timestamp() }));
    work.record(event).await?;
    Ok(NewInvitation { id, token, expires_at })
}

/// Admin changes are made by a person (an owner) or the platform operator, never an API key.
fn admin_or_operator(call: &Call<'_>) -> Result<Option<Uuid>, DomainError> {
    call.require(Permission::ManageAdmins)?;
    match call.caller {
        Caller::Admin(admin) => Ok(Some(admin.admin_id())),
        Caller::Operator { .. } => Ok(None),
        Caller::ApiKey(_) => Err(DomainError::Forbidden("admins are managed by owners in the portal, not by API keys")),
    }
}

/// An owner (or the platform operator) invites someone to become an admin with `role`
/// (permission: admins). Refuses addresses that already belong to an admin, withdraws any
/// pending link for the same address (only one link is live per address) and creates the new
/// one.
pub async fn invite(pool: &PgPool, call: Call<'_>, email: &str, role: Role) -> Result<NewInvitation, DomainError> {
    let invited_by = admin_or_operator(&call)?;
    let email = validate::email(email)?;
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    if has_joined(work.conn(), org_id, &email).await? {
        return Err(DomainError::Conflict(format!(
            "{email} is already an admin of this organization; change their role instead"
        )));
    }
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
    let invitation = create_invitation(&mut work, invited_by, &email, role, None).await?;
    work.commit().await?;
    Ok(invitation)
}

/// Whether `email` is already an admin of the organization.
pub async fn has_joined(executor: impl sqlx::PgExecutor<'_>, org_id: Uuid, email: &str) -> Result<bool, DomainError> {
    // language=PostgreSQL
    let joined = sqlx::query_scalar!(
        "select exists(select 1 from admins a join people p on p.org_id = a.org_id and p.id = a.person_id
                        where a.org_id = $1 and p.email = $2) as \"joined!\"",
        org_id,
        email
    )
    .fetch_one(executor)
    .await?;
    Ok(joined)
}

struct InvitationRecord {
    org_id: Uuid,
    id: Uuid,
    email: String,
    role: String,
    expires_at: OffsetDateTime,
    accepted_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    organization_name: String,
    recovers_admin_id: Option<Uuid>,
}

async fn find_invitation(conn: &mut PgConnection, token: &str, lock: bool) -> Result<InvitationRecord, DomainError> {
    let unusable =
        || DomainError::Invalid("This link is not valid. Ask an owner of your organization for a new one.".into());
    if !secrets::looks_like(token, secrets::INVITATION_PREFIX) {
        return Err(unusable());
    }
    let hash = secrets::digest(token);
    let record = if lock {
        // language=PostgreSQL
        sqlx::query_as!(
            InvitationRecord,
            "select i.org_id, i.id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at, o.name as organization_name,
                    i.recovers_admin_id
             from admin_invitations i join organizations o on o.id = i.org_id
             where i.token_hash = $1 for update of i",
            hash
        )
        .fetch_optional(&mut *conn)
        .await?
    } else {
        // language=PostgreSQL
        sqlx::query_as!(
            InvitationRecord,
            "select i.org_id, i.id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at, o.name as organization_name,
                    i.recovers_admin_id
             from admin_invitations i join organizations o on o.id = i.org_id
             where i.token_hash = $1",
            hash
        )
        .fetch_optional(&mut *conn)
        .await?
    };
    record.ok_or_else(unusable)
}

fn check_usable(record: &InvitationRecord, now: OffsetDateTime) -> Result<Role, DomainError> {
    if record.accepted_at.is_some() {
        return Err(DomainError::Conflict(
            "This link was already used. Sign in instead, or ask an owner for a new link.".into(),
        ));
    }
    if record.revoked_at.is_some() {
        return Err(DomainError::Invalid(
            "This link was withdrawn. Ask an owner of your organization for a new one.".into(),
        ));
    }
    if record.expires_at <= now {
        return Err(DomainError::Invalid(
            "This link has expired (links are valid for 72 hours). Ask an owner for a new one.".into(),
        ));
    }
    record.role.parse::<Role>().map_err(DomainError::Internal)
}

/// What the setup page shows before the password is chosen.
pub async fn preview_invitation(
    pool: &PgPool,
    token: &str,
    now: OffsetDateTime,
) -> Result<InvitationPreview, DomainError> {
    let mut conn = pool.acquire().await?;
    let record = find_invitation(&mut conn, token, false).await?;
    let role = check_usable(&record, now)?;
    Ok(InvitationPreview {
        organization_name: record.organization_name,
        email: record.email,
        role,
        expires_at: record.expires_at,
    })
}

/// Redeems an invitation: creates (or reuses) the person, makes them an admin with the
/// invitation's role and password, and marks the link used — one transaction, one audit event.
/// Returns the new admin's email.
pub async fn accept_invitation(
    pool: &PgPool,
    token: &str,
    display_name: &str,
    password: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<String, DomainError> {
    let display_name = validate::label("Your name", display_name, 200)?;
    passwords::check_policy(password)?;
    let password_hash = passwords::hash(password.to_string()).await?;

    // The invitation names the organization and the new admin the work is done as; it is read
    // again under a lock inside the work.
    let org_id = find_invitation(&mut *pool.acquire().await?, token, false).await?.org_id;
    let admin_id = Uuid::new_v4();
    let mut work = Work::begin(pool, org_id, Actor::Anonymous, meta, now).await?;
    let record = find_invitation(work.conn(), token, true).await?;
    let role = check_usable(&record, now)?;
    if let Some(admin_id) = record.recovers_admin_id {
        return reset_password(work, &record, admin_id, &password_hash).await;
    }
    // language=PostgreSQL
    let person_id = sqlx::query_scalar!(
        "insert into people (org_id, id, email, display_name, created_at) values ($1, $2, $3, $4, $5)
         on conflict (org_id, email) do update set display_name = excluded.display_name, admin_removed_at = null
         returning id",
        record.org_id,
        Uuid::new_v4(),
        record.email,
        display_name,
        now
    )
    .fetch_one(work.conn())
    .await?;
    // language=PostgreSQL
    sqlx::query!(
        "insert into admins (org_id, id, person_id, role, password_hash, created_at) values ($1, $2, $3, $4, $5, $6)",
        record.org_id,
        admin_id,
        person_id,
        role.as_str(),
        password_hash,
        now
    )
    .execute(work.conn())
    .await
    .on_constraint("admins_person_key", || {
        DomainError::Conflict(format!("{} is already an admin; sign in instead", record.email))
    })?;
    // language=PostgreSQL
    sqlx::query!(
        "update admin_invitations set accepted_at = $3 where org_id = $1 and id = $2",
        record.org_id,
        record.id,
        now
    )
    .execute(work.conn())
    .await?;
    let event = NewEvent::new(record.org_id, Actor::Admin { admin_id, label: record.email.clone() }, "admin.joined")
        .target("admin", admin_id, &record.email)
        .details(json!({ "role": role.as_str(), "invitation_id": record.id }));
    work.record(event).await?;
    work.commit().await?;
    Ok(record.email)
}

/// Completes a recovery link: the admin's new password, the link used up.
async fn reset_password(
    mut work: Work<'_>,
    record: &InvitationRecord,
    admin_id: Uuid,
    password_hash: &str,
) -> Result<String, DomainError> {
    // language=PostgreSQL
    let updated = sqlx::query!(
        "update admins a set password_hash = $3 from people p
         where a.org_id = $1 and a.id = $2 and p.org_id = a.org_id and p.id = a.person_id and p.active and p.email = $4",
        record.org_id,
        admin_id,
        password_hash,
        record.email
    )
    .execute(work.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Err(DomainError::Invalid("This link is not valid any more: the admin was removed.".into()));
    }
    // language=PostgreSQL
    sqlx::query!(
        "update admin_invitations set accepted_at = $3 where org_id = $1 and id = $2",
        record.org_id,
        record.id,
        work.now()
    )
    .execute(work.conn())
    .await?;
    let event =
        NewEvent::new(record.org_id, Actor::Admin { admin_id, label: record.email.clone() }, "admin.password_reset")
            .target("admin", admin_id, &record.email)
            .details(json!({ "invitation_id": record.id }));
    work.record(event).await?;
    work.commit().await?;
    Ok(record.email.clone())
}

/// Loads an admin; `None` when the admin or their person is gone or inactive.
pub async fn load_session(pool: &PgPool, org_id: Uuid, admin_id: Uuid) -> Result<Option<AdminSession>, DomainError> {
    load(pool, org_id, admin_id, None).await
}

/// Loads the admin behind a session that began at `signed_in_at`; also `None` when their
/// sessions were ended after that (a recovery).
pub async fn load_signed_in(
    pool: &PgPool,
    org_id: Uuid,
    admin_id: Uuid,
    signed_in_at: OffsetDateTime,
) -> Result<Option<AdminSession>, DomainError> {
    load(pool, org_id, admin_id, Some(signed_in_at)).await
}

async fn load(
    pool: &PgPool,
    org_id: Uuid,
    admin_id: Uuid,
    signed_in_at: Option<OffsetDateTime>,
) -> Result<Option<AdminSession>, DomainError> {
    // language=PostgreSQL
    let row = sqlx::query!(
        "select a.person_id, a.role, p.email, p.display_name, o.name as org_name
         from admins a
         join people p on p.org_id = a.org_id and p.id = a.person_id
         join organizations o on o.id = a.org_id
         where a.org_id = $1 and a.id = $2 and p.active
           and ($3::timestamptz is null or a.sessions_not_before is null or a.sessions_not_before <= $3)",
        org_id,
        admin_id,
        signed_in_at
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(AdminSession::authenticated(
        org_id,
        row.org_name,
        admin_id,
        row.person_id,
        row.email,
        row.display_name,
        row.role.parse().map_err(DomainError::Internal)?,
    )))
}

impl AdminSession {
    /// The platform operator acting as one of an organization's admins (the demo seeder's
    /// approvers). Never reachable from a request.
    pub async fn for_operator(pool: &PgPool, org_id: Uuid, email: &str) -> Result<AdminSession, DomainError> {
        // language=PostgreSQL
        let admin_id = sqlx::query_scalar!(
            "select a.id from admins a join people p on p.org_id = a.org_id and p.id = a.person_id where a.org_id = $1 and p.email = $2",
            org_id,
            email
        )
        .fetch_optional(pool)
        .await?
        .ok_or(DomainError::NotFound)?;
        load_session(pool, org_id, admin_id).await?.ok_or(DomainError::NotFound)
    }
}

/// Admins and pending invitations of the caller's organization.
/// Permission: view portal.
pub async fn overview(pool: &PgPool, admin: &AdminSession, now: OffsetDateTime) -> Result<AdminsOverview, DomainError> {
    admin.require(Permission::ViewPortal)?;
    // language=PostgreSQL
    let admins = sqlx::query!(
        "select a.id, a.role, a.last_login_at, a.created_at, p.email, p.display_name
         from admins a join people p on p.org_id = a.org_id and p.id = a.person_id
         where a.org_id = $1
         order by case a.role when 'owner' then 0 when 'admin' then 1 when 'approver' then 2 else 3 end, p.email",
        admin.org_id()
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| {
        Ok(AdminRow {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            role: row.role.parse().map_err(DomainError::Internal)?,
            last_login_at: row.last_login_at,
            joined_at: row.created_at,
        })
    })
    .collect::<Result<Vec<_>, DomainError>>()?;
    // language=PostgreSQL
    let invitations = sqlx::query!(
        "select i.id, i.email, i.role, i.expires_at, coalesce(p.email, 'platform operator') as \"invited_by!\"
         from admin_invitations i
         left join admins a on a.org_id = i.org_id and a.id = i.invited_by
         left join people p on p.org_id = a.org_id and p.id = a.person_id
         where i.org_id = $1 and i.accepted_at is null and i.revoked_at is null
         order by i.created_at desc",
        admin.org_id()
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| {
        Ok(InvitationRow {
            id: row.id,
            email: row.email,
            role: row.role.parse().map_err(DomainError::Internal)?,
            invited_by: row.invited_by,
            expired: row.expires_at <= now,
            expires_at: row.expires_at,
        })
    })
    .collect::<Result<Vec<_>, DomainError>>()?;
    Ok(AdminsOverview { admins, invitations })
}

/// The organization's active owners as (admin id, person id), locked so that two concurrent
/// changes cannot remove the last one. A deactivated owner cannot sign in, so does not count.
pub(crate) async fn lock_active_owners(
    conn: &mut PgConnection,
    org_id: Uuid,
) -> Result<Vec<(Uuid, Uuid)>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query!(
        "select a.id, a.person_id from admins a join people p on p.org_id = a.org_id and p.id = a.person_id
         where a.org_id = $1 and a.role = 'owner' and p.active for update of a",
        org_id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.person_id)).collect())
}

/// Changes another admin's role. The last owner cannot be demoted.
pub async fn change_role(pool: &PgPool, call: Call<'_>, target_admin_id: Uuid, role: Role) -> Result<(), DomainError> {
    admin_or_operator(&call)?;
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    let owners = lock_active_owners(work.conn(), org_id).await?;
    // language=PostgreSQL
    let target = sqlx::query!(
        "select a.role, p.email from admins a join people p on p.org_id = a.org_id and p.id = a.person_id
         where a.org_id = $1 and a.id = $2 for update of a",
        org_id,
        target_admin_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    let from: Role = target.role.parse().map_err(DomainError::Internal)?;
    if from == role {
        return Ok(());
    }
    if from == Role::Owner && owners.iter().all(|(admin_id, _)| *admin_id == target_admin_id) {
        return Err(DomainError::Conflict(
            "An organization needs at least one owner. Make someone else an owner first.".into(),
        ));
    }
    // language=PostgreSQL
    sqlx::query!("update admins set role = $3 where org_id = $1 and id = $2", org_id, target_admin_id, role.as_str())
        .execute(work.conn())
        .await?;
    let event = work
        .event("admin.role_changed")
        .target("admin", target_admin_id, &target.email)
        .details(json!({ "from": from.as_str(), "to": role.as_str() }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}

/// Removes an admin from the portal: their sessions end at their next request (a session is
/// only as good as its admin row), they keep their place in the directory, and no IdP group
/// mapping makes them an admin again (only a new invitation does). The last active
/// owner cannot be removed; only owners remove admins. Removing yourself is allowed while
/// another owner remains, which is how an owner hands the organization over.
pub async fn remove(pool: &PgPool, call: Call<'_>, target_admin_id: Uuid) -> Result<(), DomainError> {
    admin_or_operator(&call)?;
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    let owners = lock_active_owners(work.conn(), org_id).await?;
    // language=PostgreSQL
    let removed = sqlx::query!(
        "delete from admins a using people p
         where a.org_id = $1 and a.id = $2 and p.org_id = a.org_id and p.id = a.person_id
         returning a.role, a.person_id, p.email",
        org_id,
        target_admin_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    if owners.iter().all(|(admin_id, _)| *admin_id == target_admin_id) && !owners.is_empty() {
        return Err(DomainError::Conflict(
            "An organization needs at least one owner. Make someone else an owner first.".into(),
        ));
    }
    // No group mapping brings them back at their next SSO sign-in; an invitation does.
    // language=PostgreSQL
    sqlx::query!(
        "update people set admin_removed_at = $3 where org_id = $1 and id = $2",
        org_id,
        removed.person_id,
        call.now
    )
    .execute(work.conn())
    .await?;
    let event = work
        .event("admin.removed")
        .target("admin", target_admin_id, &removed.email)
        .details(json!({ "role": removed.role }));
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}

/// Withdraws a pending invitation so its link stops working.
pub async fn revoke_invitation(pool: &PgPool, call: Call<'_>, invitation_id: Uuid) -> Result<(), DomainError> {
    admin_or_operator(&call)?;
    let mut work = call.begin(pool).await?;
    let (org_id, now) = (work.org_id(), call.now);
    // language=PostgreSQL
    let email = sqlx::query_scalar!(
        "update admin_invitations set revoked_at = $3
         where org_id = $1 and id = $2 and accepted_at is null and revoked_at is null
         returning email",
        org_id,
        invitation_id,
        now
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    let event = work.event("admin.invitation_revoked").target("invitation", invitation_id, email);
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}
