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

/// The role the server runs as in these tests (cluster-wide; each test database grants it).
const RUNTIME_ROLE: &str = "mandate_runtime_test";

/// A pool on the test database as the runtime role, after the owner granted it its rights.
async fn runtime_pool(owner: &sqlx::PgPool) -> sqlx::PgPool {
    // language=PostgreSQL
    sqlx::query(&format!(
        "do $$ begin create role {RUNTIME_ROLE} login; exception when duplicate_object or unique_violation then null; end $$"
    ))
    .execute(owner)
    .await
    .unwrap();
    mandate::server::database::grant_runtime_role(owner, RUNTIME_ROLE).await.unwrap();
    let options = (*owner.connect_options()).clone().username(RUNTIME_ROLE);
    sqlx::postgres::PgPoolOptions::new().max_connections(10).connect_with(options).await.unwrap()
}

/// The server's runtime role does everything serving needs, and nothing it can do alters,
/// disables or drops the audit trail: only the schema owner could, and the server never holds
/// the owner's credentials.
#[sqlx::test]
async fn the_servers_own_database_role_cannot_rewrite_the_audit_trail(pool: sqlx::PgPool) {
    mandate::server::migrate(&pool).await.unwrap();
    let runtime = runtime_pool(&pool).await;
    assert_eq!(mandate::server::database::audit_trail_unprotected(&runtime).await.unwrap(), None);
    let warned = mandate::server::database::audit_trail_unprotected(&pool).await.unwrap();
    assert!(warned.is_some_and(|w| w.contains("superuser")), "the owner's role is flagged when it serves");

    // The product works under the runtime role: sign-in, agents, tokens, revocation, checkpoints.
    let app = spawn_migrated(runtime.clone(), config).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let agent = app.approved_agent(org_id, &owner, "Ledger", &["crm.read"]).await;
    let token = app.token(&agent).await;
    let api_key = app.api_key(org_id).await;
    assert_eq!(app.introspect(&api_key, &token).await["active"], true);
    let signed =
        audit::checkpoints::run_once(&runtime, &app.state.audit_keys, time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(signed.len(), 1, "the runtime role signs checkpoints");
    let events = audit::checkpoints::latest(&runtime, org_id).await.unwrap().unwrap().checkpoint.size;

    let attacks = [
        "update audit_events set actor_label = 'mallory'",
        "delete from audit_events",
        "truncate audit_events cascade",
        "alter table audit_events disable trigger all",
        "alter table audit_events disable trigger audit_events_no_update_or_delete",
        "drop trigger audit_events_no_update_or_delete on audit_events",
        "drop table audit_events cascade",
        "alter table audit_events rename to audit_events_old",
        "create or replace function audit_events_append_only() returns trigger language plpgsql as $$ begin return old; end $$",
        "update audit_checkpoints set size = 1",
        "delete from audit_checkpoints",
        "truncate audit_checkpoints cascade",
        "delete from audit_signing_keys",
        "update audit_chain_heads set last_seq = 0, last_hash = '\\x00'",
        "delete from audit_chain_heads",
        "set session_replication_role = replica",
        // Shadowing the tables the triggers read with temporary ones.
        "create temp table audit_chain_heads (org_id uuid, pruned_through bigint)",
        "delete from _sqlx_migrations",
    ];
    for attack in attacks {
        let mut conn = runtime.acquire().await.unwrap();
        let refused = sqlx::query(attack).execute(&mut *conn).await;
        assert!(refused.is_err(), "the runtime role ran: {attack}");
    }
    assert_eq!(
        audit::verify(&runtime, &app.state.audit_keys, org_id).await.unwrap(),
        ChainStatus::Intact { events, checkpoints: 1, signed_size: events, pruned_through: 0 },
        "nothing changed"
    );
    // Even through the chain head and a checkpoint row it may write, the role cannot erase recent
    // history: events younger than 30 days (by the database's clock) stay.
    let size = events;
    let mut tx = runtime.begin().await.unwrap();
    sqlx::query("update audit_chain_heads set pruned_through = $2 where org_id = $1")
        .bind(org_id)
        .bind(size)
        .execute(&mut *tx)
        .await
        .unwrap();
    let erased = sqlx::query("delete from audit_events where org_id = $1").bind(org_id).execute(&mut *tx).await;
    assert!(erased.is_err(), "recent events were deleted by the runtime role");
    drop(tx);
    // The same statements are what the owner's role could do: the refusals above are the role's.
    sqlx::query("alter table audit_events disable trigger audit_events_no_update_or_delete")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("alter table audit_events enable trigger audit_events_no_update_or_delete")
        .execute(&pool)
        .await
        .unwrap();
}
