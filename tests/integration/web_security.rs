//! Web security once, in middleware: headers, CSP nonce, CSRF, request ids, the page guard,
//! body limits and cookie flags.

use crate::support::*;
use mandate::server::config::Config;

#[sqlx::test]
async fn pages_carry_security_headers_and_a_csp_nonce_matching_their_scripts(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let response = app.bare_client().get(app.url("/login")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers.get("strict-transport-security").is_none(), "no HSTS over plain http");
    assert!(headers.contains_key("x-request-id"));

    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_string();
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "inline scripts carry this request's nonce");
    let again = app.bare_client().get(app.url("/login")).send().await.unwrap();
    assert!(
        !again.headers()["content-security-policy"].to_str().unwrap().contains(&nonce),
        "a fresh nonce per request"
    );
}

#[sqlx::test]
async fn json_and_error_responses_get_a_deny_all_policy_and_a_request_id(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let health = app.bare_client().get(app.url("/healthz")).send().await.unwrap();
    assert!(health.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    let missing = app.bare_client().get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let request_id = missing.headers()["x-request-id"].to_str().unwrap().to_string();
    let html = missing.text().await.unwrap();
    assert!(html.contains("Page not found"));
    assert!(html.contains(&request_id), "the error page shows the request id");
}

#[sqlx::test]
async fn cross_site_state_changes_are_refused(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (_, owner) = app.org_with_owner("Acme").await;
    let client = app.bare_client();
    let form = [("email", owner.as_str()), ("password", PASSWORD)];
    let url = app.url("/rpc/login");

    let no_headers = client.post(&url).form(&form).send().await.unwrap();
    assert_eq!(no_headers.status(), 403);
    let cross_site = client
        .post(&url)
        .header("sec-fetch-site", "cross-site")
        .header("origin", &app.base)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let other_origin = client.post(&url).header("origin", "https://evil.example").form(&form).send().await.unwrap();
    assert_eq!(other_origin.status(), 403);
    let problem: serde_json::Value = other_origin.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("Cross-site request refused"));
    assert!(problem["request_id"].is_string());

    let same_origin = client.post(&url).header("origin", &app.base).form(&form).send().await.unwrap();
    assert!(redirect_target(&same_origin).is_some(), "our own origin may sign in");

    // Signed in, a cross-site sign-out is refused too (the session stays).
    let browser = app.signed_in(&owner).await;
    let forged =
        browser.client.post(app.url("/auth/logout")).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(browser.get("/auth/me").await.status(), 200);
}

#[sqlx::test]
async fn portal_pages_send_signed_out_browsers_to_login(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    for (path, next) in
        [("/", "%2F"), ("/audit?action=logout", "%2Faudit%3Faction%3Dlogout"), ("/settings", "%2Fsettings")]
    {
        let response = app.bare_client().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        let location = response.headers()["location"].to_str().unwrap();
        assert_eq!(location, format!("/login?next={}", next.replace("%2F", "/")), "{path}");
    }
    let (_, owner) = app.org_with_owner("Acme").await;
    let browser = app.signed_in(&owner).await;
    let dashboard = browser.get("/").await;
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains("Dashboard"));
    let login = browser.get("/login").await;
    assert_eq!(login.status(), 303, "signed-in admins skip the login page");
}

#[sqlx::test]
async fn oversized_bodies_are_refused(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let browser = app.browser();
    let big = "x".repeat(2 * 1024 * 1024);
    let response = browser.rpc("login", &[("email", "a@b.example"), ("password", &big)]).await;
    assert_eq!(response.status(), 413);
}

#[sqlx::test]
async fn https_deployments_get_hsts_and_host_prefixed_secure_cookies(pool: sqlx::PgPool) {
    let app = spawn_with(pool, |_| {
        Config::new("postgres://unused".into(), "https://mandate.example", Some(MASTER_KEY), false).unwrap()
    })
    .await;
    let (_, owner) = app.org_with_owner("Acme").await;
    let response = app
        .bare_client()
        .post(app.url("/rpc/login"))
        .header("origin", "https://mandate.example")
        .form(&[("email", owner.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(redirect_target(&response).is_some());
    assert!(response.headers()["strict-transport-security"].to_str().unwrap().contains("max-age="));
    let cookie = session_cookie(&response).unwrap();
    assert!(cookie.starts_with("__Host-mandate_session="));
    assert!(cookie.contains("Secure"));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("Path=/"));
}

/// Issue 14, item 8: without the operator's allowlist, Mandate connects to no loopback, private
/// or link-local (cloud metadata) address — not for IdP metadata, not for OIDC discovery (a name
/// that resolves to loopback is refused after DNS), not for a log stream — and says how to allow
/// one. Nothing reaches the listener.
#[sqlx::test]
async fn outbound_requests_never_reach_private_addresses_unless_allowed(pool: sqlx::PgPool) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "{}"
        }
    });
    tokio::spawn(async move { axum::serve(listener, target).await.unwrap() });
    let app = spawn_with(pool, |base| Config::new(database_url_of_env(), base, Some(MASTER_KEY), false).unwrap()).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let admin = app.signed_in(&owner).await;

    // SAML metadata from loopback and from the cloud metadata address.
    for url in [format!("http://127.0.0.1:{port}/metadata"), "https://169.254.169.254/latest/meta-data".to_string()] {
        let response =
            admin.rpc("connections/create-saml", &[("input[name]", "Internal"), ("input[metadata_url]", &url)]).await;
        assert!(response.status().is_client_error(), "{url}: {}", response.status());
        let message = error_message(response).await;
        assert!(message.contains("MANDATE_OUTBOUND_ALLOW"), "{url}: {message}");
    }

    // OIDC discovery through a name that resolves to loopback: refused after resolution.
    let form = [
        ("input[name]", "Local"),
        ("input[issuer]", &format!("http://localhost:{port}") as &str),
        ("input[client_id]", "c"),
        ("input[client_secret]", "s"),
    ];
    let target = redirect_target(&admin.rpc("connections/create-oidc", &form).await).unwrap();
    let connection_id = target.trim_start_matches("/connections/").split('?').next().unwrap().to_string();
    let started = redirect_target(&admin.post(&format!("/sso/test?connection={connection_id}")).await).unwrap();
    assert!(started.starts_with(&format!("/connections/{connection_id}?test=")), "{started}");
    let detail: serde_json::Value =
        admin.rpc("connections/detail", &[("connection_id", &connection_id)]).await.json().await.unwrap();
    let discovery = &detail["tests"][0]["steps"][0];
    assert_eq!(discovery["status"], "failed");
    assert!(discovery["detail"].as_str().unwrap().contains("MANDATE_OUTBOUND_ALLOW"), "{discovery}");

    // A log stream pointed at loopback delivers nothing and says why.
    let key = app.api_key(org_id).await;
    let body = serde_json::json!({ "name": "SIEM", "kind": "webhook", "url": format!("http://127.0.0.1:{port}/hook") });
    let created: serde_json::Value =
        app.api(reqwest::Method::POST, &key, "/api/v1/audit/streams", Some(body)).await.json().await.unwrap();
    let id = created["stream_id"].as_str().unwrap();
    let tested: serde_json::Value = app
        .api(reqwest::Method::POST, &key, &format!("/api/v1/audit/streams/{id}/test"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], false);
    assert!(tested["message"].as_str().unwrap().contains("MANDATE_OUTBOUND_ALLOW"), "{tested}");

    assert_eq!(hits.load(Ordering::SeqCst), 0, "no request reached the private address");
}

/// Issue 14, item 10: every door a client can knock on answers 429 with `Retry-After` once one
/// address used up its allowance, each in its own protocol's format. (Allowances at 1 % here:
/// one or two sign-ins, ten machine requests.)
#[sqlx::test]
async fn every_door_answers_429_in_its_own_format(pool: sqlx::PgPool) {
    let app = spawn_with(pool, |base| {
        let mut config = config(base);
        config.rate_limit_percent = 1;
        config
    })
    .await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let retry_after =
        |response: &reqwest::Response| -> u64 { response.headers()["retry-after"].to_str().unwrap().parse().unwrap() };

    // Password sign-in (the portal's error format).
    assert!(redirect_target(&app.browser().login(&owner, PASSWORD).await).is_some());
    let limited = app.browser().login(&owner, PASSWORD).await;
    assert_eq!(limited.status(), 429);
    assert!(retry_after(&limited) >= 1);
    assert!(error_message(limited).await.contains("Too many requests"));

    // Single sign-on (a page a person reads).
    let start = "/sso/start?email=someone%40unclaimed.example";
    assert_ne!(app.browser().get(start).await.status(), 429);
    let limited = app.browser().get(start).await;
    assert_eq!(limited.status(), 429);
    assert!(retry_after(&limited) >= 1);
    assert!(limited.text().await.unwrap().contains("Too many sign-in attempts"));

    // The token endpoint (an OAuth error), the platform API (a JSON problem), SCIM (a SCIM error):
    // about ten answers each, then the refusal (refills at machine speed, so the count is loose).
    async fn until_limited<F: std::future::Future<Output = reqwest::Response>>(
        mut send: impl FnMut() -> F,
    ) -> (usize, reqwest::Response) {
        for answered in 0..500 {
            let response = send().await;
            if response.status() == 429 {
                return (answered, response);
            }
        }
        panic!("no 429 within 500 requests");
    }
    let client = app.bare_client();
    let (answered, limited) = until_limited(|| async {
        let form = [("grant_type", "client_credentials")];
        client.post(app.url("/oauth2/token")).basic_auth("agt_nobody", Some("wrong")).form(&form).send().await.unwrap()
    })
    .await;
    assert!(answered >= 10, "the allowance came first: {answered}");
    assert!(retry_after(&limited) >= 1);
    assert_eq!(limited.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");

    let key = app.api_key(org_id).await;
    let (answered, limited) = until_limited(|| app.api(reqwest::Method::GET, &key, "/api/v1/agents", None)).await;
    assert!(answered >= 10, "{answered}");
    assert_eq!(limited.headers()["content-type"], "application/problem+json");
    assert!(retry_after(&limited) >= 1);

    let (answered, limited) = until_limited(|| async {
        let url = app.url("/scim/v2/00000000-0000-0000-0000-000000000000/Users");
        client.get(url).bearer_auth("mnd_scim_wrong").send().await.unwrap()
    })
    .await;
    assert!(answered >= 10, "{answered}");
    assert!(retry_after(&limited) >= 1);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["status"], "429");
    assert!(body["schemas"][0].as_str().unwrap().ends_with(":Error"), "{body}");
}
