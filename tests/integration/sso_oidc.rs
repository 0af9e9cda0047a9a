//! Single sign-on with OpenID Connect against a provider the test controls: the happy path
//! (subject linking, group → role mapping, session rotation), every ID-token refusal with its
//! audited reason, state replay and browser binding, Test connection's steps, domain
//! verification over DNS, and the password sign-in policy.

use crate::support::{meta, redirect_target, spawn, spawn_with, Browser, TestApp, PASSWORD};
use crate::test_idp::{TestDns, TestIdp, CLIENT_ID, CLIENT_SECRET};
use ed25519_dalek::SigningKey;
use mandate::model::connections::OidcConnectionInput;
use mandate::model::Role;
use mandate::server::domain::Call;
use mandate::server::domain::{sso::connections, sso::domains, sso::oidc, Caller};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// What `/sso/start` sent to the IdP.
struct AuthRequest {
    state: String,
    nonce: String,
    challenge: String,
    params: HashMap<String, String>,
}

fn parse_auth_request(url: &str) -> AuthRequest {
    let query = url.split_once('?').expect("authorization URL has a query").1;
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    AuthRequest {
        state: params["state"].clone(),
        nonce: params["nonce"].clone(),
        challenge: params["code_challenge"].clone(),
        params,
    }
}

/// An organization with a verified domain and an OIDC connection to `idp`, turned on by the
/// operator without a test (the CLI's `--enable`).
async fn org_with_connection(app: &TestApp, idp: &TestIdp, mappings: &str) -> (Uuid, Uuid, String) {
    let (org_id, connection_id, owner) = org_with_new_connection(app, idp, mappings).await;
    let meta = meta();
    let call = Call::new(Caller::Operator { org_id }, &meta, OffsetDateTime::now_utc());
    connections::enable(&app.pool, call, connection_id, true).await.unwrap();
    (org_id, connection_id, owner)
}

/// The owner links `subject` to their account the one way an existing admin account gets an SSO
/// identity: signed in with a password, they run Test connection and the IdP vouches for their
/// own email. Returns the owner's (password) browser.
async fn link_by_test_run(app: &TestApp, idp: &TestIdp, connection_id: Uuid, email: &str, subject: &str) -> Browser {
    let browser = app.signed_in(email).await;
    let request = start_test(&browser, connection_id).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims(subject, email, &request.nonce)));
    let target = redirect_target(&callback(&browser, &code, &request.state).await).unwrap();
    assert!(target.starts_with(&format!("/connections/{connection_id}?test=")), "{target}");
    browser
}

/// An organization with a verified domain and a new (turned off) OIDC connection to `idp`.
async fn org_with_new_connection(app: &TestApp, idp: &TestIdp, mappings: &str) -> (Uuid, Uuid, String) {
    let (org_id, owner) = app.org_with_owner("Initech").await;
    let now = OffsetDateTime::now_utc();
    let caller = Caller::Operator { org_id };
    let domain = owner.split('@').nth(1).unwrap().to_string();
    domains::add(&app.pool, Call::new(caller, &meta(), now), &domain).await.unwrap();
    domains::verify_by_operator(&app.pool, org_id, &domain, &meta(), now).await.unwrap();
    let input = OidcConnectionInput {
        name: "Test IdP".into(),
        issuer: idp.issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        role_mappings: mappings.into(),
        ..Default::default()
    };
    let connection_id =
        oidc::create(&app.pool, &app.state.master, Call::new(caller, &meta(), now), &input).await.unwrap();
    (org_id, connection_id, owner)
}

async fn start(browser: &Browser, query: &str) -> AuthRequest {
    onward(browser.get(&format!("/sso/start?{query}")).await).await
}

/// Starts a Test connection run the way the connection page's button does (a same-origin POST).
async fn start_test(browser: &Browser, connection_id: impl std::fmt::Display) -> AuthRequest {
    onward(browser.post(&format!("/sso/test?connection={connection_id}")).await).await
}

/// Where a start answer sends the browser: a redirect, or a page that moves on by itself.
async fn onward(response: reqwest::Response) -> AuthRequest {
    let url = match response.headers().get("location") {
        Some(location) => location.to_str().unwrap().to_string(),
        None => {
            // The email route answers with a page that moves on by itself.
            let body = response.text().await.unwrap();
            let start = body.find("id=\"continue\" href=\"").expect("onward page") + "id=\"continue\" href=\"".len();
            body[start..start + body[start..].find('"').unwrap()].replace("&amp;", "&")
        }
    };
    parse_auth_request(&url)
}

async fn callback(browser: &Browser, code: &str, state: &str) -> reqwest::Response {
    browser.get(&format!("/sso/oidc/callback?code={code}&state={state}")).await
}

/// The reason of the newest `login.failed` event.
async fn last_failure_reason(pool: &PgPool, org_id: Uuid) -> String {
    let details: String = sqlx::query_scalar(
        "select details from audit_events where org_id = $1 and action = 'login.failed' order by seq desc limit 1",
    )
    .bind(org_id)
    .fetch_one(pool)
    .await
    .unwrap();
    serde_json::from_str::<Value>(&details).unwrap()["reason"].as_str().unwrap().to_string()
}

async fn me(browser: &Browser) -> reqwest::Response {
    browser.get("/auth/me").await
}

#[sqlx::test]
async fn signs_in_through_the_idp_and_links_the_subject(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = TestIdp::start().await;
    let (org_id, connection_id, owner) = org_with_connection(&app, &idp, "mandate-auditors = auditor").await;

    // The owner's email alone does not sign anyone in as the owner: the account is not linked.
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("subject-owner", &owner, &request.nonce)));
    let target = redirect_target(&callback(&browser, &code, &request.state).await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=not_linked"), "{target}");
    assert_eq!(me(&browser).await.status(), 401);
    link_by_test_run(&app, &idp, connection_id, &owner, "subject-owner").await;

    // The login page's email step goes through the verified domain's connection.
    let browser = app.browser();
    let request = start(&browser, &format!("email={}&next=/agents", owner.to_uppercase())).await;
    assert_eq!(request.params["client_id"], CLIENT_ID);
    assert_eq!(request.params["response_type"], "code");
    assert_eq!(request.params["code_challenge_method"], "S256");
    assert_eq!(request.params["redirect_uri"], app.url("/sso/oidc/callback"));
    assert!(request.params["scope"].split(' ').any(|s| s == "openid"));
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("subject-owner", &owner, &request.nonce)));
    let response = callback(&browser, &code, &request.state).await;
    assert_eq!(response.status(), 303);
    assert_eq!(redirect_target(&response).as_deref(), Some("/agents"));
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("mandate_session=")), "a new session: {cookies:?}");
    assert!(
        cookies.iter().any(|c| c.starts_with("mandate_sso=;") && c.contains("Max-Age=0")),
        "binding cookie cleared"
    );
    let me_json: Value = me(&browser).await.json().await.unwrap();
    assert_eq!(me_json["person"]["email"], owner);
    assert_eq!(me_json["role"], "owner", "an existing owner keeps the owner role");

    // The subject, not the email, identifies the person from now on.
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let mut claims = idp.claims("subject-owner", "renamed@elsewhere.example", &request.nonce);
    claims["email_verified"] = json!(false);
    let code = idp.issue_code(&request.challenge, idp.sign(&claims));
    assert_eq!(callback(&browser, &code, &request.state).await.status(), 303);
    let me_json: Value = me(&browser).await.json().await.unwrap();
    assert_eq!(me_json["person"]["email"], owner);

    // A newcomer in a mapped group joins with that role; one in no mapped group has no access.
    let domain = owner.split('@').nth(1).unwrap();
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let mut claims = idp.claims("subject-ada", &format!("ada@{domain}"), &request.nonce);
    claims["groups"] = json!(["everyone", "mandate-auditors"]);
    let code = idp.issue_code(&request.challenge, idp.sign(&claims));
    assert_eq!(redirect_target(&callback(&browser, &code, &request.state).await).as_deref(), Some("/"));
    let me_json: Value = me(&browser).await.json().await.unwrap();
    assert_eq!(me_json["role"], "auditor");

    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let code = idp
        .issue_code(&request.challenge, idp.sign(&idp.claims("subject-bob", &format!("bob@{domain}"), &request.nonce)));
    let response = callback(&browser, &code, &request.state).await;
    assert_eq!(redirect_target(&response).unwrap().split('&').next(), Some("/sso/failed?reason=no_access"));
    assert_eq!(me(&browser).await.status(), 401);
    assert_eq!(last_failure_reason(&app.pool, org_id).await, "no_access");
    let people: i64 = sqlx::query_scalar("select count(*) from people where org_id = $1 and email = $2")
        .bind(org_id)
        .bind(format!("bob@{domain}"))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(people, 0, "no person is created for someone without access");

    let successes: Vec<String> = sqlx::query_scalar(
        "select details from audit_events where org_id = $1 and action = 'login.succeeded'
         and details::jsonb->>'method' = 'oidc' order by seq",
    )
    .bind(org_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(successes.len(), 3, "the owner, renamed, and the newcomer (the owner's password sign-in aside)");
    assert!(successes.iter().all(|d| d.contains("subject_digest") && !d.contains("subject-owner")));

    // An address at a domain without SSO goes to the password form.
    let response = app.browser().get("/sso/start?email=someone%40unclaimed.example&next=/audit").await;
    assert_eq!(
        redirect_target(&response).as_deref(),
        Some("/login?method=password&email=someone%40unclaimed.example&next=%2Faudit")
    );
}

#[sqlx::test]
async fn refuses_id_tokens_that_fail_a_check(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = TestIdp::start().await;
    let (org_id, connection_id, owner) = org_with_connection(&app, &idp, "").await;
    let other_key = SigningKey::from_bytes(&[9; 32]);
    let now = OffsetDateTime::now_utc().unix_timestamp();

    type Forge<'a> = Box<dyn Fn(&TestIdp, Value) -> String + 'a>;
    let cases: Vec<(&str, Forge<'_>, &str)> = vec![
        (
            "bad signature",
            Box::new(|idp, claims| {
                TestIdp::sign_with(&other_key, &json!({ "alg": "EdDSA", "kid": idp.kid, "typ": "JWT" }), &claims)
            }),
            "token_signature",
        ),
        (
            "unknown key",
            Box::new(|_, claims| {
                TestIdp::sign_with(&other_key, &json!({ "alg": "EdDSA", "kid": "someone-elses-key" }), &claims)
            }),
            "token_signature",
        ),
        (
            "wrong issuer",
            Box::new(|idp, mut claims| {
                claims["iss"] = json!("https://evil.example");
                idp.sign(&claims)
            }),
            "token_issuer",
        ),
        (
            "wrong audience",
            Box::new(|idp, mut claims| {
                claims["aud"] = json!("another-client");
                idp.sign(&claims)
            }),
            "token_audience",
        ),
        (
            "extra audience",
            Box::new(|idp, mut claims| {
                claims["aud"] = json!([CLIENT_ID, "another-client"]);
                idp.sign(&claims)
            }),
            "token_audience",
        ),
        (
            "missing nonce",
            Box::new(|idp, mut claims| {
                claims.as_object_mut().unwrap().remove("nonce");
                idp.sign(&claims)
            }),
            "token_nonce",
        ),
        (
            "wrong nonce",
            Box::new(|idp, mut claims| {
                claims["nonce"] = json!("not-the-nonce");
                idp.sign(&claims)
            }),
            "token_nonce",
        ),
        (
            "expired",
            Box::new(move |idp, mut claims| {
                claims["exp"] = json!(now - 60);
                claims["iat"] = json!(now - 400);
                idp.sign(&claims)
            }),
            "token_expired",
        ),
        (
            "issued in the future",
            Box::new(move |idp, mut claims| {
                claims["iat"] = json!(now + 3600);
                idp.sign(&claims)
            }),
            "token_expired",
        ),
        (
            "alg none",
            Box::new(|_, claims| {
                let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none" }).to_string());
                format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
            }),
            "token_algorithm",
        ),
        (
            "HMAC keyed with the public key",
            Box::new(|idp, claims| {
                let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "HS256", "kid": idp.kid }).to_string());
                let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
                let mac = hmac_sha256(idp.key.verifying_key().as_bytes(), input.as_bytes());
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
            }),
            "token_algorithm",
        ),
        (
            "no email claim",
            Box::new(|idp, mut claims| {
                claims.as_object_mut().unwrap().remove("email");
                idp.sign(&claims)
            }),
            "missing_claim",
        ),
    ];
    for (name, forge, reason) in cases {
        let browser = app.browser();
        let request = start(&browser, &format!("connection={connection_id}")).await;
        let claims = idp.claims(&format!("subject-{name}"), &owner, &request.nonce);
        let code = idp.issue_code(&request.challenge, forge(&idp, claims));
        let response = callback(&browser, &code, &request.state).await;
        let target = redirect_target(&response).unwrap_or_default();
        assert!(target.starts_with(&format!("/sso/failed?reason={reason}")), "{name}: sent to {target}");
        assert_eq!(me(&browser).await.status(), 401, "{name}: not signed in");
        assert_eq!(last_failure_reason(&app.pool, org_id).await, reason, "{name}: audited reason");
    }
    let linked: i64 = sqlx::query_scalar("select count(*) from sso_identities where org_id = $1")
        .bind(org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(linked, 0, "no refused token linked an identity");
}

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

#[sqlx::test]
async fn state_is_single_use_bound_to_the_browser_and_short_lived(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = TestIdp::start().await;
    let (org_id, connection_id, owner) = org_with_connection(&app, &idp, "").await;
    link_by_test_run(&app, &idp, connection_id, &owner, "s1").await;

    // Replaying a callback URL that already signed someone in.
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("s1", &owner, &request.nonce)));
    assert_eq!(redirect_target(&callback(&browser, &code, &request.state).await).as_deref(), Some("/"));
    let replay = app.browser();
    let target = redirect_target(&callback(&replay, &code, &request.state).await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=state_replayed"), "{target}");
    assert_eq!(last_failure_reason(&app.pool, org_id).await, "state_replayed");

    // Finishing in another browser than the one that started.
    let started_here = app.browser();
    let request = start(&started_here, &format!("connection={connection_id}")).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("s1", &owner, &request.nonce)));
    let elsewhere = app.browser();
    let target = redirect_target(&callback(&elsewhere, &code, &request.state).await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=browser_mismatch"), "{target}");
    assert_eq!(me(&elsewhere).await.status(), 401);

    // A state Mandate never issued, and one older than ten minutes.
    let target = redirect_target(&callback(&app.browser(), "x", "made-up-state").await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=unknown_state"), "{target}");
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    sqlx::query("update sso_attempts set expires_at = now() - interval '1 second' where used_at is null")
        .execute(&app.pool)
        .await
        .unwrap();
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("s1", &owner, &request.nonce)));
    let target = redirect_target(&callback(&browser, &code, &request.state).await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=expired"), "{target}");

    // The IdP saying no.
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let response = browser
        .get(&format!("/sso/oidc/callback?error=access_denied&error_description=not+assigned&state={}", request.state))
        .await;
    assert!(redirect_target(&response).unwrap().starts_with("/sso/failed?reason=idp_error"));

    // A turned-off connection signs nobody in.
    connections::disable(
        &app.pool,
        Call::new(Caller::Operator { org_id }, &meta(), OffsetDateTime::now_utc()),
        connection_id,
    )
    .await
    .unwrap();
    let target = redirect_target(&app.browser().get(&format!("/sso/start?connection={connection_id}")).await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=connection_disabled"), "{target}");
}

#[sqlx::test]
async fn test_connection_shows_each_step(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = TestIdp::start().await;
    let (org_id, connection_id, owner) = org_with_new_connection(&app, &idp, "").await;
    let admin = app.signed_in(&owner).await;
    let detail: Value =
        admin.rpc("connections/detail", &[("connection_id", &connection_id.to_string())]).await.json().await.unwrap();
    assert_eq!(detail["connection"]["enabled"], false, "a new connection starts turned off");
    let response = admin
        .rpc("connections/set-enabled", &[("connection_id", &connection_id.to_string()), ("enabled", "true")])
        .await;
    assert_eq!(response.status(), 403, "not without a passing test (or an explicit skip)");
    assert!(crate::support::error_message(response).await.contains("Run Test connection first"));

    let request = start_test(&admin, connection_id).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("s-owner", &owner, &request.nonce)));
    let target = redirect_target(&callback(&admin, &code, &request.state).await).unwrap();
    assert!(target.starts_with(&format!("/connections/{connection_id}?test=")), "{target}");
    let detail: Value =
        admin.rpc("connections/detail", &[("connection_id", &connection_id.to_string())]).await.json().await.unwrap();
    let run = &detail["tests"][0];
    assert_eq!(run["succeeded"], true, "{run}");
    let steps: Vec<(&str, &str)> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|(_, status)| *status == "ok"), "{steps:?}");
    assert!(run["steps"][4]["detail"].as_str().unwrap().contains(&owner));
    let me_json: Value = me(&admin).await.json().await.unwrap();
    assert_eq!(me_json["person"]["email"], owner, "a test run does not change who is signed in");
    let linked = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from sso_identities where org_id = $1")
            .bind(org_id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(linked().await, 1, "the IdP vouched for the runner's own email: the identity is linked to them");
    assert_eq!(detail["connection"]["enabled"], true, "a passing test run by an owner turns the connection on");
    let actions = crate::support::audit_actions(&app.pool, org_id).await;
    assert!(
        actions.contains(&"sso.identity_linked".to_string()) && actions.contains(&"connection.enabled".to_string())
    );

    // Runs start only with a same-origin POST: a link from another site starts nothing.
    let runs = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from connection_tests where org_id = $1")
            .bind(org_id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = runs().await;
    let linked_from_elsewhere = admin.get(&format!("/sso/start?connection={connection_id}&test=1")).await;
    assert_eq!(redirect_target(&linked_from_elsewhere).unwrap(), format!("/connections/{connection_id}"));
    let cross_site = app
        .bare_client()
        .post(app.url(&format!("/sso/test?connection={connection_id}")))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert_eq!(runs().await, before);

    // A wrong client secret fails at the code exchange, with the reason, and the rest is skipped.
    let form = [
        ("connection_id", connection_id.to_string()),
        ("input[name]", "Test IdP".into()),
        ("input[issuer]", idp.issuer.clone()),
        ("input[client_id]", CLIENT_ID.into()),
        ("input[client_secret]", "wrong-secret".into()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(admin.rpc("connections/update-oidc", &form).await.status(), 200);
    let request = start_test(&admin, connection_id).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("s-owner", &owner, &request.nonce)));
    callback(&admin, &code, &request.state).await;
    let detail: Value =
        admin.rpc("connections/detail", &[("connection_id", &connection_id.to_string())]).await.json().await.unwrap();
    let run = &detail["tests"][0];
    assert_eq!(run["succeeded"], false);
    assert_eq!(run["steps"][2]["status"], "failed");
    assert!(run["steps"][2]["detail"].as_str().unwrap().contains("invalid_client"), "{run}");
    assert_eq!(run["steps"][3]["status"], "skipped");
    assert_eq!(detail["connection"]["last_test_succeeded"], false);
    let actions = crate::support::audit_actions(&app.pool, org_id).await;
    assert_eq!(actions.iter().filter(|a| *a == "connection.tested").count(), 2);
    assert!(actions.contains(&"connection.updated".to_string()));

    // Discovery failing is the first step's failure.
    let id = connection_id.to_string();
    let form: Vec<(&str, &str)> = vec![
        ("connection_id", &id),
        ("input[name]", "Test IdP"),
        ("input[issuer]", "http://127.0.0.1:9"),
        ("input[client_id]", CLIENT_ID),
        ("input[client_secret]", ""),
    ];
    assert_eq!(admin.rpc("connections/update-oidc", &form).await.status(), 200);
    assert_eq!(linked().await, 0, "a new issuer unlinks the identities of the old one");
    let target = redirect_target(&admin.post(&format!("/sso/test?connection={connection_id}")).await).unwrap();
    assert!(target.starts_with(&format!("/connections/{connection_id}?test=")), "{target}");
    let detail: Value =
        admin.rpc("connections/detail", &[("connection_id", &connection_id.to_string())]).await.json().await.unwrap();
    assert_eq!(detail["tests"][0]["steps"][0]["status"], "failed");
    assert!(detail["tests"][0]["steps"][0]["detail"].as_str().unwrap().contains("openid-configuration"));
}

#[sqlx::test]
async fn connections_are_managed_with_clear_errors(pool: PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Hooli").await;
    let admin = app.signed_in(&owner).await;
    let create = |issuer: &'static str, secret: &'static str, mappings: &'static str| {
        vec![
            ("input[name]", "Okta"),
            ("input[issuer]", issuer),
            ("input[client_id]", "client"),
            ("input[client_secret]", secret),
            ("input[role_mappings]", mappings),
        ]
    };
    for (form, expected) in [
        (create("http://idp.example", "s", ""), "https://"),
        (create("https://idp.example", "", ""), "client secret"),
        (create("https://idp.example", "s", "admins = owner"), "owners are never granted"),
    ] {
        let response = admin.rpc("connections/create-oidc", &form).await;
        assert_eq!(response.status(), 422);
        assert!(crate::support::error_message(response).await.contains(expected), "{expected}");
    }
    let response = admin
        .rpc("connections/create-oidc", &create("https://idp.example", "super-secret-value", "admins = admin"))
        .await;
    let target = redirect_target(&response).unwrap();
    let id: Uuid = target.trim_start_matches("/connections/").split('?').next().unwrap().parse().unwrap();

    // The secret is stored encrypted, never returned.
    let stored: Vec<u8> = sqlx::query_scalar("select oidc_client_secret from connections where id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("super-secret-value"));
    let detail = admin.rpc("connections/detail", &[("connection_id", &id.to_string())]).await.text().await.unwrap();
    assert!(!detail.contains("super-secret-value"));
    assert!(detail.contains("/sso/oidc/callback"));
    let settings = oidc::settings(&app.pool, &app.state.master, id).await.unwrap();
    assert_eq!(settings.client_secret, "super-secret-value");

    // Other roles read but do not change; other organizations see nothing.
    let auditor = app.signed_in(&app.add_admin(org_id, "audra", Role::Auditor).await).await;
    assert_eq!(
        auditor
            .rpc("connections/set-enabled", &[("connection_id", &id.to_string()), ("enabled", "false")])
            .await
            .status(),
        403
    );
    let (_, stranger) = app.org_with_owner("Pied Piper").await;
    let stranger = app.signed_in(&stranger).await;
    assert_eq!(stranger.rpc("connections/detail", &[("connection_id", &id.to_string())]).await.status(), 404);
    assert_eq!(stranger.rpc("connections/delete", &[("connection_id", &id.to_string())]).await.status(), 404);

    let response = admin.rpc("connections/delete", &[("connection_id", &id.to_string())]).await;
    assert_eq!(redirect_target(&response).as_deref(), Some("/connections?deleted=1"));
    let actions = crate::support::audit_actions(&app.pool, org_id).await;
    assert!(actions.contains(&"connection.created".to_string()) && actions.contains(&"connection.deleted".to_string()));
}

#[sqlx::test]
async fn domains_are_proven_with_a_dns_txt_record(pool: PgPool) {
    let dns = TestDns::start().await;
    let resolver = dns.address;
    let app = spawn_with(pool, move |base| {
        let mut config = crate::support::config(base);
        config.dns_resolver = Some(resolver);
        config
    })
    .await;
    let (org_id, owner) = app.org_with_owner("Umbrella").await;
    let admin = app.signed_in(&owner).await;

    let response = admin.rpc("domains/add", &[("domain", "Gmail.com")]).await;
    assert_eq!(response.status(), 422);
    assert!(crate::support::error_message(response).await.contains("public mail provider"));
    assert_eq!(admin.rpc("domains/add", &[("domain", "umbrella-corp.example")]).await.status(), 200);

    // No record yet: not verified, and the reason is kept for the page.
    let verified: bool =
        admin.rpc("domains/verify", &[("domain", "umbrella-corp.example")]).await.json().await.unwrap();
    assert!(!verified);
    let rows: Value = admin.rpc("domains/list", &[]).await.json().await.unwrap();
    assert!(rows[0]["last_check_error"].as_str().unwrap().contains("No TXT record"), "{rows}");
    let (name, value) = (rows[0]["record_name"].as_str().unwrap(), rows[0]["record_value"].as_str().unwrap());
    assert_eq!(name, "_mandate-verification.umbrella-corp.example");

    dns.publish(name, "v=spf1 -all");
    let verified: bool =
        admin.rpc("domains/verify", &[("domain", "umbrella-corp.example")]).await.json().await.unwrap();
    assert!(!verified, "another TXT value does not prove anything");
    dns.publish(name, value);
    let verified: bool =
        admin.rpc("domains/verify", &[("domain", "umbrella-corp.example")]).await.json().await.unwrap();
    assert!(verified);
    assert!(crate::support::audit_actions(&app.pool, org_id).await.contains(&"domain.verified".to_string()));

    // A verified domain belongs to one organization.
    let (_, other) = app.org_with_owner("Tyrell").await;
    let other = app.signed_in(&other).await;
    let response = other.rpc("domains/add", &[("domain", "umbrella-corp.example")]).await;
    assert_eq!(response.status(), 409);
    assert!(crate::support::error_message(response).await.contains("another organization"));
}

#[sqlx::test]
async fn password_sign_in_can_be_limited_to_owners_then_turned_off(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = TestIdp::start().await;
    let (org_id, connection_id, owner) = org_with_connection(&app, &idp, "").await;
    let admin_email = app.add_admin(org_id, "amir", Role::Admin).await;
    let owner_browser = app.signed_in(&owner).await;

    assert_eq!(owner_browser.rpc("settings/password-sign-in", &[("policy", "owners")]).await.status(), 200);
    let response = app.browser().login(&admin_email, PASSWORD).await;
    assert_eq!(response.status(), 401, "non-owners must use SSO now");
    assert!(redirect_target(&app.browser().login(&owner, PASSWORD).await).is_some(), "owners keep break-glass");

    // Off needs proof that SSO works for this owner: a password session is not enough.
    let response = owner_browser.rpc("settings/password-sign-in", &[("policy", "off")]).await;
    assert_eq!(response.status(), 403);
    assert!(crate::support::error_message(response).await.contains("Sign in through your identity provider"));
    link_by_test_run(&app, &idp, connection_id, &owner, "owner-sub").await;
    let sso_browser = app.browser();
    let request = start(&sso_browser, &format!("connection={connection_id}")).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("owner-sub", &owner, &request.nonce)));
    assert_eq!(callback(&sso_browser, &code, &request.state).await.status(), 303);
    assert_eq!(sso_browser.rpc("settings/password-sign-in", &[("policy", "off")]).await.status(), 200);
    assert_eq!(app.browser().login(&owner, PASSWORD).await.status(), 401);

    // The only way in cannot be turned off.
    let response = sso_browser
        .rpc("connections/set-enabled", &[("connection_id", &connection_id.to_string()), ("enabled", "false")])
        .await;
    assert_eq!(response.status(), 403);
    assert!(crate::support::error_message(response).await.contains("only way"));
    let actions = crate::support::audit_actions(&app.pool, org_id).await;
    assert_eq!(actions.iter().filter(|a| *a == "settings.password_sign_in_changed").count(), 2);
}

#[sqlx::test]
async fn the_platform_api_lists_and_creates_connections(pool: PgPool) {
    let app = spawn(pool).await;
    let (org_id, _) = app.org_with_owner("Globex").await;
    let key = app.api_key(org_id).await;
    let body = json!({ "type": "oidc", "name": "Entra", "issuer": "https://login.microsoftonline.example/t/v2.0",
                       "client_id": "abc", "client_secret": "shh-very-secret", "role_mappings": "admins = admin" });
    let response = app.api(reqwest::Method::POST, &key, "/api/v1/connections", Some(body)).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["redirect_uri"], app.url("/sso/oidc/callback"));
    assert_eq!(created["enabled"], false, "an owner turns it on after a passing test");

    let response = app.api(reqwest::Method::POST, &key, "/api/v1/connections", Some(json!({ "type": "saml" }))).await;
    assert!(response.status().is_client_error());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let response = app
        .api(
            reqwest::Method::POST,
            &key,
            "/api/v1/connections",
            Some(json!({ "type": "oidc", "issuer": "ftp://x", "client_id": "a", "client_secret": "b" })),
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("https://"), "{problem}");

    let listed = app.api(reqwest::Method::GET, &key, "/api/v1/connections", None).await.text().await.unwrap();
    assert!(listed.contains("\"name\":\"Entra\"") && !listed.contains("shh-very-secret"), "{listed}");
}

fn as_refs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Issue 14, item 1: no sequence of connection changes lets an admin (or an API key, or an IdP
/// that asserts an owner's email) obtain the owner's session.
#[sqlx::test]
async fn no_connection_change_or_email_claim_signs_anyone_in_as_the_owner(pool: PgPool) {
    let app = spawn(pool).await;
    let idp = TestIdp::start().await;
    let (org_id, connection_id, owner) = org_with_connection(&app, &idp, "mandate-admins = admin").await;
    let domain = owner.split('@').nth(1).unwrap().to_string();
    let admin_email = app.add_admin(org_id, "mallory", Role::Admin).await;
    let admin = app.signed_in(&admin_email).await;
    let rogue = TestIdp::start().await;
    let rogue_form = |issuer: &str| {
        vec![
            ("input[name]".to_string(), "Rogue".to_string()),
            ("input[issuer]".to_string(), issuer.to_string()),
            ("input[client_id]".to_string(), CLIENT_ID.to_string()),
            ("input[client_secret]".to_string(), CLIENT_SECRET.to_string()),
            ("input[trusts_idp_email]".to_string(), "true".to_string()),
        ]
    };

    // An admin creates no connection, repoints none and turns none on.
    let form = rogue_form(&rogue.issuer);
    let response = admin.rpc("connections/create-oidc", &as_refs(&form)).await;
    assert_eq!(response.status(), 403);
    assert!(crate::support::error_message(response).await.contains("only owners create connections"));
    let mut form = rogue_form(&rogue.issuer);
    form.push(("connection_id".into(), connection_id.to_string()));
    assert_eq!(admin.rpc("connections/update-oidc", &as_refs(&form)).await.status(), 403);
    let stored: String = sqlx::query_scalar("select oidc_issuer from connections where id = $1")
        .bind(connection_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, idp.issuer, "the refused edit changed nothing");
    // Neither does an API key without `sso:write` (the default resource-server key).
    let key = app.api_key_with(org_id, &mandate::model::api_keys::ApiKeyScope::DEFAULT).await;
    let body =
        json!({ "type": "oidc", "issuer": rogue.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET });
    assert_eq!(app.api(reqwest::Method::POST, &key, "/api/v1/connections", Some(body)).await.status(), 403);

    // The IdP asserting the owner's (verified) email signs nobody in as the owner...
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let mut claims = idp.claims("attacker-subject", &owner, &request.nonce);
    claims["groups"] = json!(["mandate-admins"]);
    let code = idp.issue_code(&request.challenge, idp.sign(&claims));
    let target = redirect_target(&callback(&browser, &code, &request.state).await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=not_linked"), "{target}");
    assert_eq!(me(&browser).await.status(), 401);
    assert_eq!(last_failure_reason(&app.pool, org_id).await, "not_linked");
    // ...and an admin's Test connection run with the owner's email links it to nobody.
    let request = start_test(&admin, connection_id).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("attacker-subject", &owner, &request.nonce)));
    callback(&admin, &code, &request.state).await;
    let identities: i64 = sqlx::query_scalar("select count(*) from sso_identities where org_id = $1")
        .bind(org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(identities, 0, "a test run links only the runner's own email");
    let me_json: Value = me(&admin).await.json().await.unwrap();
    assert_eq!(me_json["role"], "admin", "the admin is still only an admin");

    // The owner links their identity while signed in; from then on it signs them in.
    let owner_browser = link_by_test_run(&app, &idp, connection_id, &owner, "owner-subject").await;
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let code = idp.issue_code(&request.challenge, idp.sign(&idp.claims("owner-subject", &owner, &request.nonce)));
    assert_eq!(callback(&browser, &code, &request.state).await.status(), 303);
    assert_eq!(me(&browser).await.json::<Value>().await.unwrap()["role"], "owner");
    let details: String = sqlx::query_scalar(
        "select details from audit_events where org_id = $1 and action = 'login.succeeded' order by seq desc limit 1",
    )
    .bind(org_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(!details.contains("owner-subject") && details.contains("subject_digest"), "{details}");

    // Repointed at another IdP, the connection forgets its identities: the same subject and
    // email from the new issuer is not the owner.
    let mut form = rogue_form(&rogue.issuer);
    form.push(("connection_id".into(), connection_id.to_string()));
    assert_eq!(owner_browser.rpc("connections/update-oidc", &as_refs(&form)).await.status(), 200);
    let browser = app.browser();
    let request = start(&browser, &format!("connection={connection_id}")).await;
    let code = rogue.issue_code(&request.challenge, rogue.sign(&rogue.claims("owner-subject", &owner, &request.nonce)));
    let target = redirect_target(&callback(&browser, &code, &request.state).await).unwrap();
    assert!(target.starts_with("/sso/failed?reason=not_linked"), "{target}");

    // A person of the directory (not an admin) links by email only when the IdP vouches for it.
    let person = format!("pat@{domain}");
    let mut conn = app.pool.acquire().await.unwrap();
    mandate::server::domain::directory::people::find_or_create(
        &mut conn,
        org_id,
        &person,
        None,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    drop(conn);
    let mut form = rogue_form(&idp.issuer);
    form.retain(|(k, _)| k != "input[trusts_idp_email]");
    form.push(("input[role_mappings]".into(), "mandate-admins = admin".into()));
    form.push(("connection_id".into(), connection_id.to_string()));
    assert_eq!(owner_browser.rpc("connections/update-oidc", &as_refs(&form)).await.status(), 200);
    let sign_in_pat = |email_verified: Option<bool>| {
        let (app, idp, person) = (&app, &idp, &person);
        async move {
            let browser = app.browser();
            let request = start(&browser, &format!("connection={connection_id}")).await;
            let mut claims = idp.claims("pat-subject", person, &request.nonce);
            claims["groups"] = json!(["mandate-admins"]);
            match email_verified {
                Some(verified) => claims["email_verified"] = json!(verified),
                None => {
                    claims.as_object_mut().unwrap().remove("email_verified");
                }
            }
            let code = idp.issue_code(&request.challenge, idp.sign(&claims));
            (redirect_target(&callback(&browser, &code, &request.state).await).unwrap(), browser)
        }
    };
    let (target, _) = sign_in_pat(None).await;
    assert!(target.starts_with("/sso/failed?reason=email_not_verified"), "{target}");
    let (target, _) = sign_in_pat(Some(false)).await;
    assert!(target.starts_with("/sso/failed?reason=email_not_verified"), "{target}");
    let (target, browser) = sign_in_pat(Some(true)).await;
    assert_eq!(target, "/");
    assert_eq!(me(&browser).await.json::<Value>().await.unwrap()["role"], "admin", "the mapping's role, no more");

    // An owner removes Pat: the session ends, and the group mapping does not bring Pat back.
    let pat_admin = app.admin_id(org_id, &person).await.to_string();
    assert_eq!(owner_browser.rpc("admins/remove", &[("admin_id", &pat_admin)]).await.status(), 200);
    assert_eq!(me(&browser).await.status(), 401);
    let (target, _) = sign_in_pat(Some(true)).await;
    assert!(target.starts_with("/sso/failed?reason=no_access"), "{target}");
}
