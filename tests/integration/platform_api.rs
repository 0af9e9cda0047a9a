//! The operator CLI and the platform API skeleton: API keys, bearer authentication, problem
//! documents, health.

use crate::support::*;
use mandate::model::api_keys::ApiKeyScope;
use mandate::server::domain::Call;
use serde_json::json;
use std::process::Command;

fn cli(pool: &sqlx::PgPool, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mandate"))
        .args(args)
        .env("DATABASE_URL", database_url(pool))
        .env("MANDATE_PUBLIC_URL", "https://mandate.example")
        .env("MANDATE_MASTER_KEY", "00".repeat(32))
        .env("MANDATE_STATE_DIR", std::env::temp_dir().join("mandate-test-state"))
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn json_of(output: &std::process::Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[sqlx::test]
async fn cli_creates_an_org_and_an_api_key_that_the_api_accepts(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let org = json_of(&cli(
        &app.pool,
        &["org", "create", "--name", "Acme", "--admin-email", "dana@acme.example", "--domain", "acme.example"],
    ));
    let org_id = org["org_id"].as_str().unwrap().to_string();
    let setup_url = org["setup_url"].as_str().unwrap();
    assert!(setup_url.starts_with("https://mandate.example/setup/mnd_inv_"), "{setup_url}");

    let key = json_of(&cli(
        &app.pool,
        &["api-key", "create", "--org", &org_id, "--scopes", "audit:read,introspect", "--expires-in", "90d"],
    ));
    assert_eq!(key["scopes"], json!(["introspect", "audit:read"]));
    assert!(key["expires_at"].as_i64().unwrap() > time::OffsetDateTime::now_utc().unix_timestamp() + 89 * 86400);
    let key = key["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("mnd_key_"));
    let stored: i64 =
        sqlx::query_scalar("select count(*) from api_keys where key_prefix = $1 and key_hash = sha256($2::bytea)")
            .bind(&key[..12])
            .bind(key.as_bytes())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 1, "stored as its SHA-256 only");

    let client = app.bare_client();
    let response = client.get(app.url("/api/v1/organization")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], org_id.as_str());
    assert_eq!(body["name"], "Acme");

    let events: serde_json::Value = client
        .get(app.url("/api/v1/audit/events?action=api_key.created"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    assert_eq!(events["events"][0]["actor_type"], "operator");
}

#[sqlx::test]
async fn missing_wrong_and_malformed_keys_get_problem_documents(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let client = app.bare_client();
    let forged = format!("mnd_key_{}", "A".repeat(43));
    for auth in [None, Some("Bearer nonsense"), Some(format!("Bearer {forged}").as_str()), Some("Basic dXNlcjpwYXNz")] {
        let mut request = client.get(app.url("/api/v1/organization"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 401);
        assert!(problem["detail"].as_str().unwrap().contains("API key"));
        assert!(problem["request_id"].is_string());
    }
    let missing = client.get(app.url("/api/v1/no-such-thing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");

    let openapi: serde_json::Value =
        client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/v1/audit/events"]["post"]["requestBody"].is_object(), "agent actions are described");
    for path in [
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}/revoke",
        "/api/v1/agents/{id}/scope_requests",
        "/api/v1/scope_requests",
        "/api/v1/scope_requests/{id}/approve",
        "/api/v1/scope_requests/{id}/deny",
        "/api/v1/directories",
        "/api/v1/audit/events",
        "/api/v1/audit/export",
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/proof/{seq}",
        "/api/v1/audit/consistency",
        "/api/v1/audit/keys",
        "/api/v1/audit/streams",
        "/api/v1/agent/context",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "the OpenAPI document describes {path}");
    }
}

#[sqlx::test]
async fn a_bad_query_string_is_a_400_problem(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = mandate::server::domain::org::api_keys::create(
        &app.pool,
        Call::new(mandate::server::domain::Caller::Operator { org_id }, &meta(), time::OffsetDateTime::now_utc()),
        mandate::server::domain::org::api_keys::NewApiKey {
            name: "k",
            scopes: &mandate::model::api_keys::ApiKeyScope::ALL,
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let response =
        app.bare_client().get(app.url("/api/v1/audit/events?limit=lots")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("limit"));
}

#[sqlx::test]
async fn cli_errors_go_to_stderr_with_a_non_zero_exit(pool: sqlx::PgPool) {
    let output = cli(&pool, &["org", "create", "--name", "Acme", "--admin-email", "not-an-email"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a valid email address"));
    let output = cli(&pool, &["api-key", "create", "--org", &uuid::Uuid::new_v4().to_string()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not found"));
}

#[sqlx::test]
async fn healthz_reports_the_database(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let response = app.bare_client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok", "database": "reachable"}));
}

#[sqlx::test]
async fn demo_seed_is_rich_and_idempotent(pool: sqlx::PgPool) {
    let first = json_of(&cli(&pool, &["demo", "seed"]));
    assert!(first["setup_url"].as_str().unwrap().contains("/setup/mnd_inv_"));
    let second = json_of(&cli(&pool, &["demo", "seed"]));
    assert_eq!(first["org_id"], second["org_id"]);
    assert_ne!(first["setup_url"], second["setup_url"], "a fresh owner link replaces the old one");
    let orgs: i64 = sqlx::query_scalar("select count(*) from organizations").fetch_one(&pool).await.unwrap();
    assert_eq!(orgs, 1);
    let admins: i64 = sqlx::query_scalar("select count(*) from admins").fetch_one(&pool).await.unwrap();
    assert_eq!(admins, 3);
    let agents: i64 = sqlx::query_scalar("select count(*) from agents").fetch_one(&pool).await.unwrap();
    assert_eq!(agents, 6);
    let pending: i64 = sqlx::query_scalar("select count(*) from scope_requests where status = 'pending'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pending, 2, "requests left for the newcomer to decide");
    let revoked: String =
        sqlx::query_scalar("select name from agents where status = 'revoked'").fetch_one(&pool).await.unwrap();
    assert_eq!(revoked, "Travel Booker", "the leaver's agent stopped with him");
    let feed: i64 = sqlx::query_scalar("select count(*) from directory_events").fetch_one(&pool).await.unwrap();
    assert!(feed >= 8, "the directory's events feed shows the provisioning");
    let actions: Vec<String> =
        sqlx::query_scalar("select distinct action from audit_events order by 1").fetch_all(&pool).await.unwrap();
    for expected in [
        "agent.delegate_designated",
        "token.exchanged",
        "admin.invited",
        "admin.joined",
        "api_key.created",
        "login.failed",
        "login.succeeded",
        "logout",
        "organization.created",
        "factor.enrolled",
        "recovery_codes.generated",
    ] {
        assert!(actions.iter().any(|a| a == expected), "demo trail lacks {expected}: {actions:?}");
    }
}

#[sqlx::test]
async fn owners_create_and_revoke_api_keys_in_the_portal(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let browser = app.signed_in(&owner).await;
    let created = browser.rpc("api-keys/create", &[("name", "billing-service")]).await;
    assert_eq!(created.status(), 200);
    let key: String = created.json().await.unwrap();
    assert!(key.starts_with("mnd_key_"));
    let client = app.bare_client();
    assert_eq!(client.get(app.url("/api/v1/organization")).bearer_auth(&key).send().await.unwrap().status(), 200);

    let admin = app.signed_in(&app.add_admin(org_id, "sam", mandate::model::Role::Admin).await).await;
    assert_eq!(admin.rpc("api-keys/create", &[("name", "x")]).await.status(), 403, "only owners manage keys");
    let listed: Vec<serde_json::Value> = admin.rpc("api-keys/list", &[]).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].get("key_hash").is_none() && !listed[0].to_string().contains(&key),
        "the key itself is never listed"
    );

    let id = listed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(admin.rpc("api-keys/revoke", &[("key_id", &id)]).await.status(), 403);
    assert_eq!(browser.rpc("api-keys/revoke", &[("key_id", &id)]).await.status(), 200);
    assert_eq!(
        client.get(app.url("/api/v1/organization")).bearer_auth(&key).send().await.unwrap().status(),
        401,
        "refused at once"
    );
    assert_eq!(browser.rpc("api-keys/revoke", &[("key_id", &id)]).await.status(), 404, "already revoked");
    let actions = audit_actions(&app.pool, org_id).await;
    assert!(actions.contains(&"api_key.created".to_string()) && actions.contains(&"api_key.revoked".to_string()));
}

/// The document and the router come from one list; this checks the served document against the
/// live router: every documented operation is routed (an unrouted one would get the fallback's
/// "No API endpoint" 404 or a 405), answers unauthenticated callers as documented, and nothing
/// under /api/v1 that the document leaves out is routed.
#[sqlx::test]
async fn every_documented_operation_is_routed_and_nothing_else_is(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let client = app.bare_client();
    let openapi: serde_json::Value =
        client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(openapi["components"]["schemas"]["Problem"]["type"], "object");
    let paths = openapi["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path} carries the mount prefix");
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000").replace("{seq}", "1");
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() else { continue };
            operations += 1;
            let response = client.request(method.clone(), app.url(&concrete)).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(!body.contains("No API endpoint"), "{method} {path} is documented but not routed");
            let public =
                operation["security"].as_array().is_some_and(|s| s.iter().all(|r| r == &serde_json::json!({})));
            if public {
                assert_eq!(status, 200, "{method} {path} is documented as public");
            } else {
                assert_eq!(status, 401, "{method} {path} is documented as needing credentials: {body}");
                assert!(operation["responses"]["401"].is_object(), "{method} {path} documents its 401");
            }
        }
    }
    assert!(operations >= 32, "all operations are in the document ({operations})");
    // Methods the document does not list for a path are not routed either.
    for (path, item) in paths {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000").replace("{seq}", "1");
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_none() {
                let response =
                    client.request(method.to_uppercase().parse().unwrap(), app.url(&concrete)).send().await.unwrap();
                assert!(
                    matches!(response.status().as_u16(), 404 | 405),
                    "{method} {path} is routed but not documented ({})",
                    response.status()
                );
            }
        }
    }
}

/// Least privilege, item 2: API keys are scoped. A resource-server key (the default) introspects
/// and reports, and is refused everything else an attacker would try with it: rotating an agent's
/// secret (to mint as that agent), connections, streams, directories, retention, approvals,
/// reading the trail. Keys expire, and a key without `introspect` cannot introspect.
#[sqlx::test]
async fn api_keys_do_only_what_their_scopes_say(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let agent = app.approved_agent(org_id, "sam@acme.example", "Ledger", &["crm.read"]).await;
    let token = app.token(&agent).await;
    let resource_server = app.api_key_with(org_id, &ApiKeyScope::DEFAULT).await;
    assert_eq!(app.introspect(&resource_server, &token).await["active"], true, "the default key introspects");

    let client = app.bare_client();
    let id = agent.agent_id;
    let attacks: Vec<(reqwest::Method, String, serde_json::Value, &str)> = vec![
        (reqwest::Method::POST, format!("/api/v1/agents/{id}/rotate_secret"), json!({}), "agents:write"),
        (reqwest::Method::POST, format!("/api/v1/agents/{id}/revoke"), json!({}), "agents:write"),
        (reqwest::Method::GET, "/api/v1/agents".into(), json!(null), "agents:read"),
        (
            reqwest::Method::POST,
            "/api/v1/connections".into(),
            json!({ "type": "oidc", "issuer": "https://idp.example", "client_id": "x", "client_secret": "y" }),
            "sso:write",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/audit/streams".into(),
            json!({ "name": "exfil", "kind": "webhook", "url": "https://attacker.example/hook" }),
            "streams:write",
        ),
        (reqwest::Method::POST, "/api/v1/directories".into(), json!({ "name": "Shadow" }), "directories:write"),
        (reqwest::Method::PUT, "/api/v1/audit/retention".into(), json!({ "days": 30 }), "retention:write"),
        (reqwest::Method::GET, "/api/v1/audit/events".into(), json!(null), "audit:read"),
        (reqwest::Method::GET, "/api/v1/audit/export?format=csv".into(), json!(null), "audit:read"),
        (reqwest::Method::GET, "/api/v1/scope_requests".into(), json!(null), "agents:read"),
    ];
    for (method, path, body, scope) in &attacks {
        let mut request = client.request(method.clone(), app.url(path)).bearer_auth(&resource_server);
        if !body.is_null() {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(scope), "{method} {path}: {problem}");
    }
    assert_eq!(app.request_token(&agent, None).await.status(), 200, "the agent's secret was not rotated");
    let retention: i32 = sqlx::query_scalar("select audit_retention_days from organizations where id = $1")
        .bind(org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(retention, 30, "retention was not cut");
    for table in ["connections", "audit_streams", "directories"] {
        let count: i64 = sqlx::query_scalar(&format!("select count(*) from {table} where org_id = $1"))
            .bind(org_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(count, 0, "nothing was created in {table}");
    }

    // A key given agents:write may rotate; one given only agents:read may read but not rotate.
    let reader = app.api_key_with(org_id, &[ApiKeyScope::AgentsRead]).await;
    let listed = client.get(app.url("/api/v1/agents")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let rotate = format!("/api/v1/agents/{id}/rotate_secret");
    assert_eq!(client.post(app.url(&rotate)).bearer_auth(&reader).send().await.unwrap().status(), 403);
    let writer = app.api_key_with(org_id, &[ApiKeyScope::AgentsWrite]).await;
    assert_eq!(client.post(app.url(&rotate)).bearer_auth(&writer).send().await.unwrap().status(), 200);

    // A key without `introspect` cannot introspect or revoke tokens.
    let token = app.token(&app.approved_agent(org_id, "sam@acme.example", "Books", &["crm.read"]).await).await;
    for endpoint in ["/oauth2/introspect", "/oauth2/revoke"] {
        let response =
            client.post(app.url(endpoint)).bearer_auth(&reader).form(&[("token", &token)]).send().await.unwrap();
        assert_eq!(response.status(), 401, "{endpoint}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_client", "{endpoint}");
    }
    assert_eq!(app.introspect(&resource_server, &token).await["active"], true, "the token was not revoked");

    // An expired key is refused like a revoked one.
    sqlx::query("update api_keys set expires_at = now() - interval '1 second' where org_id = $1")
        .bind(org_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let expired = client.get(app.url("/api/v1/organization")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(expired.status(), 401);

    // Only owners create keys, an unknown scope is refused by name, and the choice is audited.
    let browser = app.signed_in(&owner).await;
    let unknown = browser
        .rpc("api-keys/create", &[("name", "bad"), ("scopes[0]", "introspect"), ("scopes[1]", "agents:admin")])
        .await;
    assert_eq!(unknown.status(), 422);
    assert!(unknown.text().await.unwrap().contains("agents:admin"));
    let made = browser
        .rpc("api-keys/create", &[("name", "crm"), ("scopes[0]", "introspect"), ("expires_in_days", "90")])
        .await;
    assert_eq!(made.status(), 200, "{}", made.text().await.unwrap());
    let details: String = sqlx::query_scalar(
        "select details from audit_events where org_id = $1 and action = 'api_key.created' order by seq desc limit 1",
    )
    .bind(org_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(details.contains("\"scopes\":[\"introspect\"]") && details.contains("expires_at"), "{details}");
    let admin = app.add_admin(org_id, "alex", mandate::model::Role::Admin).await;
    let by_admin =
        app.signed_in(&admin).await.rpc("api-keys/create", &[("name", "mine"), ("scopes[0]", "agents:write")]).await;
    assert_eq!(by_admin.status(), 403, "an admin cannot give a key rights");
}
