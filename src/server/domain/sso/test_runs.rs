//! Test connection runs: an admin signs in through the IdP without it changing who is signed in;
//! each step's result is kept with the run and the outcome is audited (`connection.tested`).

use crate::model::connections::{StepStatus, TestStep};
use crate::model::Permission;
use crate::server::domain::actor::{Actor, Caller, RequestMeta};
use crate::server::domain::audit::NewEvent;
use crate::server::domain::directory::people;
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

/// Records a Test connection run's steps and outcome (audited as `connection.tested`).
pub async fn finish_test(
    pool: &PgPool,
    org_id: Uuid,
    test_id: Uuid,
    steps: &[TestStep],
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let succeeded = !steps.is_empty() && steps.iter().all(|s| s.status == StepStatus::Ok);
    let failed_step = steps.iter().find(|s| s.status == StepStatus::Failed).map(|s| s.step.clone());
    let mut work = Work::begin(pool, org_id, Actor::Anonymous, meta, now).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "update connection_tests t set finished_at = $3, succeeded = $4, steps = $5
         from connections c, admins a
         where t.org_id = $1 and t.id = $2 and t.finished_at is null
           and c.org_id = t.org_id and c.id = t.connection_id and a.org_id = t.org_id and a.id = t.started_by
         returning t.connection_id, c.name, t.started_by, a.person_id",
        org_id,
        test_id,
        now,
        succeeded,
        serde_json::to_value(steps).map_err(|e| DomainError::Internal(e.to_string()))?
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    let person = people::get(work.conn(), org_id, row.person_id).await?;
    let mut event =
        NewEvent::new(org_id, Actor::Admin { admin_id: row.started_by, label: person.email }, "connection.tested")
            .target("connection", row.connection_id, &row.name)
            .details(json!({ "succeeded": succeeded, "failed_step": failed_step, "test_id": test_id }));
    if !succeeded {
        event = event.failed();
    }
    work.record(event).await?;
    work.commit().await?;
    Ok(())
}
