//! Tenant isolation: an admin of one organization gets 404 for every object of another.

use crate::support::*;
use mandate::model::Role;
use mandate::server::domain::Call;
use mandate::server::domain::Caller;
use uuid::Uuid;

#[sqlx::test]
async fn objects_of_another_organization_are_not_found(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_a, owner_a) = app.org_with_owner("Alpha").await;
    let (org_b, owner_b) = app.org_with_owner("Bravo").await;
    let b_admin = app.add_admin(org_b, "sam", Role::Admin).await;
    let b_admin_id = app.admin_id(org_b, &b_admin).await.to_string();
    let b_owner_id = app.admin_id(org_b, &owner_b).await.to_string();
    let b_browser = app.signed_in(&owner_b).await;
    let b_invite: serde_json::Value = b_browser
        .rpc("admins/invite", &[("email", "kim@bravo.example"), ("role", "auditor")])
        .await
        .json()
        .await
        .unwrap();
    assert!(b_invite["link"].is_string());
    let b_invitation_id: Uuid =
        sqlx::query_scalar("select id from admin_invitations where org_id = $1 and email = 'kim@bravo.example'")
            .bind(org_b)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let b_event_id: Uuid = sqlx::query_scalar("select id from audit_events where org_id = $1 order by seq limit 1")
        .bind(org_b)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let a = app.signed_in(&owner_a).await;
    for (endpoint, form) in [
        ("admins/role", vec![("admin_id", b_admin_id.clone()), ("role", "auditor".to_string())]),
        ("admins/role", vec![("admin_id", b_owner_id.clone()), ("role", "auditor".to_string())]),
        ("admins/revoke-invitation", vec![("invitation_id", b_invitation_id.to_string())]),
        ("audit/event", vec![("event_id", b_event_id.to_string())]),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = a.rpc(endpoint, &form).await;
        assert_eq!(response.status(), 404, "{endpoint} on another organization's object");
    }

    // Nothing of Bravo changed, and Alpha's lists show only Alpha.
    let role: String = sqlx::query_scalar("select role from admins where org_id = $1 and id = $2::uuid")
        .bind(org_b)
        .bind(&b_admin_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(role, "admin");
    let revoked: Option<time::OffsetDateTime> =
        sqlx::query_scalar("select revoked_at from admin_invitations where id = $1")
            .bind(b_invitation_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(revoked.is_none());

    let overview: serde_json::Value = a.rpc("admins/list", &[]).await.json().await.unwrap();
    let emails: Vec<&str> =
        overview["admins"].as_array().unwrap().iter().map(|a| a["email"].as_str().unwrap()).collect();
    assert_eq!(emails, vec![owner_a.as_str()]);
    let audit: serde_json::Value =
        a.rpc("audit/list", &[("action", ""), ("actor", ""), ("outcome", "")]).await.json().await.unwrap();
    assert!(audit["events"].as_array().unwrap().iter().all(|e| !e["actor_label"].as_str().unwrap().contains("bravo")));

    // Alpha's own event is found, so the 404s above were about ownership, not the endpoint.
    let a_event_id: Uuid = sqlx::query_scalar("select id from audit_events where org_id = $1 limit 1")
        .bind(org_a)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(a.rpc("audit/event", &[("event_id", &a_event_id.to_string())]).await.status(), 200);
}

#[sqlx::test]
async fn api_keys_see_only_their_organization(pool: sqlx::PgPool) {
    let app = spawn(pool).await;
    let (org_a, _) = app.org_with_owner("Alpha").await;
    let (org_b, _) = app.org_with_owner("Bravo").await;
    let now = time::OffsetDateTime::now_utc();
    let key_a = mandate::server::domain::org::api_keys::create(
        &app.pool,
        Call::new(Caller::Operator { org_id: org_a }, &meta(), now),
        mandate::server::domain::org::api_keys::NewApiKey {
            name: "a",
            scopes: &mandate::model::api_keys::ApiKeyScope::ALL,
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let events: serde_json::Value = app
        .bare_client()
        .get(app.url("/api/v1/audit/events?limit=500"))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    assert!(!events.is_empty());
    let b_events: i64 = sqlx::query_scalar("select count(*) from audit_events where org_id = $1")
        .bind(org_b)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(b_events > 0);
    assert!(events.iter().all(|e| !e["actor_label"].as_str().unwrap().contains("bravo")
        && !e["target_label"].as_str().unwrap_or("").contains("Bravo")));
}
