//! Agent actions, signed checkpoints and proofs: every action is traced to its human, every event
//! is provably in a signed tree, and tampering of any kind — a flipped byte, a deleted or
//! reordered event, a truncated and rewritten tail — is detected, also offline from an export.

use crate::support::*;
use mandate::model::audit::{AuditFilter, ChainStatus, Checkpoint, ConsistencyProof, InclusionProof};
use mandate::server::domain::audit::merkle;
use mandate::server::domain::audit::{self, checkpoints, retention};
use reqwest::Method;
use serde_json::{json, Value};
use std::process::Command;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

struct Scene {
    app: TestApp,
    org_id: Uuid,
    owner: String,
    api_key: String,
    token: String,
}

async fn scene(pool: sqlx::PgPool) -> Scene {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let agent = app.approved_agent(org_id, &owner, "Ledger", &["crm.read", "crm.write"]).await;
    let token = app.token(&agent).await;
    let api_key = app.api_key(org_id).await;
    Scene { app, org_id, owner, api_key, token }
}

impl Scene {
    async fn report(&self, bearer: &str, body: Value) -> reqwest::Response {
        self.app.api(Method::POST, bearer, "/api/v1/audit/events", Some(body)).await
    }

    /// Reports `n` agent actions with the agent's token.
    async fn actions(&self, n: usize) {
        for i in 0..n {
            let body = json!({ "action": "crm.contact.read", "target": { "type": "contact", "id": format!("c-{i}") } });
            let response = self.report(&self.token, body).await;
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        }
    }

    async fn checkpoint(&self) -> Checkpoint {
        checkpoints::run_once(&self.app.pool, &self.app.state.audit_keys, OffsetDateTime::now_utc()).await.unwrap();
        checkpoints::latest(&self.app.pool, self.org_id).await.unwrap().unwrap().checkpoint
    }

    async fn verify(&self) -> ChainStatus {
        audit::verify(&self.app.pool, &self.app.state.audit_keys, self.org_id).await.unwrap()
    }

    async fn last_seq(&self) -> i64 {
        sqlx::query_scalar("select last_seq from audit_chain_heads where org_id = $1")
            .bind(self.org_id)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.app.api(Method::GET, &self.api_key, path, None).await;
        assert_eq!(response.status(), 200, "{path}: {}", response.text().await.unwrap());
        response.json().await.unwrap()
    }
}

/// Runs statements with the append-only triggers off, as an attacker with database access would.
async fn tamper(pool: &sqlx::PgPool, statements: &[&str]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica").execute(&mut *tx).await.unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn broken_at(status: ChainStatus) -> (i64, String) {
    match status {
        ChainStatus::Broken { first_bad_seq, reason } => (first_bad_seq, reason),
        intact => panic!("tampering went unnoticed: {intact:?}"),
    }
}

#[sqlx::test]
async fn an_agent_action_records_the_whole_chain_of_authority(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    let body = json!({
        "action": "crm.contact.update",
        "target": { "type": "contact", "id": "c-42", "label": "Ada Lovelace" },
        "outcome": "success",
        "metadata": { "fields": ["phone"] },
        "scopes": ["crm.write"],
    });
    let response = s.report(&s.token, body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let seq = created["seq"].as_i64().unwrap();

    let filter = AuditFilter { person: s.owner.clone(), action: "crm.contact.update".into(), ..Default::default() };
    let page = audit::list(&s.app.pool, s.org_id, &filter, 10).await.unwrap();
    assert_eq!(page.events.len(), 1, "found by person and action");
    let event = &page.events[0];
    assert_eq!(event.seq, seq);
    assert_eq!(event.actor_type, "agent");
    assert_eq!(event.actor_label, "Ledger");
    assert_eq!(event.target_label.as_deref(), Some("Ada Lovelace"));
    let d = &event.details;
    assert_eq!(d["person"]["email"], s.owner.as_str());
    assert_eq!(d["agent"]["name"], "Ledger");
    assert_eq!(d["scopes_used"], json!(["crm.write"]));
    assert_eq!(d["approvals"].as_array().unwrap().len(), 1, "only the approval behind the scope used");
    assert_eq!(d["approvals"][0]["scope"], "crm.write");
    assert_eq!(d["approvals"][0]["approved_by"], "platform operator");
    assert!(d["approvals"][0]["approved_at"].is_string());
    assert_eq!(d["token"]["status"], "active");
    assert!(d["token"]["jti"].is_string() && d["token"]["mandate_id"].is_string());
    assert_eq!(d["metadata"]["fields"], json!(["phone"]));
    let story = event.authority_story().unwrap().join("\n");
    assert!(story.contains("platform operator approved crm.write for agent Ledger on "), "{story}");
    assert!(story.contains(&format!("acts for Acme owner <{}>", s.owner)) || story.contains(&s.owner), "{story}");
    assert!(story.contains("Action crm.contact.update on Ada Lovelace: success"), "{story}");

    // Found by agent name too; another person's filter finds nothing.
    let by_agent = AuditFilter { agent: "ledger".into(), action: "crm.contact.update".into(), ..Default::default() };
    assert_eq!(audit::list(&s.app.pool, s.org_id, &by_agent, 10).await.unwrap().events.len(), 1);
    let other = AuditFilter { person: "nobody@acme.example".into(), ..Default::default() };
    assert!(audit::list(&s.app.pool, s.org_id, &other, 10).await.unwrap().events.is_empty());

    // A resource server reports with an API key, handing over the token the agent presented.
    let response =
        s.report(&s.api_key, json!({ "action": "crm.export", "token": s.token, "outcome": "failure" })).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let page =
        audit::list(&s.app.pool, s.org_id, &AuditFilter { action: "crm.export".into(), ..Default::default() }, 5)
            .await
            .unwrap();
    assert_eq!(page.events[0].outcome, "failure");
    assert_eq!(page.events[0].details["reported_by"]["type"], "api_key");
    assert_eq!(page.events[0].details["approvals"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.verify().await,
        ChainStatus::Intact { events: s.last_seq().await, checkpoints: 0, signed_size: 0, pruned_through: 0 }
    );
}

#[sqlx::test]
async fn bad_reports_are_refused_with_a_clear_problem_and_record_nothing(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    let before = s.last_seq().await;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (&s.token, json!({ "action": "agent.revoked" }), 422, "recorded by Mandate itself"),
        (&s.token, json!({ "action": "Bad Action" }), 422, "lowercase letters"),
        (&s.token, json!({ "action": "crm.read", "outcome": "maybe" }), 422, "outcome"),
        (&s.token, json!({ "action": "crm.read", "scopes": ["mail.send"] }), 403, "does not carry the scope"),
        (&s.token, json!({ "action": "crm.read", "metadata": "text" }), 422, "metadata must be a JSON object"),
        (&s.token, json!({ "action": "crm.read", "extra": 1 }), 422, "unknown field"),
        (&s.token, json!({ "action": "crm.read", "token": s.token }), 422, "only for API keys"),
        (&s.api_key, json!({ "action": "crm.read" }), 422, "send the access token"),
        // Least privilege, item 2: a key cannot report as any agent by naming a token's jti.
        (&s.api_key, json!({ "action": "crm.read", "token_jti": Uuid::new_v4() }), 422, "unknown field"),
        (
            &s.api_key,
            json!({ "action": "crm.read", "token": "eyJhbGciOiJFZERTQSJ9.e30.c2ln" }),
            422,
            "not an access token",
        ),
        ("not-a-token", json!({ "action": "crm.read" }), 401, "not active"),
    ];
    for (bearer, body, status, message) in cases {
        let response = s.report(bearer, body.clone()).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(message), "{body}: {problem}");
    }
    assert_eq!(s.last_seq().await, before, "nothing was recorded");

    // Another organization's API key cannot report on this organization's token.
    let (other_org, _) = s.app.org_with_owner("Globex").await;
    let other_key = s.app.api_key(other_org).await;
    let response = s.report(&other_key, json!({ "action": "crm.read", "token": s.token })).await;
    assert_eq!(response.status(), 422);
}

#[sqlx::test]
async fn every_event_has_an_inclusion_proof_against_a_signed_checkpoint(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(5).await;
    let first = s.checkpoint().await;
    s.actions(12).await;
    let second = s.checkpoint().await;
    assert_eq!(second.size, s.last_seq().await);
    assert!(first.size < second.size);

    let keys: Value = serde_json::from_str(
        &s.app.bare_client().get(s.app.url("/api/v1/audit/keys")).send().await.unwrap().text().await.unwrap(),
    )
    .unwrap();
    let public_key = keys["keys"][0]["public_key"].as_str().unwrap().to_string();
    let auditor = checkpoints::AuditKeys::from_public_keys([public_key.as_str()]).unwrap();
    assert!(auditor.verifies(&second), "the published key verifies the checkpoint");

    let latest: Checkpoint = serde_json::from_value(s.get_json("/api/v1/audit/checkpoint").await).unwrap();
    assert_eq!(latest, second);
    for seq in 1..=second.size {
        let proof: InclusionProof =
            serde_json::from_value(s.get_json(&format!("/api/v1/audit/proof/{seq}")).await).unwrap();
        assert!(checkpoints::inclusion_verifies(&proof, &auditor), "event {seq}");
        let mut forged = proof.clone();
        forged.event_hash = hex::encode([0u8; 32]);
        assert!(!checkpoints::inclusion_verifies(&forged, &auditor), "a different event does not verify");
    }
    // Against the older checkpoint as well.
    let proof: InclusionProof =
        serde_json::from_value(s.get_json(&format!("/api/v1/audit/proof/2?size={}", first.size)).await).unwrap();
    assert!(checkpoints::inclusion_verifies(&proof, &auditor));
    assert_eq!(proof.tree_size, first.size);

    let consistency: ConsistencyProof = serde_json::from_value(
        s.get_json(&format!("/api/v1/audit/consistency?from={}&to={}", first.size, second.size)).await,
    )
    .unwrap();
    assert!(checkpoints::consistency_verifies(&consistency, &auditor));
    let root = |c: &Checkpoint| -> merkle::Hash { hex::decode(&c.root_hash).unwrap().try_into().unwrap() };
    let path: Vec<merkle::Hash> =
        consistency.proof.iter().map(|h| hex::decode(h).unwrap().try_into().unwrap()).collect();
    assert!(!merkle::verify_consistency(first.size as u64, second.size as u64, &[9; 32], &root(&second), &path));

    // Errors an auditor can act on.
    let response = s.app.api(Method::GET, &s.api_key, &format!("/api/v1/audit/proof/{}", second.size + 5), None).await;
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("not covered by the checkpoint"));
    // Another organization's key sees nothing of this log.
    let (other_org, _) = s.app.org_with_owner("Globex").await;
    let other_key = s.app.api_key(other_org).await;
    let response = s.app.api(Method::GET, &other_key, "/api/v1/audit/proof/1", None).await;
    assert_ne!(response.status(), 200);
}

#[sqlx::test]
async fn a_flipped_byte_a_deleted_or_reordered_event_is_detected(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(6).await;
    s.checkpoint().await;
    assert!(matches!(s.verify().await, ChainStatus::Intact { checkpoints: 1, .. }));
    let org = s.org_id;

    // One byte of one event's details.
    tamper(
        &s.app.pool,
        &[&format!(
        "update audit_events set details = overlay(details placing 'X' from 3 for 1) where org_id = '{org}' and seq = 4"
    )],
    )
    .await;
    let (seq, reason) = broken_at(s.verify().await);
    assert_eq!(seq, 4);
    assert!(reason.contains("altered"), "{reason}");
    let output = verify_cli(&s, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sequence number 4"));
}

#[sqlx::test]
async fn deleted_and_reordered_events_are_detected(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(6).await;
    s.checkpoint().await;
    let org = s.org_id;
    tamper(&s.app.pool, &[&format!("delete from audit_events where org_id = '{org}' and seq = 5")]).await;
    let (seq, reason) = broken_at(s.verify().await);
    assert_eq!(seq, 5);
    assert!(reason.contains("missing"), "{reason}");

    let s = scene_in_new_org(s).await;
    let org = s.org_id;
    // Swap events 3 and 4 (their numbers), keeping every row's own hash.
    tamper(
        &s.app.pool,
        &[
            &format!("update audit_events set seq = -3 where org_id = '{org}' and seq = 3"),
            &format!("update audit_events set seq = 3 where org_id = '{org}' and seq = 4"),
            &format!("update audit_events set seq = 4 where org_id = '{org}' and seq = -3"),
        ],
    )
    .await;
    let (seq, _) = broken_at(s.verify().await);
    assert_eq!(seq, 3);
}

/// A fresh organization with history in the same app (one database per test).
async fn scene_in_new_org(s: Scene) -> Scene {
    let (org_id, owner) = s.app.org_with_owner("Initech").await;
    let agent = s.app.approved_agent(org_id, &owner, "Ledger", &["crm.read"]).await;
    let token = s.app.token(&agent).await;
    let api_key = s.app.api_key(org_id).await;
    let next = Scene { app: s.app, org_id, owner, api_key, token };
    next.actions(6).await;
    next.checkpoint().await;
    next
}

/// Replaces events `from..` with forged ones whose chain is recomputed correctly, and moves the
/// head — what an attacker who knows the hash algorithm but not the signing key can do.
async fn rewrite_tail(s: &Scene, from: i64, forged: i64) {
    let org = s.org_id;
    let mut prev: Vec<u8> = sqlx::query_scalar("select hash from audit_events where org_id = $1 and seq = $2")
        .bind(org)
        .bind(from - 1)
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    let mut statements = vec![format!("delete from audit_events where org_id = '{org}' and seq >= {from}")];
    for seq in from..from + forged {
        let id = Uuid::new_v4();
        let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let fields = audit::ChainFields {
            org_id: org,
            seq,
            id,
            occurred_at_micros: audit::micros(at),
            actor_type: "agent",
            actor_id: None,
            actor_label: "Ledger",
            action: "crm.contact.read",
            target_type: None,
            target_id: None,
            target_label: None,
            outcome: "success",
            ip: None,
            user_agent: None,
            request_id: None,
            details: "{}",
        };
        let hash = audit::chain_hash(&prev, &fields);
        statements.push(format!(
            "insert into audit_events (org_id, seq, id, occurred_at, actor_type, actor_label, action, outcome, details, prev_hash, hash)
             values ('{org}', {seq}, '{id}', to_timestamp({}), 'agent', 'Ledger', 'crm.contact.read', 'success', '{{}}', '\\x{}', '\\x{}')",
            at.unix_timestamp(),
            hex::encode(&prev),
            hex::encode(hash)
        ));
        prev = hash.to_vec();
    }
    statements.push(format!(
        "update audit_chain_heads set last_seq = {}, last_hash = '\\x{}' where org_id = '{org}'",
        from + forged - 1,
        hex::encode(&prev)
    ));
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    tamper(&s.app.pool, &refs).await;
}

#[sqlx::test]
async fn a_truncated_and_rewritten_tail_is_detected_by_the_signed_checkpoints(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(8).await;
    let signed = s.checkpoint().await;
    // Keep the checkpoint outside, as an auditor would.
    let kept = std::env::temp_dir().join(format!("checkpoint-{}.json", s.org_id));
    std::fs::write(&kept, serde_json::to_string(&s.get_json("/api/v1/audit/checkpoint").await).unwrap()).unwrap();

    // Truncate to 5 events, then append 2 forged ones: the chain itself is consistent.
    rewrite_tail(&s, signed.size - 3, 2).await;
    let (seq, reason) = broken_at(s.verify().await);
    assert!(reason.contains("removed") || reason.contains("rewritten"), "{reason}");
    assert!(seq <= signed.size);

    // The attacker also deletes the stored checkpoints: the one kept outside still tells.
    tamper(&s.app.pool, &[&format!("delete from audit_checkpoints where org_id = '{}'", s.org_id)]).await;
    assert!(matches!(s.verify().await, ChainStatus::Intact { checkpoints: 0, .. }), "nothing inside to compare");
    let output = verify_cli(&s, &["--checkpoint", kept.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&output.stdout));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "broken");

    // Same length, different history: rewritten, not just truncated.
    rewrite_tail(&s, 3, signed.size - 2).await;
    assert_eq!(s.last_seq().await, signed.size);
    let output = verify_cli(&s, &["--checkpoint", kept.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("rewritten"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_file(kept);
}

#[sqlx::test]
async fn the_checkpointer_refuses_to_sign_over_altered_history(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(3).await;
    let signed = s.checkpoint().await;
    s.actions(3).await;
    let org = s.org_id;
    tamper(
        &s.app.pool,
        &[&format!(
            "update audit_events set actor_label = 'mallory' where org_id = '{org}' and seq = {}",
            signed.size + 2
        )],
    )
    .await;
    assert!(checkpoints::checkpoint_org(&s.app.pool, &s.app.state.audit_keys, org, OffsetDateTime::now_utc())
        .await
        .is_err());
    assert_eq!(checkpoints::latest(&s.app.pool, org).await.unwrap().unwrap().checkpoint, signed, "nothing new signed");

    // Deleting the checkpoints and rewriting from the start does not get history re-signed.
    let s = scene_in_new_org(s).await;
    let org = s.org_id;
    rewrite_tail(&s, 2, 10).await;
    tamper(&s.app.pool, &[&format!("delete from audit_checkpoints where org_id = '{org}'")]).await;
    let refused = checkpoints::checkpoint_org(&s.app.pool, &s.app.state.audit_keys, org, OffsetDateTime::now_utc())
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("refusing to sign"), "{refused}");
    assert!(checkpoints::latest(&s.app.pool, org).await.unwrap().is_none());
}

/// The checkpointer remembers what it saw signed in its state directory, outside the database:
/// history rewritten (and its checkpoints deleted) while the node was down is not re-signed when
/// it comes back.
#[sqlx::test]
async fn the_checkpointers_high_water_mark_survives_a_restart(pool: sqlx::PgPool) {
    use mandate::server::domain::audit::high_water::FILE_NAME;
    use mandate::server::domain::crypto::master_key::MasterKey;
    let s = scene(pool).await;
    s.actions(4).await;
    let dir = std::env::temp_dir().join(format!("mandate-state-{}", s.org_id));
    let file = dir.join(FILE_NAME);
    let master = MasterKey::new(MASTER_KEY);
    let node = checkpoints::AuditKeys::load(&s.app.pool, &master, Some(&file)).await.unwrap();
    let signed = checkpoints::run_once(&s.app.pool, &node, OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(signed, vec![(s.org_id, s.last_seq().await)]);
    assert!(std::fs::read_to_string(&file).unwrap().contains(&s.org_id.to_string()), "the mark is on disk");
    drop(node);

    // While the node is down, someone with the database rewrites history and its checkpoints.
    rewrite_tail(&s, 2, 10).await;
    tamper(&s.app.pool, &[&format!("delete from audit_checkpoints where org_id = '{}'", s.org_id)]).await;

    let restarted = checkpoints::AuditKeys::load(&s.app.pool, &master, Some(&file)).await.unwrap();
    let refused = checkpoints::checkpoint_org(&s.app.pool, &restarted, s.org_id, OffsetDateTime::now_utc())
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("refusing to sign"), "{refused}");
    assert!(checkpoints::latest(&s.app.pool, s.org_id).await.unwrap().is_none(), "nothing signed");

    // What the file is for: a node that forgot would have vouched for the forgery.
    let amnesiac = checkpoints::AuditKeys::load(&s.app.pool, &master, None).await.unwrap();
    let forged = checkpoints::checkpoint_org(&s.app.pool, &amnesiac, s.org_id, OffsetDateTime::now_utc()).await;
    assert!(matches!(forged, Ok(Some(_))), "{forged:?}");

    // A damaged file stops the node rather than letting it start with no memory.
    std::fs::write(&file, "{ not json").unwrap();
    let damaged = checkpoints::AuditKeys::load(&s.app.pool, &master, Some(&file)).await.unwrap_err().to_string();
    assert!(damaged.contains("damaged"), "{damaged}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Someone else's valid Ed25519 public key, base64.
fn stranger_key() -> String {
    use base64::Engine;
    let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}

/// `mandate audit verify --org ORG [extra...]` against the test database.
fn verify_cli(s: &Scene, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mandate"))
        .args(["audit", "verify", "--org", &s.org_id.to_string()])
        .args(extra)
        .env("DATABASE_URL", database_url(&s.app.pool))
        .env("MANDATE_MASTER_KEY", hex::encode(MASTER_KEY))
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

#[sqlx::test]
async fn an_export_verifies_offline_with_only_the_public_key(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(7).await;
    s.checkpoint().await;
    let dir = std::env::temp_dir().join(format!("export-{}", s.org_id));
    std::fs::create_dir_all(&dir).unwrap();
    let export = s.app.api(Method::GET, &s.api_key, "/api/v1/audit/export?format=ndjson", None).await;
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let text = export.text().await.unwrap();
    assert_eq!(text.lines().count() as i64, s.last_seq().await, "every event exported");
    std::fs::write(dir.join("events.ndjson"), &text).unwrap();
    std::fs::write(dir.join("checkpoint.json"), s.get_json("/api/v1/audit/checkpoint").await.to_string()).unwrap();
    let keys = s.get_json("/api/v1/audit/keys").await;
    let public_key = keys["keys"][0]["public_key_pem"].as_str().unwrap().to_string();

    let offline = |events: &str| {
        Command::new(env!("CARGO_BIN_EXE_mandate"))
            .args(["audit", "verify", "--export", events, "--checkpoint"])
            .arg(dir.join("checkpoint.json"))
            .args(["--public-key", &public_key])
            // No database: prove the check needs none.
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let output = offline(dir.join("events.ndjson").to_str().unwrap());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "intact");
    assert_eq!(report["checkpoints"], 1);

    // One changed character in the export is caught.
    let tampered = text.replacen("crm.contact.read", "crm.contact.wipe", 1);
    std::fs::write(dir.join("tampered.ndjson"), tampered).unwrap();
    let output = offline(dir.join("tampered.ndjson").to_str().unwrap());
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    // A wrong public key does not verify the checkpoint.
    let output = Command::new(env!("CARGO_BIN_EXE_mandate"))
        .args(["audit", "verify", "--export", dir.join("events.ndjson").to_str().unwrap(), "--checkpoint"])
        .arg(dir.join("checkpoint.json"))
        .args(["--public-key", &stranger_key()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("signature"));

    // CSV export: a header and one line per event (details with commas are quoted).
    let csv = s.app.api(Method::GET, &s.api_key, "/api/v1/audit/export?format=csv&action=crm.contact.read", None).await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("seq,id,occurred_at,"));
    assert_eq!(csv.lines().filter(|l| l.contains(",crm.contact.read,")).count(), 7);
    let bad = s.app.api(Method::GET, &s.api_key, "/api/v1/audit/export?format=xlsx", None).await;
    assert_eq!(bad.status(), 422);
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test]
async fn retention_prunes_only_at_a_checkpoint_and_the_rest_still_verifies(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(4).await;
    let boundary = s.checkpoint().await;
    s.actions(3).await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(retention::apply(&s.app.pool, s.org_id, now).await.unwrap(), None, "nothing is old yet");

    // A year and more later, everything up to the newest checkpoint is old.
    let later = now + Duration::days(400);
    let applied = retention::apply(&s.app.pool, s.org_id, later).await.unwrap().unwrap();
    assert_eq!(applied.pruned_through, boundary.size, "never past the newest checkpoint");
    assert_eq!(applied.events_removed, boundary.size);
    let remaining: i64 = sqlx::query_scalar("select count(*) from audit_events where org_id = $1")
        .bind(s.org_id)
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(remaining, s.last_seq().await - boundary.size);
    // The pruning is itself audited, and what remains verifies from the boundary on.
    let page = audit::list(
        &s.app.pool,
        s.org_id,
        &AuditFilter { action: "audit.retention_applied".into(), ..Default::default() },
        5,
    )
    .await
    .unwrap();
    assert_eq!(page.events[0].details["pruned_through"], boundary.size);
    let latest = s.checkpoint().await;
    match s.verify().await {
        ChainStatus::Intact { pruned_through, events, .. } => {
            assert_eq!(pruned_through, boundary.size);
            assert_eq!(events, latest.size - boundary.size);
        }
        broken => panic!("{broken:?}"),
    }
    let auditor = &s.app.state.audit_keys;
    for seq in boundary.size + 1..=latest.size {
        let proof = checkpoints::inclusion(&s.app.pool, s.org_id, seq, None).await.unwrap();
        assert!(checkpoints::inclusion_verifies(&proof, auditor), "event {seq} after pruning");
    }
    let pruned = checkpoints::inclusion(&s.app.pool, s.org_id, 1, None).await.unwrap_err().to_string();
    assert!(pruned.contains("removed by retention"), "{pruned}");
    // Deleting above the boundary is still refused by PostgreSQL.
    let err = sqlx::query("delete from audit_events where org_id = $1")
        .bind(s.org_id)
        .execute(&s.app.pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[sqlx::test]
async fn relabelled_filter_columns_and_a_faked_retention_boundary_are_detected(pool: sqlx::PgPool) {
    let s = scene(pool).await;
    s.actions(4).await;
    s.checkpoint().await;
    s.actions(2).await;
    let org = s.org_id;

    // Moving an agent action to another person hides it from that person's timeline.
    let seq: i64 = sqlx::query_scalar("select max(seq) from audit_events where org_id = $1 and person_id is not null")
        .bind(org)
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    tamper(&s.app.pool, &[&format!("update audit_events set person_id = null where org_id = '{org}' and seq = {seq}")])
        .await;
    let (bad, reason) = broken_at(s.verify().await);
    assert_eq!(bad, seq);
    assert!(reason.contains("re-labelled"), "{reason}");

    // PostgreSQL refuses to move the head back or the boundary anywhere but a checkpoint...
    for statement in [
        format!("update audit_chain_heads set last_seq = 1 where org_id = '{org}'"),
        format!("update audit_chain_heads set pruned_through = 2 where org_id = '{org}'"),
    ] {
        let err = sqlx::query(&statement).execute(&s.app.pool).await.unwrap_err();
        assert!(err.to_string().contains("only moves forward"), "{statement}: {err}");
    }
    // ...and a boundary moved to a real checkpoint without retention is still caught.
    let s = scene_in_new_org(s).await;
    let org = s.org_id;
    let signed_here = checkpoints::latest(&s.app.pool, org).await.unwrap().unwrap().checkpoint;
    tamper(
        &s.app.pool,
        &[
            &format!("update audit_chain_heads set pruned_through = {} where org_id = '{org}'", signed_here.size),
            &format!("delete from audit_events where org_id = '{org}' and seq <= {}", signed_here.size),
        ],
    )
    .await;
    let (_, reason) = broken_at(s.verify().await);
    assert!(reason.contains("no audit.retention_applied event"), "{reason}");
}
