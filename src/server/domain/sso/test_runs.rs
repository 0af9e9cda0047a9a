//! Test connection runs: an admin signs in through the IdP without it changing who is signed in;
//! each step's result is kept with the run and the outcome is audited (`connection.tested`). A
//! run is also how an admin links an IdP identity to their own account, and how a new
//! connection gets turned on.

use crate::model::connections::{StepStatus, TestStep};
use crate::model::Permission;
use crate::model::Role;
use crate::server::domain::actor::{Actor, Caller, RequestMeta};
use crate::server::domain::audit::NewEvent;
use crate::server::domain::sso::identity::SsoIdentity;
use crate::server::domain::sso::{connections, login};
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Starts a Test connection run (the admin then goes through the IdP).
/// Permission: SSO.
pub async fn start_test(
    pool: &PgPool,
    caller: Caller<'_>,
    connection_id: Uuid,
    now: OffsetDateTime,
) -> Result<Uuid, DomainError> {
    caller.require(Permission::ManageSso)?;
    let Caller::Admin(admin) = caller else {
        return Err(DomainError::NotAllowed("Test connection runs in an admin's browser".into()));
    };
    let id = Uuid::new_v4();
    // language=PostgreSQL
    let inserted = sqlx::query!(
        "insert into connection_tests (org_id, id, connection_id, started_by, started_at)
         select $1, $2, $3, $4, $5 where exists (select 1 from connections where org_id = $1 and id = $3)",
        admin.org_id(),
        id,
        connection_id,
        admin.admin_id(),
        now
    )
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DomainError::NotFound);
    }
    Ok(id)
}

/// Records a Test connection run's steps and outcome (audited as `connection.tested`). When the
/// IdP vouched for an identity with the runner's own (verified) email, the run also links that
/// identity to the runner: an admin who is signed in and proves the identity is theirs is the
/// only way an existing admin account gets an SSO identity. The last step shows what signing in
/// with the identity would do. A passing run turns a new connection on when the runner may and
/// the run tested its current settings.
pub async fn finish_test(
    pool: &PgPool,
    org_id: Uuid,
    test_id: Uuid,
    steps: &[TestStep],
    identity: Option<&SsoIdentity>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let mut work = Work::begin(pool, org_id, Actor::Anonymous, meta, now).await?;
    // language=PostgreSQL
    let run = sqlx::query!(
        r#"select t.connection_id, c.name, c.ever_enabled, t.started_at >= c.trust_changed_at as "fresh!",
                  t.started_by, a.person_id, a.role, p.email
           from connection_tests t
           join connections c on c.org_id = t.org_id and c.id = t.connection_id
           join admins a on a.org_id = t.org_id and a.id = t.started_by
           join people p on p.org_id = a.org_id and p.id = a.person_id
           where t.org_id = $1 and t.id = $2 and t.finished_at is null for update of t, c"#,
        org_id,
        test_id
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    let runner = Actor::Admin { admin_id: run.started_by, label: run.email.clone() };
    let mut steps = steps.to_vec();
    let reached_identity = !steps.is_empty() && steps.iter().all(|s| s.status == StepStatus::Ok);
    if let (Some(identity), true) = (identity, reached_identity) {
        let trust = login::connection_trust(work.conn(), org_id, run.connection_id).await?;
        let own_email = identity.email.as_deref().is_some_and(|e| e.trim().eq_ignore_ascii_case(&run.email));
        let linked = login::linked_person(work.conn(), org_id, run.connection_id, &trust, &identity.subject).await?;
        let same_idp = trust.ensure_same_idp(identity).is_ok();
        if same_idp && linked.is_none() && own_email && trust.vouches_for_email(identity) {
            // language=PostgreSQL
            let already = sqlx::query_scalar!(
                r#"select exists (select 1 from sso_identities where org_id = $1 and connection_id = $2 and person_id = $3) as "already!""#,
                org_id,
                run.connection_id,
                run.person_id
            )
            .fetch_one(work.conn())
            .await?;
            let subject = &identity.subject;
            if !already
                && login::link(work.conn(), org_id, run.connection_id, &trust, subject, run.person_id, now).await?
            {
                work.record(
                    NewEvent::new(org_id, runner.clone(), "sso.identity_linked")
                        .target("admin", run.started_by, &run.email)
                        .details(json!({
                            "connection_id": run.connection_id,
                            "subject_digest": login::subject_digest(org_id, &trust, &identity.subject),
                            "test_id": test_id,
                        })),
                )
                .await?;
            }
        }
        steps.push(login::preview(work.conn(), org_id, run.connection_id, &trust, identity).await?);
    }
    let succeeded = !steps.is_empty() && steps.iter().all(|s| s.status == StepStatus::Ok);
    let failed_step = steps.iter().find(|s| s.status == StepStatus::Failed).map(|s| s.step.clone());
    // language=PostgreSQL
    sqlx::query!(
        "update connection_tests set finished_at = $3, succeeded = $4, steps = $5 where org_id = $1 and id = $2",
        org_id,
        test_id,
        now,
        succeeded,
        serde_json::to_value(&steps).map_err(|e| DomainError::Internal(e.to_string()))?
    )
    .execute(work.conn())
    .await?;
    let mut event = NewEvent::new(org_id, runner.clone(), "connection.tested")
        .target("connection", run.connection_id, &run.name)
        .details(json!({ "succeeded": succeeded, "failed_step": failed_step, "test_id": test_id }));
    if !succeeded {
        event = event.failed();
    }
    work.record(event).await?;
    // Only a new connection, tested under its current settings, by someone who may turn it on.
    let may_enable = run.role.parse::<Role>().is_ok_and(|role| role.can(Permission::ChangeSsoTrust));
    if succeeded && !run.ever_enabled && run.fresh && may_enable {
        connections::switch(work.conn(), org_id, run.connection_id, true, now).await?;
        work.record(
            NewEvent::new(org_id, runner, "connection.enabled")
                .target("connection", run.connection_id, &run.name)
                .details(json!({ "test_skipped": false, "test_id": test_id })),
        )
        .await?;
    }
    work.commit().await?;
    Ok(())
}
