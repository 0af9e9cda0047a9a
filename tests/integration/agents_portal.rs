//! The portal's agent, approval, scope and people operations, called as the browser calls them
//! (form-encoded server functions) by admins of each role.

use crate::support::*;
use mandate::model::Role;
use serde_json::Value;
use uuid::Uuid;

async fn person_id(app: &TestApp, email: &str) -> String {
    let id: Uuid =
        sqlx::query_scalar("select id from people where email = $1").bind(email).fetch_one(&app.pool).await.unwrap();
    id.to_string()
}

#[sqlx::test]
async fn an_admin_registers_an_agent_and_an_approver_approves_it(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let admin = app.signed_in(&owner).await;
    for (name, risk) in [("crm.read", "low"), ("crm.export", "high"), ("mail.send", "medium")] {
        let created = admin
            .rpc(
                "scopes/create",
                &[("name", name), ("description", "d"), ("risk", risk), ("max_token_lifetime_seconds", "300")],
            )
            .await;
        assert_eq!(created.status(), 200, "{name}");
    }
    let bad = admin
        .rpc(
            "scopes/create",
            &[("name", "CRM Read"), ("description", ""), ("risk", "low"), ("max_token_lifetime_seconds", "300")],
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert!(error_message(bad).await.contains("not a valid scope name"));
    let dup = admin
        .rpc(
            "scopes/create",
            &[("name", "crm.read"), ("description", ""), ("risk", "low"), ("max_token_lifetime_seconds", "300")],
        )
        .await;
    assert_eq!(dup.status(), 409);

    // The owner registers an agent acting for themself, with checkboxes 0 and 1 ticked.
    let me = person_id(&app, &owner).await;
    let registered = admin
        .rpc(
            "agents/register",
            &[
                ("name", "Ledger"),
                ("description", "Reconciles invoices"),
                ("owner_id", &me),
                ("scopes[0]", "crm.read"),
                ("scopes[1]", "crm.export"),
                ("reason", "month-end close"),
            ],
        )
        .await;
    assert_eq!(registered.status(), 200);
    let credentials: Value = registered.json().await.unwrap();
    let secret = credentials["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("mnd_sec_"));
    let stored: i64 = sqlx::query_scalar("select count(*) from agents where secret_hash = sha256($1::bytea)")
        .bind(secret.as_bytes())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the hash is stored");

    let pending: Vec<Value> = admin.rpc("approvals/list", &[("status", "pending")]).await.json().await.unwrap();
    assert_eq!(pending.len(), 2);
    let request_of =
        |scope: &str| pending.iter().find(|r| r["scope"] == scope).unwrap()["id"].as_str().unwrap().to_string();

    // The owner may approve the low-risk scope for their own agent, not the high-risk one.
    assert_eq!(admin.rpc("approvals/approve", &[("request_id", &request_of("crm.read"))]).await.status(), 200);
    let own_high = admin.rpc("approvals/approve", &[("request_id", &request_of("crm.export"))]).await;
    assert_eq!(own_high.status(), 403);
    assert!(error_message(own_high).await.contains("someone other than the agent's owner"));

    // An auditor cannot decide; an approver can, until a date.
    let auditor = app.signed_in(&app.add_admin(org_id, "lee", Role::Auditor).await).await;
    assert_eq!(auditor.rpc("approvals/approve", &[("request_id", &request_of("crm.export"))]).await.status(), 403);
    let approver = app.signed_in(&app.add_admin(org_id, "priya", Role::Approver).await).await;
    let bad_date =
        approver.rpc("approvals/approve", &[("request_id", &request_of("crm.export")), ("until", "next week")]).await;
    assert_eq!(bad_date.status(), 422);
    let ok = approver
        .rpc("approvals/approve", &[("request_id", &request_of("crm.export")), ("until", "2099-12-31"), ("note", "ok")])
        .await;
    assert_eq!(ok.status(), 200);
    let twice = approver.rpc("approvals/approve", &[("request_id", &request_of("crm.export"))]).await;
    assert_eq!(twice.status(), 409);
    // Approvers decide, they do not register agents.
    let approver_registers =
        approver.rpc("agents/register", &[("name", "X"), ("description", ""), ("owner_id", &me), ("reason", "")]).await;
    assert_eq!(approver_registers.status(), 403);

    let agent_id = credentials["agent_id"].as_str().unwrap();
    let detail: Value = admin.rpc("agents/detail", &[("agent_id", agent_id)]).await.json().await.unwrap();
    let scopes = detail["agent"]["scopes"].as_array().unwrap();
    assert!(scopes.iter().all(|s| s["in_mandate"] == true), "{scopes:?}");
    assert!(detail["events"].as_array().unwrap().iter().any(|e| e["action"] == "scope.approved"));

    let agent = mandate::model::agents::AgentCredentials {
        agent_id: agent_id.parse().unwrap(),
        client_id: credentials["client_id"].as_str().unwrap().into(),
        client_secret: secret.into(),
    };
    let token: Value = app.request_token(&agent, None).await.json().await.unwrap();
    assert_eq!(token["scope"], "crm.export crm.read");
}

#[sqlx::test]
async fn denial_needs_a_reason_and_withdrawal_ends_live_tokens(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let admin = app.signed_in(&owner).await;
    let agent = app.approved_agent(org_id, "dana@acme.example", "Ledger", &["crm.read"]).await;
    let token = app.token(&agent).await;

    let requested = admin
        .rpc(
            "agents/request-scope",
            &[("agent_id", &agent.agent_id.to_string()), ("scope", "crm.read"), ("reason", "")],
        )
        .await;
    assert_eq!(requested.status(), 409, "already approved");
    let unknown = admin
        .rpc(
            "agents/request-scope",
            &[("agent_id", &agent.agent_id.to_string()), ("scope", "crm.delete"), ("reason", "")],
        )
        .await;
    assert_eq!(unknown.status(), 422);
    assert!(error_message(unknown).await.contains("not in the scope catalog"));

    let approved: Vec<Value> = admin.rpc("approvals/list", &[("status", "approved")]).await.json().await.unwrap();
    let request_id = approved[0]["id"].as_str().unwrap().to_string();
    let deny = admin.rpc("approvals/deny", &[("request_id", &request_id), ("reason", "  ")]).await;
    assert_eq!(deny.status(), 409, "approved requests are withdrawn, not denied");

    assert_eq!(app.introspect(&key, &token).await["active"], true);
    assert_eq!(admin.rpc("approvals/withdraw", &[("request_id", &request_id)]).await.status(), 200);
    assert_eq!(app.introspect(&key, &token).await, inactive(), "withdrawal takes effect in live tokens");
}

#[sqlx::test]
async fn revocation_from_the_portal_previews_and_counts_its_impact(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let admin = app.signed_in(&owner).await;
    let agent = app.approved_agent(org_id, "sam@acme.example", "Ledger", &["crm.read"]).await;
    let other = app.approved_agent(org_id, "sam@acme.example", "Mailer", &["mail.send"]).await;
    let tokens = [app.token(&agent).await, app.token(&agent).await, app.token(&other).await];
    let id = agent.agent_id.to_string();

    let impact: Value = admin.rpc("agents/impact", &[("agent_id", &id)]).await.json().await.unwrap();
    assert_eq!(impact["live_tokens"], 2);
    assert_eq!(impact["scopes"], serde_json::json!(["crm.read"]));
    let auditor = app.signed_in(&app.add_admin(org_id, "lee", Role::Auditor).await).await;
    assert_eq!(auditor.rpc("agents/revoke", &[("agent_id", &id), ("reason", "")]).await.status(), 403);
    let revoked: Value =
        admin.rpc("agents/revoke", &[("agent_id", &id), ("reason", "left the project")]).await.json().await.unwrap();
    assert_eq!(revoked, 2);
    assert_eq!(app.introspect(&key, &tokens[0]).await, inactive());
    assert_eq!(app.introspect(&key, &tokens[2]).await["active"], true);

    // Revoke every agent of Sam: the preview counts what is left.
    let sam = person_id(&app, "sam@acme.example").await;
    let preview: Value = admin.rpc("people/impact", &[("person_id", &sam)]).await.json().await.unwrap();
    assert_eq!(preview["agents"], serde_json::json!(["Mailer"]));
    assert_eq!(preview["live_tokens"], 1);
    let done: Value = admin.rpc("people/revoke-agents", &[("person_id", &sam)]).await.json().await.unwrap();
    assert_eq!(done["live_tokens"], 1);
    assert_eq!(app.introspect(&key, &tokens[2]).await, inactive());
    let event: String = sqlx::query_scalar("select details from audit_events where action = 'person.agents_revoked'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(event.contains("Mailer") && event.contains("\"revoked_tokens\":1"), "{event}");
}

#[sqlx::test]
async fn deactivating_a_person_in_the_portal_is_the_leaver_rule_and_reactivation_revives_no_agent(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let admin = app.signed_in(&owner).await;
    let agent = app.approved_agent(org_id, "sam@acme.example", "Ledger", &["crm.read"]).await;
    let token = app.token(&agent).await;
    let sam = person_id(&app, "sam@acme.example").await;

    let stopped: Value =
        admin.rpc("people/set-active", &[("person_id", &sam), ("active", "false")]).await.json().await.unwrap();
    assert_eq!(stopped, 1);
    assert_eq!(app.introspect(&key, &token).await, inactive());
    assert_eq!(app.request_token(&agent, None).await.status(), 401, "its agents cannot mint either");
    // The agent itself was revoked, with the leaver's reason, as a SCIM deactivation does.
    let detail: Value =
        admin.rpc("agents/detail", &[("agent_id", &agent.agent_id.to_string())]).await.json().await.unwrap();
    assert_eq!(detail["agent"]["status"], "revoked", "{detail}");
    assert_eq!(detail["revoked_reason"], "owner left the organization", "{detail}");
    let details: String =
        sqlx::query_scalar("select details from audit_events where action = 'person.deactivated' and org_id = $1")
            .bind(org_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(details.contains("Ledger") && details.contains("\"revoked_tokens\":1"), "{details}");
    let me = person_id(&app, &owner).await;
    let self_deactivate = admin.rpc("people/set-active", &[("person_id", &me), ("active", "false")]).await;
    assert_eq!(self_deactivate.status(), 409);

    // Reactivated, the person is back but the agent stays revoked.
    assert_eq!(admin.rpc("people/set-active", &[("person_id", &sam), ("active", "true")]).await.status(), 200);
    assert_eq!(app.request_token(&agent, None).await.status(), 401, "reactivation never revives an agent");
    let people: Vec<Value> = admin.rpc("people/list", &[]).await.json().await.unwrap();
    let sam_row = people.iter().find(|p| p["person"]["email"] == "sam@acme.example").unwrap();
    assert_eq!(sam_row["person"]["active"], true);
    assert_eq!(sam_row["active_agents"], 0);
    let actions = audit_actions(&app.pool, org_id).await;
    assert!(actions.contains(&"person.deactivated".to_string()) && actions.contains(&"person.reactivated".to_string()));
}
