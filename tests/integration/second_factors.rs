//! Second factors (issue 15, first part): an authenticator app set up with a code, asked for
//! after the password, each code accepted once; single-use recovery codes; a policy that sends
//! an admin without a factor to set one up before anything else; failed codes count toward the
//! account's lockout.

use crate::support::*;
use mandate::model::Role;
use serde_json::Value;
use time::OffsetDateTime;

/// The code an authenticator app shows `offset_steps` 30-second steps from now.
fn code(secret_base32: &str, offset_steps: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).unwrap();
    let app = totp_rs::Builder::new().with_secret(secret).build_noncompliant();
    let at = OffsetDateTime::now_utc().unix_timestamp() + offset_steps * 30;
    app.generate(at as u64).to_string()
}

/// Sets up an authenticator app for the signed-in `browser`; returns (secret, recovery codes,
/// the code that confirmed it).
async fn set_up_app(browser: &Browser) -> (String, Vec<String>, String) {
    let started = browser.rpc("security/authenticator/start", &[]).await;
    assert_eq!(started.status(), 200);
    let setup: Value = started.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(setup["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let factor_id = setup["factor_id"].as_str().unwrap().to_string();

    let wrong = browser.rpc("security/authenticator/confirm", &[("factor_id", &factor_id), ("code", "000000")]).await;
    assert_eq!(wrong.status(), 422);
    assert!(error_message(wrong).await.contains("not right"));
    let confirming = code(&secret, 0);
    let confirmed =
        browser.rpc("security/authenticator/confirm", &[("factor_id", &factor_id), ("code", &confirming)]).await;
    assert_eq!(confirmed.status(), 200);
    let codes: Value = confirmed.json().await.unwrap();
    let codes: Vec<String> =
        codes["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    (secret, codes, confirming)
}

/// Password first; returns the browser waiting for its second step.
async fn after_password(app: &TestApp, email: &str) -> Browser {
    let browser = app.browser();
    let response = browser.login(email, PASSWORD).await;
    assert_eq!(redirect_target(&response).as_deref(), Some("/login?step=code&next=%2F"));
    assert_eq!(browser.get("/auth/me").await.status(), 401, "not signed in before the second factor");
    assert_eq!(redirect_target(&browser.get("/agents").await).as_deref(), Some("/login?next=/agents"));
    browser
}

#[sqlx::test]
async fn the_authenticator_app_is_asked_for_after_the_password_and_each_code_works_once(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let (secret, recovery, confirming) = set_up_app(&app.signed_in(&owner).await).await;

    // The code that confirmed the app is spent; the next step's code signs in.
    let browser = after_password(&app, &owner).await;
    let replayed = browser.rpc("login/code", &[("code", &confirming)]).await;
    assert_eq!(replayed.status(), 422, "a code is accepted once");
    let next_code = code(&secret, 1);
    let signed_in = browser.rpc("login/code", &[("code", &next_code), ("next", "/")]).await;
    assert_eq!(redirect_target(&signed_in).as_deref(), Some("/"));
    let me: Value = browser.get("/auth/me").await.json().await.unwrap();
    assert_eq!(me["person"]["email"], owner);

    // Again: the same code is spent, and so is any earlier one; a recovery code works once.
    let browser = after_password(&app, &owner).await;
    assert_eq!(browser.rpc("login/code", &[("code", &next_code)]).await.status(), 422);
    assert_eq!(browser.rpc("login/code", &[("code", &confirming)]).await.status(), 422, "an earlier step's code");
    let with_recovery = browser.rpc("login/code", &[("code", &recovery[0].to_uppercase())]).await;
    assert_eq!(redirect_target(&with_recovery).as_deref(), Some("/"), "recovery codes ignore case");
    let browser = after_password(&app, &owner).await;
    assert_eq!(browser.rpc("login/code", &[("code", &recovery[0])]).await.status(), 422, "used up");
    assert_eq!(redirect_target(&browser.rpc("login/code", &[("code", &recovery[1])]).await).as_deref(), Some("/"));
    let security: Value = browser.rpc("security", &[]).await.json().await.unwrap();
    assert_eq!(security["recovery_codes_left"], 8);
    assert!(security["authenticator"]["last_used_at"].is_string());

    // Without a pending sign-in there is nothing to complete.
    let stranger = app.browser();
    let refused = stranger.rpc("login/code", &[("code", &code(&secret, 2))]).await;
    assert_eq!(refused.status(), 401);

    let actions = audit_actions(&app.pool, org_id).await;
    for action in ["factor.enrolled", "recovery_codes.generated", "recovery_code.used", "login.failed"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
    }
    let second: Vec<String> = sqlx::query_scalar(
        "select details from audit_events where org_id = $1 and action = 'login.succeeded' order by seq desc limit 2",
    )
    .bind(org_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(second.iter().all(|d| d.contains("\"second_factor\":\"recovery_code\"")), "{second:?}");

    // The secret is encrypted at rest.
    let stored: Vec<u8> = sqlx::query_scalar("select secret_encrypted from admin_factors where org_id = $1")
        .bind(org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
    assert!(!stored.windows(raw.as_bytes().len()).any(|w| w == raw.as_bytes()));
}

#[sqlx::test]
async fn the_policy_sends_an_admin_without_a_factor_to_set_one_up_before_anything_else(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let sam = app.add_admin(org_id, "sam", Role::Admin).await;
    let owner_browser = app.signed_in(&owner).await;
    let admin_browser = app.signed_in(&sam).await;
    assert_eq!(
        admin_browser.rpc("settings/second-factor-policy", &[("policy", "all")]).await.status(),
        403,
        "only owners set the policy"
    );
    assert_eq!(owner_browser.rpc("settings/second-factor-policy", &[("policy", "all")]).await.status(), 200);
    assert!(audit_actions(&app.pool, org_id).await.iter().any(|a| a == "settings.second_factor_policy_changed"));

    let browser = app.browser();
    let response = browser.login(&sam, PASSWORD).await;
    assert_eq!(redirect_target(&response).as_deref(), Some("/settings?tab=security"));
    for page in ["/", "/agents", "/settings", "/settings?tab=api-keys"] {
        assert_eq!(redirect_target(&browser.get(page).await).as_deref(), Some("/settings?tab=security"), "{page}");
    }
    assert_eq!(browser.get("/settings?tab=security").await.status(), 200);
    // Plain handlers outside the portal's calls treat the session as not signed in.
    let test_run = browser.post(&format!("/sso/test?connection={}", uuid::Uuid::new_v4())).await;
    assert!(
        redirect_target(&test_run).is_some_and(|t| t.starts_with("/login?next=")),
        "{:?}",
        redirect_target(&test_run)
    );
    assert_eq!(browser.get("/auth/me").await.status(), 401);
    let blocked = browser.rpc("settings/sign-in", &[]).await;
    assert_eq!(blocked.status(), 403);
    assert!(error_message(blocked).await.contains("requires a second factor"));
    let security: Value = browser.rpc("security", &[]).await.json().await.unwrap();
    assert_eq!((security["required"].clone(), security["authenticator"].clone()), (Value::Bool(true), Value::Null));

    set_up_app(&browser).await;
    assert_eq!(browser.get("/agents").await.status(), 200, "set up: the portal opens");
    let remove = browser.rpc("security/authenticator/remove", &[]).await;
    assert_eq!(remove.status(), 403, "the policy's only factor stays");
    assert!(error_message(remove).await.contains("requires a second factor"));
}

#[sqlx::test]
async fn wrong_codes_count_toward_the_accounts_lockout(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (_, owner) = app.org_with_owner("Acme").await;
    let (secret, _, _) = set_up_app(&app.signed_in(&owner).await).await;
    let browser = after_password(&app, &owner).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(browser.rpc("login/code", &[("code", "123456")]).await.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let locked = browser.rpc("login/code", &[("code", &code(&secret, 1))]).await;
    assert_eq!(locked.status(), 429, "even the right code waits out the lock");
}

/// An owner who lost every factor gets back in only through the operator: `mandate admin
/// recover` clears their factors and password, ends their sessions and prints a one-time link.
#[sqlx::test]
async fn the_operator_recovers_an_owner_who_lost_every_factor(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let old_session = app.signed_in(&owner).await;
    set_up_app(&old_session).await;

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mandate"))
        .args(["admin", "recover", "--org", &org_id.to_string(), "--email", &owner])
        .env("DATABASE_URL", database_url(&app.pool))
        .env("MANDATE_PUBLIC_URL", &app.base)
        .env("MANDATE_STATE_DIR", std::env::temp_dir().join("mandate-test-state"))
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let setup_url = printed["setup_url"].as_str().unwrap();
    assert!(setup_url.starts_with(&format!("{}/setup/mnd_inv_", app.base)), "{setup_url}");

    assert_eq!(old_session.get("/auth/me").await.status(), 401, "every session of theirs ended");
    assert_eq!(app.browser().login(&owner, PASSWORD).await.status(), 401, "the old password is gone");

    let token = setup_url.rsplit('/').next().unwrap();
    let new_password = "a brand new passphrase for dana";
    let form =
        [("token", token), ("display_name", "Owner"), ("password", new_password), ("password_confirm", new_password)];
    let completed = app.browser().rpc("setup/complete", &form).await;
    assert!(redirect_target(&completed).is_some_and(|t| t.starts_with("/login?setup=done")), "{}", completed.status());
    assert_eq!(app.browser().rpc("setup/complete", &form).await.status(), 409, "the link works once");

    let fresh = app.browser();
    assert_eq!(redirect_target(&fresh.login(&owner, new_password).await).as_deref(), Some("/"), "no factor left");
    let me: Value = fresh.get("/auth/me").await.json().await.unwrap();
    assert_eq!(me["role"], "owner", "still the owner");
    let actions = audit_actions(&app.pool, org_id).await;
    for action in ["admin.recovered", "admin.password_reset"] {
        assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
    }
}

/// A password mistyped a few times and then typed right does not use up the second step: the
/// right password gives its attempt back, and the code still gets its try.
#[sqlx::test]
async fn a_mistyped_password_leaves_the_second_step_its_tries(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (_, owner) = app.org_with_owner("Acme").await;
    let (secret, _, _) = set_up_app(&app.signed_in(&owner).await).await;
    let browser = app.browser();
    for _ in 0..4 {
        assert_eq!(browser.login(&owner, "not my password").await.status(), 401);
    }
    assert_eq!(redirect_target(&browser.login(&owner, PASSWORD).await).as_deref(), Some("/login?step=code&next=%2F"));
    let signed_in = browser.rpc("login/code", &[("code", &code(&secret, 1))]).await;
    assert_eq!(redirect_target(&signed_in).as_deref(), Some("/"), "{}", signed_in.status());
}
