//! The demo organization that `scripts/run` starts with: a few admins in every role, a pending
//! invitation, an API key and a real audit trail, all made through the domain functions (so
//! the demo exercises the same rules and audit events as real use). Idempotent: a second run
//! only refreshes the owner's setup link if the owner has not set a password yet.

use super::config::Config;
use super::domain::{admins, api_keys, login, orgs, secrets, DomainError, RequestMeta};
use crate::model::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub const DEMO_ORG_NAME: &str = "Acme Corp (demo)";
pub const DEMO_OWNER_EMAIL: &str = "dana@acme.example";

fn demo_meta(ip: &str) -> RequestMeta {
    RequestMeta { ip: Some(ip.to_string()), user_agent: Some("demo-seed".to_string()), request_id: None }
}

pub async fn seed(pool: &PgPool, config: &Config) -> Result<Value, DomainError> {
    let now = OffsetDateTime::now_utc();
    if let Some(org_id) = orgs::find_by_name(pool, DEMO_ORG_NAME).await? {
        return refresh_owner_link(pool, config, org_id, now).await;
    }
    let meta = demo_meta("10.0.0.10");
    let created = orgs::create(pool, DEMO_ORG_NAME, DEMO_OWNER_EMAIL, Some("acme.example"), &meta, now).await?;
    let org_id = created.org_id;

    // Admins who already joined (their passwords are random and thrown away: the demo signs
    // them in once below so the trail shows real sign-ins).
    let team = [
        ("sam@acme.example", "Sam Rivera", Role::Admin, "10.0.0.21"),
        ("priya@acme.example", "Priya Natarajan", Role::Approver, "10.0.0.22"),
        ("lee@acme.example", "Lee Chen", Role::Auditor, "10.0.0.23"),
    ];
    for (email, name, role, ip) in team {
        let invitation = admins::operator_invite(pool, org_id, email, role, &meta, now).await?;
        let password = secrets::generate("demo-");
        admins::accept_invitation(pool, &invitation.token, name, &password, &demo_meta(ip), now).await?;
        let session = login::password_login(pool, email, &password, &demo_meta(ip), now).await?;
        if email.starts_with("lee") {
            login::logout(pool, &session, &demo_meta(ip), now).await?;
        }
    }
    // A mistyped password, as every real trail has.
    let _ =
        login::password_login(pool, "sam@acme.example", "not-the-right-password", &demo_meta("203.0.113.7"), now).await;
    admins::operator_invite(pool, org_id, "jordan@acme.example", Role::Approver, &meta, now).await?;
    api_keys::create(pool, org_id, "ci-pipeline", &meta, now).await?;

    Ok(json!({
        "org_id": org_id,
        "owner_email": DEMO_OWNER_EMAIL,
        "setup_url": config.url(&admins::setup_path(&created.setup_token)),
    }))
}

async fn refresh_owner_link(
    pool: &PgPool,
    config: &Config,
    org_id: Uuid,
    now: OffsetDateTime,
) -> Result<Value, DomainError> {
    if admins::has_joined(pool, org_id, DEMO_OWNER_EMAIL).await? {
        return Ok(json!({ "org_id": org_id, "owner_email": DEMO_OWNER_EMAIL, "setup_url": null }));
    }
    let invitation =
        admins::operator_invite(pool, org_id, DEMO_OWNER_EMAIL, Role::Owner, &demo_meta("10.0.0.10"), now).await?;
    Ok(json!({
        "org_id": org_id,
        "owner_email": DEMO_OWNER_EMAIL,
        "setup_url": config.url(&admins::setup_path(&invitation.token)),
    }))
}
