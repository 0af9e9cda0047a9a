//! Every server function checks the caller's role: a table of (role, operation) → allowed.

use crate::support::*;
use mandate::model::Role;
use uuid::Uuid;

#[sqlx::test]
async fn each_role_can_do_exactly_what_its_permissions_allow(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let target = app.add_admin(org_id, "target", Role::Auditor).await;
    let target_id = app.admin_id(org_id, &target).await.to_string();

    let mut members = vec![(Role::Owner, owner)];
    for role in [Role::Admin, Role::Approver, Role::Auditor] {
        members.push((role, app.add_admin(org_id, role.as_str(), role).await));
    }

    for (role, email) in members {
        let browser = app.signed_in(&email).await;
        // Reading is open to every role.
        for endpoint in ["admins/list", "dashboard", "audit/verify"] {
            let response = browser.rpc(endpoint, &[]).await;
            assert_eq!(response.status(), 200, "{role} reading {endpoint}");
        }
        let audit = browser.rpc("audit/list", &[("action", ""), ("actor", ""), ("outcome", "")]).await;
        assert_eq!(audit.status(), 200, "{role} reading the audit trail");

        // Managing admins is for owners only.
        let expected = if role == Role::Owner { 200 } else { 403 };
        let invite =
            browser.rpc("admins/invite", &[("email", &format!("new-{role}@acme.example")), ("role", "auditor")]).await;
        assert_eq!(invite.status(), expected, "{role} inviting");
        let change = browser.rpc("admins/role", &[("admin_id", &target_id), ("role", "approver")]).await;
        assert_eq!(change.status(), expected, "{role} changing a role");
        if expected == 403 {
            assert!(error_message(change).await.contains("Your role does not allow this"));
        }
    }

    // Withdrawing invitations: owner only.
    let invitation_id: Uuid =
        sqlx::query_scalar("select id from admin_invitations where accepted_at is null and revoked_at is null limit 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let auditor = app.add_admin(org_id, "auditor2", Role::Auditor).await;
    let denied = app
        .signed_in(&auditor)
        .await
        .rpc("admins/revoke-invitation", &[("invitation_id", &invitation_id.to_string())])
        .await;
    assert_eq!(denied.status(), 403);
    let owner_browser = app.signed_in("owner@acme.example").await;
    let allowed = owner_browser.rpc("admins/revoke-invitation", &[("invitation_id", &invitation_id.to_string())]).await;
    assert_eq!(allowed.status(), 200);
}

#[sqlx::test]
async fn signed_out_callers_get_401_from_every_server_function(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let browser = app.browser();
    for endpoint in
        ["admins/list", "dashboard", "audit/verify", "admins/invite", "admins/role", "admins/revoke-invitation"]
    {
        let response = browser
            .rpc(
                endpoint,
                &[
                    ("email", "x@y.example"),
                    ("role", "admin"),
                    ("admin_id", &Uuid::nil().to_string()),
                    ("invitation_id", &Uuid::nil().to_string()),
                ],
            )
            .await;
        assert_eq!(response.status(), 401, "{endpoint}");
    }
    let me = browser.rpc("me", &[]).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.text().await.unwrap(), "null");
}

#[sqlx::test]
async fn the_last_owner_cannot_be_demoted_and_roles_change_with_an_audit_event(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let browser = app.signed_in(&owner).await;
    let owner_id = app.admin_id(org_id, &owner).await.to_string();

    // Promote someone to co-owner, then the original owner may be demoted by them.
    let second = app.add_admin(org_id, "second", Role::Admin).await;
    let second_id = app.admin_id(org_id, &second).await.to_string();
    let promote = browser.rpc("admins/role", &[("admin_id", &second_id), ("role", "owner")]).await;
    assert_eq!(promote.status(), 200);
    let demote_first =
        app.signed_in(&second).await.rpc("admins/role", &[("admin_id", &owner_id), ("role", "auditor")]).await;
    assert_eq!(demote_first.status(), 200);

    // Now `second` is the only owner and cannot be demoted (not even by themself).
    let second_browser = app.signed_in(&second).await;
    let refuse = second_browser.rpc("admins/role", &[("admin_id", &second_id), ("role", "admin")]).await;
    assert_eq!(refuse.status(), 409);
    assert!(error_message(refuse).await.contains("at least one owner"));

    let bad_role = second_browser.rpc("admins/role", &[("admin_id", &owner_id), ("role", "root")]).await;
    assert_eq!(bad_role.status(), 422);

    let changes: Vec<serde_json::Value> =
        sqlx::query_scalar("select details::jsonb from audit_events where action = 'admin.role_changed' order by seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        changes,
        vec![
            serde_json::json!({"from": "admin", "to": "owner"}),
            serde_json::json!({"from": "owner", "to": "auditor"})
        ]
    );
}

#[sqlx::test]
async fn invitations_conflict_with_existing_admins_and_replace_pending_links(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (_, owner) = app.org_with_owner("Acme").await;
    let browser = app.signed_in(&owner).await;

    let existing = browser.rpc("admins/invite", &[("email", &owner), ("role", "admin")]).await;
    assert_eq!(existing.status(), 409);
    let invalid = browser.rpc("admins/invite", &[("email", "not an email"), ("role", "admin")]).await;
    assert_eq!(invalid.status(), 422);

    let first: serde_json::Value = browser
        .rpc("admins/invite", &[("email", "kim@acme.example"), ("role", "approver")])
        .await
        .json()
        .await
        .unwrap();
    let second: serde_json::Value =
        browser.rpc("admins/invite", &[("email", "kim@acme.example"), ("role", "auditor")]).await.json().await.unwrap();
    let token_of = |v: &serde_json::Value| v["link"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let guest = app.browser();
    let old = guest.rpc("setup/preview", &[("token", &token_of(&first))]).await;
    assert_eq!(old.status(), 422, "the first link was replaced");
    let new: serde_json::Value =
        guest.rpc("setup/preview", &[("token", &token_of(&second))]).await.json().await.unwrap();
    assert_eq!(new["role"], "auditor");
}

/// Issue 14, item 6: owners remove admins and the removal ends their sessions; admins remove
/// nobody; the last active owner cannot be removed, not even by themselves.
#[sqlx::test]
async fn owners_remove_admins_and_nobody_removes_the_last_owner(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_id, owner) = app.org_with_owner("Acme").await;
    let owner_id = app.admin_id(org_id, &owner).await.to_string();
    let alex = app.add_admin(org_id, "alex", Role::Admin).await;
    let alex_id = app.admin_id(org_id, &alex).await.to_string();
    let alex_browser = app.signed_in(&alex).await;
    let owner_browser = app.signed_in(&owner).await;

    let by_admin = alex_browser.rpc("admins/remove", &[("admin_id", &owner_id)]).await;
    assert_eq!(by_admin.status(), 403, "an admin removes no owner");
    let by_self = owner_browser.rpc("admins/remove", &[("admin_id", &owner_id)]).await;
    assert_eq!(by_self.status(), 409, "the last owner cannot remove themselves");
    assert!(error_message(by_self).await.contains("at least one owner"));
    assert_eq!(owner_browser.rpc("me", &[]).await.status(), 200);

    assert_eq!(alex_browser.rpc("dashboard", &[]).await.status(), 200);
    assert_eq!(owner_browser.rpc("admins/remove", &[("admin_id", &alex_id)]).await.status(), 200);
    assert_eq!(alex_browser.rpc("dashboard", &[]).await.status(), 401, "the removed admin's session ended");
    assert_eq!(app.browser().login(&alex, PASSWORD).await.status(), 401, "and they cannot sign in again");
    let still_a_person: i64 = sqlx::query_scalar("select count(*) from people where org_id = $1 and email = $2")
        .bind(org_id)
        .bind(&alex)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(still_a_person, 1, "they stay in the directory");
    let actions = audit_actions(&app.pool, org_id).await;
    assert!(actions.contains(&"admin.removed".to_string()));
}
