//! Agents' tokens end to end over HTTP: minting, introspection, revocation with every cause,
//! token exchange, keys, and the RFC error answers.

use crate::support::*;
use mandate::model::agents::AgentCredentials;
use mandate::model::Role;
use mandate::server::domain::agents::approvals::{self, Decision};
use mandate::server::domain::Call;
use mandate::server::domain::{agents::mandate::Mandates, directory::leaver, directory::people, Caller};
use reqwest::Method;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[sqlx::test]
async fn mint_introspect_revoke_with_no_sleep_in_between(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let agent = app.approved_agent(org_id, "dana@acme.example", "Ledger", &["crm.read", "crm.write"]).await;

    let response = app.request_token(&agent, Some("crm.read")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "crm.read");
    assert!(body["expires_in"].as_i64().unwrap() <= 300);
    let token = body["access_token"].as_str().unwrap();

    let claims = app.introspect(&key, token).await;
    let dana: Uuid = sqlx::query_scalar("select id from people where email = 'dana@acme.example'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(claims["active"], true);
    assert_eq!(claims["sub"], dana.to_string());
    assert_eq!(claims["act"], json!({ "sub": agent.agent_id }));
    assert_eq!(claims["client_id"], agent.client_id);
    assert_eq!(claims["scope"], "crm.read");
    assert_eq!(claims["org_id"], org_id.to_string());
    assert_eq!(claims["iss"], app.base);
    assert!(claims["mandate_id"].is_string());
    assert!(claims["jti"].is_string());
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);

    let revoke = app
        .api(
            Method::POST,
            &key,
            &format!("/api/v1/agents/{}/revoke", agent.agent_id),
            Some(json!({ "reason": "test" })),
        )
        .await;
    assert_eq!(revoke.status(), 200);
    let revoke: Value = revoke.json().await.unwrap();
    assert_eq!(revoke["revoked_tokens"], 1);

    assert_eq!(app.introspect(&key, token).await, inactive(), "inactive at once, exactly {{\"active\":false}}");
    let again = app.request_token(&agent, None).await;
    assert_eq!(again.status(), 401);
    let error: Value = again.json().await.unwrap();
    assert_eq!(error["error"], "invalid_client");

    let revoked: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where action = 'agent.revoked' and details::jsonb->>'revoked_tokens' = '1'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(revoked, 1, "one audit event with the count of affected tokens");
    let issued: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where action = 'token.issued' and details::jsonb->>'jti' = $1",
    )
    .bind(claims["jti"].as_str().unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(issued, 1, "token issuance is audited with its jti");
}

/// The revocation causes of a token, each applied (or not) independently.
#[derive(Clone, Copy, Debug)]
struct Causes {
    token_revoked: bool,
    agent_revoked: bool,
    owner_deactivated: bool,
    approval_withdrawn: bool,
    group_lost: bool,
}

#[sqlx::test]
async fn a_token_is_active_iff_no_revocation_cause_applies(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let mandates: &Mandates = app.state.mandates();
    let caller = Caller::Operator { org_id };

    // finance.read is open to members of Finance only.
    let finance = {
        let mut conn = app.pool.acquire().await.unwrap();
        people::create_group(&mut conn, org_id, "Finance").await.unwrap()
    };
    app.approved_agent(org_id, "seed@acme.example", "Seed", &["finance.read"]).await;
    let scope_id: Uuid =
        sqlx::query_scalar("select id from scopes where name = 'finance.read'").fetch_one(&app.pool).await.unwrap();
    mandate::server::domain::agents::scopes::set_ceiling(
        &app.pool,
        mandates,
        Call::new(caller, &meta(), now()),
        scope_id,
        &[finance],
    )
    .await
    .unwrap();

    for bits in 0..32u32 {
        let causes = Causes {
            token_revoked: bits & 1 != 0,
            agent_revoked: bits & 2 != 0,
            owner_deactivated: bits & 4 != 0,
            approval_withdrawn: bits & 8 != 0,
            group_lost: bits & 16 != 0,
        };
        let owner = format!("owner{bits}@acme.example");
        let agent = app.approved_agent(org_id, &owner, &format!("Agent {bits}"), &["finance.read"]).await;
        let person: Uuid = sqlx::query_scalar("select id from people where email = $1")
            .bind(&owner)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        people::set_membership(
            &app.pool,
            mandates,
            Call::new(Caller::Operator { org_id }, &meta(), now()),
            finance,
            person,
            true,
        )
        .await
        .unwrap();
        let token = app.token(&agent).await;
        assert_eq!(app.introspect(&key, &token).await["active"], true, "{causes:?}: active before any cause");

        if causes.token_revoked {
            let response = app
                .bare_client()
                .post(app.url("/oauth2/revoke"))
                .basic_auth(&agent.client_id, Some(&agent.client_secret))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        if causes.approval_withdrawn {
            let request: Uuid =
                sqlx::query_scalar("select id from scope_requests where agent_id = $1 and status = 'approved'")
                    .bind(agent.agent_id)
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            approvals::withdraw(&app.pool, mandates, Call::new(caller, &meta(), now()), request, "test").await.unwrap();
        }
        if causes.group_lost {
            people::set_membership(
                &app.pool,
                mandates,
                Call::new(Caller::Operator { org_id }, &meta(), now()),
                finance,
                person,
                false,
            )
            .await
            .unwrap();
        }
        if causes.owner_deactivated {
            leaver::set_active(&app.pool, mandates, Call::new(caller, &meta(), now()), person, false).await.unwrap();
        }
        if causes.agent_revoked {
            mandate::server::domain::agents::revocation::revoke(
                &app.pool,
                mandates,
                Call::new(caller, &meta(), now()),
                agent.agent_id,
                "",
            )
            .await
            .unwrap();
        }
        let any = causes.token_revoked
            || causes.agent_revoked
            || causes.owner_deactivated
            || causes.approval_withdrawn
            || causes.group_lost;
        let introspection = app.introspect(&key, &token).await;
        if any {
            assert_eq!(introspection, inactive(), "{causes:?}");
        } else {
            assert_eq!(introspection["active"], true, "{causes:?}");
        }
    }
}

#[sqlx::test]
async fn an_expiring_approval_caps_token_lifetime(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let agent = app.approved_agent(org_id, "dana@acme.example", "Ledger", &["crm.read"]).await;
    // Re-approve crm.read until 2 seconds from now.
    let caller = Caller::Operator { org_id };
    let request: Uuid = sqlx::query_scalar("select id from scope_requests where agent_id = $1")
        .bind(agent.agent_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    approvals::withdraw(&app.pool, app.state.mandates(), Call::new(caller, &meta(), now()), request, "").await.unwrap();
    let renewed = approvals::request(&app.pool, Call::new(caller, &meta(), now()), agent.agent_id, "crm.read", "again")
        .await
        .unwrap();
    let until = now() + time::Duration::seconds(2);
    approvals::decide(
        &app.pool,
        app.state.mandates(),
        Call::new(caller, &meta(), now()),
        renewed,
        Decision::Approve { until: Some(until), note: String::new() },
    )
    .await
    .unwrap();
    let body: Value = app.request_token(&agent, None).await.json().await.unwrap();
    assert!(body["expires_in"].as_i64().unwrap() <= 2, "lifetime capped by the approval: {body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&key, token).await["active"], true);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(app.introspect(&key, token).await, inactive());
    let refused: Value = app.request_token(&agent, None).await.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_scope", "no mandate left after expiry");
}

async fn exchange(app: &TestApp, actor: &AgentCredentials, subject: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", subject),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    app.bare_client()
        .post(app.url("/oauth2/token"))
        .basic_auth(&actor.client_id, Some(&actor.client_secret))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Designates `delegate` as a delegate of `agent` through the platform API.
async fn designate(
    app: &TestApp,
    key: &str,
    agent: &AgentCredentials,
    delegate: &AgentCredentials,
) -> reqwest::Response {
    let path = format!("/api/v1/agents/{}/delegates", agent.agent_id);
    app.api(Method::POST, key, &path, Some(json!({ "delegate_id": delegate.agent_id }))).await
}

#[sqlx::test]
async fn token_exchange_only_narrows_and_follows_its_parent(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let parent = app.approved_agent(org_id, "dana@acme.example", "Planner", &["crm.read", "crm.write"]).await;
    let helper = app.approved_agent(org_id, "dana@acme.example", "Helper", &["crm.read", "crm.admin"]).await;
    let assistant = app.approved_agent(org_id, "dana@acme.example", "Assistant", &["crm.read", "crm.write"]).await;
    assert_eq!(designate(&app, &key, &parent, &helper).await.status(), 200);
    assert_eq!(designate(&app, &key, &helper, &assistant).await.status(), 200);
    assert_eq!(designate(&app, &key, &helper, &parent).await.status(), 200);
    let parent_token = app.token(&parent).await;
    let parent_claims = app.introspect(&key, &parent_token).await;

    let wider = exchange(&app, &helper, &parent_token, Some("crm.read crm.admin")).await;
    assert_eq!(wider.status(), 400);
    let wider: Value = wider.json().await.unwrap();
    assert_eq!(wider["error"], "invalid_scope");
    assert!(wider["error_description"].as_str().unwrap().contains("only narrow"));

    let response = exchange(&app, &helper, &parent_token, Some("crm.read")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(body["scope"], "crm.read");
    let child = body["access_token"].as_str().unwrap().to_string();
    let claims = app.introspect(&key, &child).await;
    assert_eq!(claims["active"], true);
    assert_eq!(claims["act"], json!({ "sub": helper.agent_id, "act": { "sub": parent.agent_id } }));
    assert_eq!(claims["sub"], parent_claims["sub"]);
    assert!(claims["exp"].as_i64() <= parent_claims["exp"].as_i64(), "never longer-lived");

    // The child cannot be widened back, nor delegated back into its own chain.
    let rewiden = exchange(&app, &assistant, &child, Some("crm.write")).await;
    assert_eq!(rewiden.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let loop_back = exchange(&app, &parent, &child, None).await;
    assert_eq!(loop_back.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Revoking the parent token ends the child; the revocation counts both.
    let revoke = app
        .bare_client()
        .post(app.url("/oauth2/revoke"))
        .bearer_auth(&key)
        .form(&[("token", parent_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(app.introspect(&key, &child).await, inactive());
    let counted: String =
        sqlx::query_scalar("select details::jsonb->>'revoked_tokens' from audit_events where action = 'token.revoked'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(counted, "2");
    let stale = exchange(&app, &helper, &parent_token, None).await;
    assert_eq!(stale.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[sqlx::test]
async fn revoking_a_sub_agent_ends_its_delegated_tokens_only(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let parent = app.approved_agent(org_id, "dana@acme.example", "Planner", &["crm.read"]).await;
    let helper = app.approved_agent(org_id, "dana@acme.example", "Helper", &["crm.read"]).await;
    assert_eq!(designate(&app, &key, &parent, &helper).await.status(), 200);
    let parent_token = app.token(&parent).await;
    let child: Value = exchange(&app, &helper, &parent_token, None).await.json().await.unwrap();
    let child = child["access_token"].as_str().unwrap();
    let revoke = app.api(Method::POST, &key, &format!("/api/v1/agents/{}/revoke", helper.agent_id), None).await;
    assert_eq!(revoke.json::<Value>().await.unwrap()["revoked_tokens"], 1);
    assert_eq!(app.introspect(&key, child).await, inactive());
    assert_eq!(app.introspect(&key, &parent_token).await["active"], true);
}

#[sqlx::test]
async fn organizations_never_see_each_others_tokens_or_agents(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_a, _) = app.org_with_owner("Alpha").await;
    let (org_b, _) = app.org_with_owner("Bravo").await;
    let key_a = app.api_key(org_a).await;
    let key_b = app.api_key(org_b).await;
    let agent_a = app.approved_agent(org_a, "ann@alpha.example", "A", &["crm.read"]).await;
    let agent_b = app.approved_agent(org_b, "bob@bravo.example", "B", &["crm.read"]).await;
    let token_a = app.token(&agent_a).await;

    assert_eq!(app.introspect(&key_b, &token_a).await, inactive(), "another org's API key");
    let by_agent = app
        .bare_client()
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&agent_b.client_id, Some(&agent_b.client_secret))
        .form(&[("token", token_a.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(by_agent.json::<Value>().await.unwrap(), inactive(), "another org's agent");
    let cross_exchange = exchange(&app, &agent_b, &token_a, None).await;
    assert_eq!(cross_exchange.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let revoke = app
        .bare_client()
        .post(app.url("/oauth2/revoke"))
        .bearer_auth(&key_b)
        .form(&[("token", token_a.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(app.introspect(&key_a, &token_a).await["active"], true, "a foreign revoke is a no-op");

    for (method, path) in [
        (Method::GET, format!("/api/v1/agents/{}", agent_a.agent_id)),
        (Method::POST, format!("/api/v1/agents/{}/revoke", agent_a.agent_id)),
        (Method::POST, format!("/api/v1/agents/{}/rotate_secret", agent_a.agent_id)),
    ] {
        let response = app.api(method.clone(), &key_b, &path, None).await;
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    let request = app
        .api(
            Method::POST,
            &key_b,
            &format!("/api/v1/agents/{}/scope_requests", agent_a.agent_id),
            Some(json!({ "scope": "crm.read" })),
        )
        .await;
    assert_eq!(request.status(), 404);
    let a_request: Uuid = sqlx::query_scalar("select id from scope_requests where org_id = $1 limit 1")
        .bind(org_a)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let approve = app
        .api(Method::POST, &key_b, &format!("/api/v1/scope_requests/{a_request}/deny"), Some(json!({ "reason": "x" })))
        .await;
    assert_eq!(approve.status(), 404);
    let listed: Value = app.api(Method::GET, &key_b, "/api/v1/agents", None).await.json().await.unwrap();
    let names: Vec<&str> = listed["agents"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["B"]);
    assert_eq!(app.introspect(&key_a, &token_a).await["active"], true);
}

#[sqlx::test]
async fn bad_requests_get_rfc_6749_errors(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let agent = app.approved_agent(org_id, "dana@acme.example", "Ledger", &["crm.read"]).await;
    let client = app.bare_client();
    let token_url = app.url("/oauth2/token");

    let wrong_secret = client
        .post(&token_url)
        .basic_auth(&agent.client_id, Some("mnd_sec_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);
    assert_eq!(wrong_secret.headers()["www-authenticate"], "Basic realm=\"mandate\"");
    assert_eq!(wrong_secret.json::<Value>().await.unwrap()["error"], "invalid_client");

    let unknown = client
        .post(&token_url)
        .basic_auth("agt_nobody", Some("x"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "invalid_client");

    let post_auth = client
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", agent.client_id.as_str()),
            ("client_secret", agent.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post_auth.status(), 200, "client_secret_post works too");

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            client
                .post(&token_url)
                .basic_auth(&agent.client_id, Some(&agent.client_secret))
                .form(&[("scope", "crm.read")]),
            400,
            "invalid_request",
        ),
        (
            client
                .post(&token_url)
                .basic_auth(&agent.client_id, Some(&agent.client_secret))
                .form(&[("grant_type", "password")]),
            400,
            "unsupported_grant_type",
        ),
        (
            client
                .post(&token_url)
                .basic_auth(&agent.client_id, Some(&agent.client_secret))
                .json(&json!({ "grant_type": "client_credentials" })),
            400,
            "invalid_request",
        ),
        (
            client
                .post(&token_url)
                .basic_auth(&agent.client_id, Some(&agent.client_secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&grant_type=client_credentials"),
            400,
            "invalid_request",
        ),
        (
            client
                .post(&token_url)
                .basic_auth(&agent.client_id, Some(&agent.client_secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "crm.delete")]),
            400,
            "invalid_scope",
        ),
        (client.post(&token_url).form(&[("grant_type", "client_credentials")]), 401, "invalid_client"),
        (client.post(app.url("/oauth2/introspect")).form(&[("token", "x")]), 401, "invalid_client"),
        (
            client.post(app.url("/oauth2/introspect")).bearer_auth(&key).form(&[("nothing", "x")]),
            400,
            "invalid_request",
        ),
    ];
    for (request, status, error) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
        assert!(body["error_description"].as_str().unwrap().len() > 10, "a description a person can act on: {body}");
    }

    // Garbage, unsigned and foreign tokens are simply inactive.
    let token = app.token(&agent).await;
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    for bad in ["not-a-jwt", &format!("{none}.{}.", parts[1]), &format!("{}.{}.{}", parts[0], parts[1], "A".repeat(86))]
    {
        assert_eq!(app.introspect(&key, bad).await, inactive(), "{bad}");
    }
}

#[sqlx::test]
async fn keys_rotate_without_breaking_live_tokens(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let agent = app.approved_agent(org_id, "dana@acme.example", "Ledger", &["crm.read"]).await;
    let before = app.token(&agent).await;

    let metadata: Value = app
        .bare_client()
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], app.base);
    assert_eq!(metadata["token_endpoint"], format!("{}/oauth2/token", app.base));
    assert!(metadata["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("urn:ietf:params:oauth:grant-type:token-exchange")));

    let kid_of = |token: &str| {
        use base64::Engine;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
    };
    let old_kid = kid_of(&before);
    mandate::server::domain::agents::signing::rotate(&app.pool, &app.state.tokens.keys, now()).await.unwrap();
    let after = app.token(&agent).await;
    assert_ne!(kid_of(&after), old_kid);
    assert_eq!(app.introspect(&key, &before).await["active"], true, "tokens signed by the retired key stay valid");
    assert_eq!(app.introspect(&key, &after).await["active"], true);
    let jwks: Value = app.bare_client().get(app.url("/oauth2/jwks")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0], kid_of(&after), "the active key first");
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()), "no private parts");

    let stored: Vec<u8> = sqlx::query_scalar("select private_key_encrypted from signing_keys limit 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.len() > 32 + 12, "private keys are stored sealed, not raw");
}

#[sqlx::test]
async fn the_agent_context_tells_who_it_acts_for(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Acme").await;
    let agent = app.approved_agent(org_id, "dana@acme.example", "Ledger", &["crm.read"]).await;
    let token = app.token(&agent).await;
    let response = app.bare_client().get(app.url("/api/v1/agent/context")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let context: Value = response.json().await.unwrap();
    assert_eq!(context["person"]["email"], "dana@acme.example");
    assert_eq!(context["organization"]["name"], "Acme");
    assert_eq!(context["agent"]["name"], "Ledger");
    assert_eq!(context["scopes"][0]["name"], "crm.read");
    let prompt = context["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("on behalf of") && prompt.contains("dana@acme.example") && prompt.contains("crm.read"),
        "{prompt}"
    );
    let bad = app.bare_client().get(app.url("/api/v1/agent/context")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(bad.status(), 401);
}

/// Issue 14, item 5: an agent exchanges another agent's token only when it was designated as
/// that agent's delegate, and gets no scope outside its own mandate; every other exchange is
/// `invalid_grant` and audited.
#[sqlx::test]
async fn delegation_only_where_it_was_granted(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let key = app.api_key(org_id).await;
    let parent = app.approved_agent(org_id, "dana@acme.example", "Planner", &["crm.read", "crm.write"]).await;
    let helper = app.approved_agent(org_id, "dana@acme.example", "Helper", &["crm.read"]).await;
    let stranger = app.approved_agent(org_id, "eve@acme.example", "Stranger", &["crm.read", "crm.write"]).await;

    // Nobody designated: any agent exchanging the planner's token is refused, and it is recorded.
    let parent_token = app.token(&parent).await;
    assert!(app.introspect(&key, &parent_token).await.get("may_act").is_none());
    let refused = exchange(&app, &stranger, &parent_token, None).await;
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_grant");
    assert!(refused["error_description"].as_str().unwrap().contains("has not designated"), "{refused}");
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where org_id = $1 and action = 'token.exchange_refused' and outcome = 'failure'",
    )
    .bind(org_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Only owners and admins designate (an auditor is refused); the designation is in `may_act`.
    let auditor = app.signed_in(&app.add_admin(org_id, "audra", Role::Auditor).await).await;
    let form = [("agent_id", parent.agent_id.to_string()), ("delegate_id", stranger.agent_id.to_string())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(auditor.rpc("agents/delegate", &form).await.status(), 403);
    let admin = app.signed_in(&owner).await;
    let form = [("agent_id", parent.agent_id.to_string()), ("delegate_id", helper.agent_id.to_string())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(admin.rpc("agents/delegate", &form).await.status(), 200);
    let parent_token = app.token(&parent).await;
    assert_eq!(app.introspect(&key, &parent_token).await["may_act"], json!({ "sub": helper.agent_id }));
    let still: Value = exchange(&app, &stranger, &parent_token, None).await.json().await.unwrap();
    assert_eq!(still["error"], "invalid_grant", "designating one agent designates no other");

    // The delegate gets the intersection of the token and its own mandate, never more.
    let response = exchange(&app, &helper, &parent_token, None).await;
    assert_eq!(response.status(), 200);
    let handed_on: Value = response.json().await.unwrap();
    assert_eq!(handed_on["scope"], "crm.read", "crm.write is not the helper's");
    let handed_on = handed_on["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.introspect(&key, &handed_on).await["active"], true);
    let beyond: Value = exchange(&app, &helper, &parent_token, Some("crm.write")).await.json().await.unwrap();
    assert_eq!(beyond["error"], "invalid_scope");
    assert!(beyond["error_description"].as_str().unwrap().contains("own mandate"), "{beyond}");

    // Withdrawn through the platform API, the designation stops the next exchange at once.
    let path = format!("/api/v1/agents/{}/delegates/{}", parent.agent_id, helper.agent_id);
    assert_eq!(app.api(Method::DELETE, &key, &path, None).await.status(), 204);
    let after: Value = exchange(&app, &helper, &parent_token, None).await.json().await.unwrap();
    assert_eq!(after["error"], "invalid_grant");
    assert_eq!(app.introspect(&key, &handed_on).await, inactive(), "the token handed on under it ends too");
    assert_eq!(designate(&app, &key, &parent, &helper).await.status(), 200);
    assert_eq!(app.introspect(&key, &handed_on).await, inactive(), "and designating again revives nothing");
    let fresh = exchange(&app, &helper, &parent_token, None).await;
    assert_eq!(fresh.status(), 200, "new exchanges work again");
    assert_eq!(app.introspect(&key, &parent_token).await["active"], true, "the planner's own token lives on");
    let actions = audit_actions(&app.pool, org_id).await;
    assert!(actions.contains(&"agent.delegate_designated".to_string()));
    assert!(actions.contains(&"agent.delegate_withdrawn".to_string()));
}
