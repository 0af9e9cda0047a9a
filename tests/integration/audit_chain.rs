//! The audit chain: append-only in PostgreSQL, and verification names the first bad event.

use crate::support::*;
use mandate::model::audit::ChainStatus;
use mandate::model::Role;
use mandate::server::domain::audit;
use std::process::Command;

async fn org_with_history(app: &TestApp) -> uuid::Uuid {
    let (org_id, owner) = app.org_with_owner("Acme").await;
    app.add_admin(org_id, "sam", Role::Admin).await;
    let browser = app.signed_in(&owner).await;
    browser.login(&owner, "wrong password here").await;
    browser.post("/auth/logout").await;
    org_id
}

fn verify_cli(pool: &sqlx::PgPool, org_id: uuid::Uuid) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mandate"))
        .args(["audit", "verify", "--org", &org_id.to_string()])
        .env("DATABASE_URL", database_url(pool))
        .env("MANDATE_MASTER_KEY", hex::encode(MASTER_KEY))
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

#[sqlx::test]
async fn an_intact_chain_verifies(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let org_id = org_with_history(&app).await;
    let events: i64 = sqlx::query_scalar("select count(*) from audit_events where org_id = $1")
        .bind(org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(events >= 8, "history recorded: {events}");
    assert_eq!(
        audit::verify(&app.pool, &app.state.audit_keys, org_id).await.unwrap(),
        ChainStatus::Intact { events, checkpoints: 0, signed_size: 0, pruned_through: 0 }
    );

    let output = verify_cli(&app.pool, org_id);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "intact");
    assert_eq!(report["events"], events);
}

#[sqlx::test]
async fn postgres_refuses_to_rewrite_the_log(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    org_with_history(&app).await;
    for statement in
        ["update audit_events set actor_label = 'mallory'", "delete from audit_events", "truncate audit_events cascade"]
    {
        let err = sqlx::query(statement).execute(&app.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
}

async fn tamper(pool: &sqlx::PgPool, statement: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("alter table audit_events disable trigger audit_events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(statement).execute(&mut *tx).await.unwrap();
    sqlx::query("alter table audit_events enable trigger audit_events_no_update_or_delete")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test]
async fn an_altered_event_is_named_by_the_verifier(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let org_id = org_with_history(&app).await;
    tamper(&app.pool, "update audit_events set actor_label = 'mallory' where seq = 3").await;
    match audit::verify(&app.pool, &app.state.audit_keys, org_id).await.unwrap() {
        ChainStatus::Broken { first_bad_seq, reason } => {
            assert_eq!(first_bad_seq, 3);
            assert!(reason.contains("altered"), "{reason}");
        }
        other => panic!("tampering went unnoticed: {other:?}"),
    }
    let output = verify_cli(&app.pool, org_id);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sequence number 3"));
}

#[sqlx::test]
async fn altered_details_are_detected(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let org_id = org_with_history(&app).await;
    // Rewriting a field that is only in the details.
    tamper(&app.pool, "update audit_events set details = '{\"role\":\"owner\"}' where seq = 2").await;
    assert!(matches!(
        audit::verify(&app.pool, &app.state.audit_keys, org_id).await.unwrap(),
        ChainStatus::Broken { first_bad_seq: 2, .. }
    ));
}

#[sqlx::test]
async fn deleted_and_truncated_events_are_detected(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let org_id = org_with_history(&app).await;
    let last: i64 = sqlx::query_scalar("select max(seq) from audit_events where org_id = $1")
        .bind(org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    tamper(&app.pool, &format!("delete from audit_events where seq = {last}")).await;
    assert_eq!(
        audit::verify(&app.pool, &app.state.audit_keys, org_id).await.unwrap(),
        ChainStatus::Broken {
            first_bad_seq: last,
            reason: format!("the chain head records {last} events but only {} are intact in the log", last - 1)
        }
    );
    tamper(&app.pool, "delete from audit_events where seq = 4").await;
    assert!(matches!(
        audit::verify(&app.pool, &app.state.audit_keys, org_id).await.unwrap(),
        ChainStatus::Broken { first_bad_seq: 4, .. }
    ));
}
