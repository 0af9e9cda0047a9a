//! Bootstrap: `org create`, the owner's setup link (single use, 72 h, stored hashed).

use crate::support::*;
use mandate::server::domain::{crypto::secrets, org::organizations};
use time::{Duration, OffsetDateTime};

#[sqlx::test]
async fn setup_link_sets_the_owner_password_once(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let created = organizations::create(
        &app.pool,
        "Acme",
        "Dana@Acme.example",
        Some("acme.example"),
        &meta(),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let token = created.setup_token.clone();

    // Only the digest is stored, never the token itself.
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("select token_hash from admin_invitations").fetch_all(&app.pool).await.unwrap();
    assert_eq!(stored, vec![secrets::digest(&token)]);
    let dump: String = sqlx::query_scalar("select string_agg(t::text, '') from admin_invitations t")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!dump.contains(&token[8..]));

    let page = app.browser().get(&format!("/setup/{token}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Acme"), "the setup page names the organization");
    assert!(html.contains("dana@acme.example"));

    let browser = app.browser();
    let form =
        [("token", token.as_str()), ("display_name", "Dana"), ("password", PASSWORD), ("password_confirm", PASSWORD)];
    let done = browser.rpc("setup/complete", &form).await;
    assert!(redirect_target(&done).unwrap().starts_with("/login?setup=done"));

    let again = browser.rpc("setup/complete", &form).await;
    assert_eq!(again.status(), 409);
    assert!(error_message(again).await.contains("already used"));

    let me = app.signed_in("dana@acme.example").await.get("/auth/me").await;
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["role"], "owner");
    assert_eq!(me["organization"]["name"], "Acme");
    assert_eq!(me["person"]["display_name"], "Dana");

    assert_eq!(
        audit_actions(&app.pool, created.org_id).await,
        ["organization.created", "admin.invited", "admin.joined", "login.succeeded"]
    );
}

#[sqlx::test]
async fn expired_unknown_and_withdrawn_links_are_refused(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let long_ago = OffsetDateTime::now_utc() - Duration::hours(73);
    let expired = organizations::create(&app.pool, "Old", "old@old.example", None, &meta(), long_ago).await.unwrap();
    let browser = app.browser();

    let preview = browser.rpc("setup/preview", &[("token", &expired.setup_token)]).await;
    assert_eq!(preview.status(), 422);
    assert!(error_message(preview).await.contains("expired"));
    let form = [
        ("token", expired.setup_token.as_str()),
        ("display_name", "Old"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];
    let complete = browser.rpc("setup/complete", &form).await;
    assert_eq!(complete.status(), 422);

    let unknown = secrets::generate(secrets::INVITATION_PREFIX);
    let preview = browser.rpc("setup/preview", &[("token", &unknown)]).await;
    assert_eq!(preview.status(), 422);
    assert!(error_message(preview).await.contains("not valid"));
    let preview = browser.rpc("setup/preview", &[("token", "../../etc/passwd")]).await;
    assert_eq!(preview.status(), 422);

    // An admin count of zero proves nothing was created by the refused attempts.
    let admins: i64 = sqlx::query_scalar("select count(*) from admins").fetch_one(&app.pool).await.unwrap();
    assert_eq!(admins, 0);
}

#[sqlx::test]
async fn weak_or_mismatched_passwords_are_refused_and_the_link_survives(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let created =
        organizations::create(&app.pool, "Acme", "dana@acme.example", None, &meta(), OffsetDateTime::now_utc())
            .await
            .unwrap();
    let browser = app.browser();
    let token = created.setup_token.as_str();

    let short = browser
        .rpc(
            "setup/complete",
            &[("token", token), ("display_name", "D"), ("password", "short"), ("password_confirm", "short")],
        )
        .await;
    assert_eq!(short.status(), 422);
    assert!(error_message(short).await.contains("at least 12"));

    let mismatch = browser
        .rpc(
            "setup/complete",
            &[
                ("token", token),
                ("display_name", "D"),
                ("password", PASSWORD),
                ("password_confirm", "something else entirely"),
            ],
        )
        .await;
    assert_eq!(mismatch.status(), 422);
    assert!(error_message(mismatch).await.contains("do not match"));

    let no_name = browser
        .rpc(
            "setup/complete",
            &[("token", token), ("display_name", "  "), ("password", PASSWORD), ("password_confirm", PASSWORD)],
        )
        .await;
    assert_eq!(no_name.status(), 422);

    // The link still works after the refusals.
    let ok = browser
        .rpc(
            "setup/complete",
            &[("token", token), ("display_name", "Dana"), ("password", PASSWORD), ("password_confirm", PASSWORD)],
        )
        .await;
    assert!(redirect_target(&ok).is_some());
}

#[sqlx::test]
async fn org_create_validates_its_input(pool: sqlx::PgPool) {
    let now = OffsetDateTime::now_utc();
    assert!(organizations::create(&pool, "", "a@b.example", None, &meta(), now).await.is_err());
    assert!(organizations::create(&pool, "Acme", "not-an-email", None, &meta(), now).await.is_err());
    assert!(organizations::create(&pool, "Acme", "a@b.example", Some("no_dots"), &meta(), now).await.is_err());
    let count: i64 = sqlx::query_scalar("select count(*) from organizations").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 0, "a refused creation leaves nothing behind");
}
