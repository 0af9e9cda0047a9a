//! The operator CLI and the platform API skeleton: API keys, bearer authentication, problem
//! documents, health.

use crate::support::*;
use mandate::server::domain::Call;
use std::process::Command;

fn cli(pool: &sqlx::PgPool, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mandate"))
        .args(args)
        .env("DATABASE_URL", database_url(pool))
        .env("MANDATE_PUBLIC_URL", "https://mandate.example")
        .env("MANDATE_MASTER_KEY", "00".repeat(32))
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

    let key = json_of(&cli(&app.pool, &["api-key", "create", "--org", &org_id]));
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
        "k",
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
        "admin.invited",
        "admin.joined",
        "api_key.created",
        "login.failed",
        "login.succeeded",
        "logout",
        "organization.created",
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
