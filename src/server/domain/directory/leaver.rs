//! The one leaver rule. A person leaves when their directory says so (SCIM `active=false` by PUT
//! or PATCH, or a SCIM DELETE) or when an admin deactivates them in the portal; every one of
//! those paths calls `leave`, inside the unit of work that records the path's own audit event.
//! In that one transaction the person becomes inactive, every agent acting for them is revoked
//! (so every token they carry is inactive at the next introspection on every node), their
//! pending scope requests are cancelled and their portal sessions stop being honoured (the
//! session guard loads the person fresh on every request). Coming back (`rejoin`) reactivates
//! the person only: revoked agents stay revoked.

use crate::model::{Permission, Role};
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::agents::revocation::{end_agents_of_person, EndedAgents};
use crate::server::domain::org::admins::lock_active_owners;
use crate::server::domain::{Call, Caller, DomainError, Work};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// The reason recorded on each agent a leaver's departure revoked.
pub const REASON: &str = "owner left the organization";

/// What a person's departure ended.
pub struct Departure {
    pub ended: EndedAgents,
    /// Whether the person held a portal role (their sessions are no longer honoured).
    pub was_admin: bool,
}

impl Departure {
    /// The counts for the audit event that records the departure.
    pub fn details(&self) -> Value {
        json!({
            "revoked_agents": self.ended.agents_json(),
            "revoked_tokens": self.ended.live_tokens,
            "cancelled_requests": self.ended.cancelled_requests,
            "portal_access_ended": self.was_admin,
        })
    }
}

/// Ends everything a person's authority carried, inside `work`. The caller has locked the
/// person's row and knows they are active; it records the one audit event (with `details()`).
/// The organization's last active owner never leaves this way, from any path (portal, SCIM
/// PUT, PATCH or DELETE): someone must be able to sign in and run the organization.
pub async fn leave<'a>(work: &mut Work<'a>, cache: &'a Mandates, person_id: Uuid) -> Result<Departure, DomainError> {
    let (org_id, now) = (work.org_id(), work.now());
    let owners = lock_active_owners(work.conn(), org_id).await?;
    if owners.iter().all(|(_, owner)| *owner == person_id) && !owners.is_empty() {
        return Err(DomainError::Conflict(
            "This person is the organization's last active owner and cannot be deactivated or removed. \
             Make someone else an owner first."
                .into(),
        ));
    }
    // language=PostgreSQL
    sqlx::query!(
        "update people set active = false, deactivated_at = $3 where org_id = $1 and id = $2",
        org_id,
        person_id,
        now
    )
    .execute(work.conn())
    .await?;
    let ended = end_agents_of_person(work, cache, person_id, REASON).await?;
    // language=PostgreSQL
    let was_admin = sqlx::query_scalar!(
        r#"select exists(select 1 from admins where org_id = $1 and person_id = $2) as "admin!""#,
        org_id,
        person_id
    )
    .fetch_one(work.conn())
    .await?;
    work.announce(cache, Change::Person { org_id, person_id }).await?;
    Ok(Departure { ended, was_admin })
}

/// A person comes back: active again, agents still revoked.
pub async fn rejoin<'a>(work: &mut Work<'a>, cache: &'a Mandates, person_id: Uuid) -> Result<(), DomainError> {
    let org_id = work.org_id();
    // language=PostgreSQL
    sqlx::query!(
        "update people set active = true, deactivated_at = null where org_id = $1 and id = $2",
        org_id,
        person_id
    )
    .execute(work.conn())
    .await?;
    work.announce(cache, Change::Person { org_id, person_id }).await
}

/// Deactivates (or reactivates) a person in the portal (permission: people). Deactivation is
/// the leaver rule (`leaver::leave`): their agents are revoked, every token they carry stops,
/// their pending requests are cancelled and their portal sessions end. Reactivation does not
/// revive revoked agents. Returns the number of live tokens that stopped.
pub async fn set_active(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    person_id: Uuid,
    active: bool,
) -> Result<i64, DomainError> {
    call.require(Permission::ManagePeople)?;
    if !active && call.caller.person_id() == Some(person_id) {
        return Err(DomainError::Conflict("You cannot deactivate yourself.".into()));
    }
    if !active && matches!(call.caller, Caller::Admin(admin) if admin.role() != Role::Owner) {
        // An admin who could deactivate an owner could lock the owners out.
        // language=PostgreSQL
        let is_owner = sqlx::query_scalar!(
            r#"select exists(select 1 from admins where org_id = $1 and person_id = $2 and role = 'owner') as "owner!""#,
            call.org_id(),
            person_id
        )
        .fetch_one(pool)
        .await?;
        if is_owner {
            return Err(DomainError::Forbidden("only owners deactivate an owner"));
        }
    }
    let mut work = call.begin(pool).await?;
    let org_id = work.org_id();
    // language=PostgreSQL
    let person =
        sqlx::query!("select email, active from people where org_id = $1 and id = $2 for update", org_id, person_id)
            .fetch_optional(work.conn())
            .await?
            .ok_or(DomainError::NotFound)?;
    if person.active == active {
        return Ok(0);
    }
    let (action, details, stopped_tokens) = if active {
        rejoin(&mut work, cache, person_id).await?;
        ("person.reactivated", json!({}), 0)
    } else {
        let departure = leave(&mut work, cache, person_id).await?;
        let mut details = departure.details();
        // The name this event has always used for the count.
        details["inactive_tokens"] = json!(departure.ended.live_tokens);
        ("person.deactivated", details, departure.ended.live_tokens)
    };
    let event = work.event(action).target("person", person_id, &person.email).details(details);
    work.record(event).await?;
    work.commit().await?;
    Ok(stopped_tokens)
}
