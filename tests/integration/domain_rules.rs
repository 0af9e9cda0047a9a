//! The rules that matter most, tested a layer below the web: these call the domain directly
//! (no HTTP, no browser) with one pinned time per test, so each rule is checked on its own.
//!
//! - the leaver rule, from every entry point (SCIM `active=false`, SCIM DELETE, a SCIM create
//!   that takes over an active person as inactive, deactivation in the portal) and rejoining
//! - the high-risk approver rule
//! - group ceilings (members only; a member who leaves the group loses the scope)
//! - token exchange narrowing
//! - the last-owner rule

use crate::support::*;
use mandate::model::api_keys::ApiKeyScope;
use mandate::model::Role;
use mandate::server::config::Config;
use mandate::server::domain::agents::approvals::{self, Decision};
use mandate::server::domain::agents::delegation::{self, Designation};
use mandate::server::domain::agents::registry::{self, NewAgent, Owner};
use mandate::server::domain::agents::scopes::{self, NewScope};
use mandate::server::domain::agents::tokens::TokenError;
use mandate::server::domain::directory::users::{self, Modified, UserInput};
use mandate::server::domain::directory::{self, groups, leaver, ChangeError, Directory, DirectoryCall};
use mandate::server::domain::org::{admins, api_keys, organizations};
use mandate::server::domain::{AdminSession, Call, Caller, DomainError, RequestMeta};
use mandate::server::state::AppState;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// An organization with its owner, over the real application state (caches, keys, token log)
/// but without a server.
struct Rules {
    pool: PgPool,
    state: AppState,
    org_id: Uuid,
    owner: AdminSession,
    now: OffsetDateTime,
    meta: RequestMeta,
}

impl Rules {
    async fn new(pool: PgPool) -> Rules {
        mandate::server::migrate(&pool).await.unwrap();
        let config = Config::new(database_url_of_env(), "http://127.0.0.1:9", Some(MASTER_KEY), false).unwrap();
        let state = AppState::new(pool.clone(), config).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let created = organizations::create(&pool, "Acme", "owner@acme.example", None, &meta(), now).await.unwrap();
        let email =
            admins::accept_invitation(&pool, &created.setup_token, "Owner", PASSWORD, &meta(), now).await.unwrap();
        let owner = session_of(&pool, created.org_id, &email).await;
        Rules { pool, state, org_id: created.org_id, owner, now, meta: meta() }
    }

    fn operator(&self) -> Call<'_> {
        Call::new(Caller::Operator { org_id: self.org_id }, &self.meta, self.now)
    }

    fn as_admin<'a>(&'a self, admin: &'a AdminSession) -> Call<'a> {
        Call::new(Caller::Admin(admin), &self.meta, self.now)
    }

    async fn admin(&self, local: &str, role: Role) -> AdminSession {
        let email = format!("{local}@acme.example");
        let invitation = admins::invite(&self.pool, self.operator(), &email, role).await.unwrap();
        admins::accept_invitation(&self.pool, &invitation.token, local, PASSWORD, &self.meta, self.now).await.unwrap();
        session_of(&self.pool, self.org_id, &email).await
    }

    async fn scope(&self, name: &str, risk: &str) -> Uuid {
        let scope = NewScope { name, description: "", risk, max_token_lifetime_seconds: 300 };
        scopes::create(&self.pool, self.operator(), scope).await.unwrap()
    }

    /// Registers an agent for `owner` requesting `wanted`; returns (agent id, client id).
    async fn agent(&self, owner: &str, name: &str, wanted: &[&str], approve: bool) -> (Uuid, String) {
        let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        let agent =
            NewAgent { name, description: "", owner: Owner::Email(owner), scopes: &wanted, reason: "rules", approve };
        let created = registry::register(&self.pool, self.operator(), agent).await.unwrap();
        (created.agent_id, created.client_id)
    }

    /// A token for the agent with its whole mandate.
    async fn token(&self, client_id: &str) -> String {
        let tokens = &self.state.tokens;
        let agent = tokens.mandates.agent_by_client_id(&self.pool, client_id).await.unwrap().unwrap();
        tokens.client_credentials(&agent, None, &self.meta, self.now).await.unwrap().access_token.clone()
    }

    async fn active(&self, token: &str) -> bool {
        self.state.tokens.introspect(self.org_id, token, self.now).await.unwrap().is_some()
    }

    async fn pending_request(&self, agent_id: Uuid) -> Uuid {
        sqlx::query_scalar("select id from scope_requests where agent_id = $1 and status = 'pending'")
            .bind(agent_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn agent_row(&self, agent_id: Uuid) -> (String, Option<String>) {
        sqlx::query_as("select status, revoked_reason from agents where id = $1")
            .bind(agent_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn request_status(&self, request_id: Uuid) -> String {
        sqlx::query_scalar("select status from scope_requests where id = $1")
            .bind(request_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn person(&self, email: &str) -> Uuid {
        sqlx::query_scalar("select id from people where org_id = $1 and email = $2")
            .bind(self.org_id)
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn event_details(&self, action: &str) -> serde_json::Value {
        let details: String = sqlx::query_scalar(
            "select details from audit_events where org_id = $1 and action = $2 order by seq desc limit 1",
        )
        .bind(self.org_id)
        .bind(action)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        serde_json::from_str(&details).unwrap()
    }

    async fn directory(&self) -> Directory {
        let created = directory::create(&self.pool, self.operator(), "Okta", "okta").await.unwrap();
        Directory::for_operator(&self.pool, self.org_id, created.directory_id).await.unwrap()
    }
}

async fn session_of(pool: &PgPool, org_id: Uuid, email: &str) -> AdminSession {
    let admin_id: Uuid = sqlx::query_scalar(
        "select a.id from admins a join people p on p.org_id = a.org_id and p.id = a.person_id
         where a.org_id = $1 and p.email = $2",
    )
    .bind(org_id)
    .bind(email)
    .fetch_one(pool)
    .await
    .unwrap();
    admins::load_session(pool, org_id, admin_id).await.unwrap().unwrap()
}

/// A key with every scope: the rules below hold even for the broadest key.
fn robot() -> api_keys::NewApiKey<'static> {
    api_keys::NewApiKey { name: "robot", scopes: &ApiKeyScope::ALL, expires_at: None }
}

fn user(email: &str, active: bool) -> UserInput {
    UserInput {
        resource: json!({ "userName": email, "active": active }),
        user_name: email.to_string(),
        external_id: None,
        display_name: None,
        active,
        emails: json!([{ "value": email, "primary": true }]),
        email: email.to_string(),
        person_name: email.to_string(),
    }
}

/// What every departure must have ended: the agent revoked with the leaver's reason, its
/// pending request cancelled, its live token inactive, and the counts on the one audit event.
async fn assert_left(rules: &Rules, agent_id: Uuid, request_id: Uuid, token: &str, action: &str) {
    assert_eq!(rules.agent_row(agent_id).await, ("revoked".to_string(), Some(leaver::REASON.to_string())), "{action}");
    assert_eq!(rules.request_status(request_id).await, "cancelled", "{action}");
    assert!(!rules.active(token).await, "{action}: the token must be inactive at once");
    let details = rules.event_details(action).await;
    assert_eq!(details["revoked_tokens"], 1, "{action}: {details}");
    assert_eq!(details["cancelled_requests"], 1, "{action}: {details}");
    assert_eq!(details["revoked_agents"][0]["id"], agent_id.to_string(), "{action}: {details}");
}

#[sqlx::test]
async fn the_leaver_rule_is_the_same_from_every_entry_point(pool: PgPool) {
    let rules = Rules::new(pool).await;
    rules.scope("crm.read", "low").await;
    rules.scope("crm.write", "low").await;
    let okta = rules.directory().await;
    let cache = rules.state.mandates();
    let scim = DirectoryCall { directory: &okta, meta: &rules.meta, now: rules.now };

    // One person per entry point, each with an agent holding a live token and a pending request.
    let mut people_by_path = Vec::new();
    for (i, path) in ["patch", "delete", "create", "portal"].into_iter().enumerate() {
        let email = format!("{path}@acme.example");
        let user_id = if path == "create" {
            None
        } else {
            Some(users::create_user(&rules.pool, cache, scim, user(&email, true)).await.unwrap().id)
        };
        let (agent_id, client_id) = rules.agent(&email, &format!("Agent {i}"), &["crm.read"], true).await;
        let token = rules.token(&client_id).await;
        approvals::request(&rules.pool, rules.operator(), agent_id, "crm.write", "more").await.unwrap();
        let request_id = rules.pending_request(agent_id).await;
        people_by_path.push((path, email, user_id, agent_id, request_id, token));
    }

    for (path, email, user_id, agent_id, request_id, token) in &people_by_path {
        let action = match *path {
            "patch" => {
                let (record, modified) = users::modify_user(&rules.pool, cache, scim, user_id.unwrap(), None, |_| {
                    Ok::<_, DomainError>(user(email, false))
                })
                .await
                .unwrap();
                assert!(!record.active);
                assert!(matches!(modified, Modified::Left(_)), "the domain says the person left");
                "scim.user.deactivated"
            }
            "delete" => {
                users::delete_user(&rules.pool, cache, scim, user_id.unwrap(), None).await.unwrap();
                "scim.user.deleted"
            }
            "create" => {
                // The directory provisions an inactive user for a person who is active here.
                users::create_user(&rules.pool, cache, scim, user(email, false)).await.unwrap();
                "scim.user.created"
            }
            _ => {
                let person_id = rules.person(email).await;
                let stopped = leaver::set_active(&rules.pool, cache, rules.as_admin(&rules.owner), person_id, false)
                    .await
                    .unwrap();
                assert_eq!(stopped, 1);
                "person.deactivated"
            }
        };
        assert_left(&rules, *agent_id, *request_id, token, action).await;
    }

    // Coming back revives the person, never the agent.
    let (_, email, user_id, agent_id, _, _) = &people_by_path[0];
    let (_, modified) = users::modify_user(&rules.pool, cache, scim, user_id.unwrap(), None, |_| {
        Ok::<_, DomainError>(user(email, true))
    })
    .await
    .unwrap();
    assert!(matches!(modified, Modified::Rejoined));
    let portal_person = rules.person(&people_by_path[3].1).await;
    leaver::set_active(&rules.pool, cache, rules.as_admin(&rules.owner), portal_person, true).await.unwrap();
    for (_, _, _, agent_id, _, _) in [&people_by_path[0], &people_by_path[3]] {
        assert_eq!(rules.agent_row(*agent_id).await.0, "revoked");
        let state = cache.agent(&rules.pool, *agent_id).await.unwrap().unwrap();
        assert!(!state.usable(), "a rejoined person's agent stays unusable");
    }
    assert_eq!(rules.agent_row(*agent_id).await.1.as_deref(), Some(leaver::REASON));
}

#[sqlx::test]
async fn a_high_risk_scope_needs_a_person_other_than_the_owner(pool: PgPool) {
    let rules = Rules::new(pool).await;
    rules.scope("finance.export", "high").await;
    let cache = rules.state.mandates();
    let approver = rules.admin("jordan", Role::Approver).await;
    // The owner of the agent is an admin too: they may not approve its high-risk scope.
    let owner_email = rules.owner.email().to_string();
    let (agent_id, _) = rules.agent(&owner_email, "Exporter", &["finance.export"], false).await;
    let request_id = rules.pending_request(agent_id).await;
    let approve = || Decision::Approve { until: None, note: String::new() };

    let own = approvals::decide(&rules.pool, cache, rules.as_admin(&rules.owner), request_id, approve()).await;
    assert!(
        matches!(own, Err(DomainError::NotAllowed(ref m)) if m.contains("other than the agent's owner")),
        "{own:?}"
    );

    let key = api_keys::create(&rules.pool, rules.as_admin(&rules.owner), robot()).await.unwrap();
    let principal = api_keys::authenticate(&rules.pool, &key, rules.now).await.unwrap().unwrap();
    let by_key = Call::new(Caller::ApiKey(&principal), &rules.meta, rules.now);
    let keyed = approvals::decide(&rules.pool, cache, by_key, request_id, approve()).await;
    assert!(matches!(keyed, Err(DomainError::NotAllowed(ref m)) if m.contains("not an API key")), "{keyed:?}");
    assert_eq!(rules.request_status(request_id).await, "pending", "refusals change nothing");

    approvals::decide(&rules.pool, cache, rules.as_admin(&approver), request_id, approve()).await.unwrap();
    assert_eq!(rules.request_status(request_id).await, "approved");
}

#[sqlx::test]
async fn a_group_ceiling_bounds_the_mandate_and_follows_the_group(pool: PgPool) {
    let rules = Rules::new(pool).await;
    let scope_id = rules.scope("finance.read", "low").await;
    let cache = rules.state.mandates();
    let okta = rules.directory().await;
    let scim = DirectoryCall { directory: &okta, meta: &rules.meta, now: rules.now };
    let inside = users::create_user(&rules.pool, cache, scim, user("priya@acme.example", true)).await.unwrap();
    users::create_user(&rules.pool, cache, scim, user("sam@acme.example", true)).await.unwrap();
    let finance = groups::GroupInput { display_name: "Finance".into(), external_id: None, members: vec![inside.id] };
    let finance = groups::create_group(&rules.pool, cache, scim, finance).await.unwrap();
    scopes::set_ceiling(&rules.pool, cache, rules.operator(), scope_id, &[finance.id]).await.unwrap();

    let (priya_agent, _) = rules.agent("priya@acme.example", "Ledger", &["finance.read"], true).await;
    let (sam_agent, _) = rules.agent("sam@acme.example", "Books", &["finance.read"], true).await;
    assert!(holds(&rules, priya_agent).await, "a member of the ceiling's group holds the scope");
    assert!(!holds(&rules, sam_agent).await, "an approval does not lift the ceiling for a non-member");

    // The mover: leaving the group takes the scope out of the mandate at once.
    let none = groups::GroupInput { display_name: "Finance".into(), external_id: None, members: vec![] };
    groups::modify_group(&rules.pool, cache, scim, finance.id, None, |_| Ok::<_, DomainError>(none)).await.unwrap();
    assert!(!holds(&rules, priya_agent).await, "a person who left the group loses the scope");
    assert!(!holds(&rules, sam_agent).await);
}

/// Whether the agent's live mandate holds `finance.read` now.
async fn holds(rules: &Rules, agent_id: Uuid) -> bool {
    let state = rules.state.mandates().agent(&rules.pool, agent_id).await.unwrap().unwrap();
    state.grant("finance.read", rules.now).is_some()
}

#[sqlx::test]
async fn token_exchange_only_narrows(pool: PgPool) {
    let rules = Rules::new(pool).await;
    rules.scope("crm.read", "low").await;
    rules.scope("crm.write", "low").await;
    let (parent_id, parent) = rules.agent("sam@acme.example", "Planner", &["crm.read", "crm.write"], true).await;
    let (child_id, child) = rules.agent("sam@acme.example", "Worker", &["crm.read"], true).await;
    let (helper_id, helper) = rules.agent("sam@acme.example", "Helper", &["crm.read", "crm.write"], true).await;
    for (agent, delegate) in [(parent_id, child_id), (child_id, helper_id)] {
        delegation::designate(
            &rules.pool,
            rules.state.mandates(),
            rules.operator(),
            agent,
            delegate,
            Designation::Grant,
        )
        .await
        .unwrap();
    }
    let tokens = &rules.state.tokens;
    let parent_token = rules.token(&parent).await;
    let worker = tokens.mandates.agent_by_client_id(&rules.pool, &child).await.unwrap().unwrap();

    let narrowed =
        tokens.exchange(&worker, &parent_token, Some("crm.read"), &rules.meta, rules.now).await.expect("a subset");
    let facts = tokens.introspect(rules.org_id, &narrowed.access_token, rules.now).await.unwrap().unwrap();
    assert_eq!(facts.scopes, vec!["crm.read".to_string()]);

    // Passed on again, by an agent that itself holds more, it still cannot widen.
    let helper = tokens.mandates.agent_by_client_id(&rules.pool, &helper).await.unwrap().unwrap();
    let wider = tokens.exchange(&helper, &narrowed.access_token, Some("crm.read crm.write"), &rules.meta, rules.now);
    assert!(matches!(wider.await, Err(TokenError::InvalidScope(_))), "a derived token never gains a scope");
}

#[sqlx::test]
async fn the_last_owner_cannot_be_demoted(pool: PgPool) {
    let rules = Rules::new(pool).await;
    let only =
        admins::change_role(&rules.pool, rules.as_admin(&rules.owner), rules.owner.admin_id(), Role::Admin).await;
    assert!(matches!(only, Err(DomainError::Conflict(ref m)) if m.contains("at least one owner")), "{only:?}");

    let second = rules.admin("dana", Role::Owner).await;
    admins::change_role(&rules.pool, rules.as_admin(&second), rules.owner.admin_id(), Role::Admin).await.unwrap();
    let last = admins::change_role(&rules.pool, rules.as_admin(&second), second.admin_id(), Role::Admin).await;
    assert!(matches!(last, Err(DomainError::Conflict(_))), "{last:?}");

    // An API key never manages admins.
    let key = api_keys::create(&rules.pool, rules.as_admin(&second), robot()).await.unwrap();
    let principal = api_keys::authenticate(&rules.pool, &key, rules.now).await.unwrap().unwrap();
    let keyed = Call::new(Caller::ApiKey(&principal), &rules.meta, rules.now);
    let promoted = admins::change_role(&rules.pool, keyed, rules.owner.admin_id(), Role::Owner).await;
    assert!(matches!(promoted, Err(DomainError::Forbidden(_))), "{promoted:?}");
}

/// Least privilege, item 4: four eyes mean four eyes. A high-risk scope is never approved by the
/// admin who registered the agent or by the admin who last set the scope's risk level; only
/// owners change risk levels, and each change is audited.
#[sqlx::test]
async fn four_eyes_mean_four_eyes(pool: PgPool) {
    let rules = Rules::new(pool).await;
    let cache = rules.state.mandates();
    let alex = rules.admin("alex", Role::Admin).await;
    let approver = rules.admin("jordan", Role::Approver).await;
    rules.scope("payments.send", "high").await;
    let approve = || Decision::Approve { until: None, note: String::new() };

    // Alex registers an agent for someone else and tries to approve its high-risk scope.
    let wanted = vec!["payments.send".to_string()];
    let agent = |approve| NewAgent {
        name: "Payer",
        description: "",
        owner: Owner::Email("sam@acme.example"),
        scopes: &wanted,
        reason: "pay invoices",
        approve,
    };
    let registered = registry::register(&rules.pool, rules.as_admin(&alex), agent(false)).await.unwrap();
    let request_id = rules.pending_request(registered.agent_id).await;
    let own = approvals::decide(&rules.pool, cache, rules.as_admin(&alex), request_id, approve()).await;
    assert!(matches!(own, Err(DomainError::NotAllowed(ref m)) if m.contains("registered")), "{own:?}");
    // Registering with approval in one step is the same attack.
    let at_once = registry::register(&rules.pool, rules.as_admin(&alex), agent(true)).await;
    assert!(matches!(at_once, Err(DomainError::NotAllowed(_)) | Err(DomainError::Forbidden(_))), "{at_once:?}");
    assert_eq!(rules.request_status(request_id).await, "pending");

    // Only owners change a risk level.
    let ledger = rules.scope("ledger.write", "low").await;
    let by_admin = scopes::set_risk(&rules.pool, cache, rules.as_admin(&alex), ledger, "high").await;
    assert!(matches!(by_admin, Err(DomainError::Forbidden(_))), "{by_admin:?}");
    let (ledger_agent, _) = rules.agent("sam@acme.example", "Bookkeeper", &["ledger.write"], false).await;
    scopes::set_risk(&rules.pool, cache, rules.as_admin(&rules.owner), ledger, "high").await.unwrap();
    assert_eq!(rules.event_details("scope.risk_changed").await, json!({ "from": "low", "to": "high" }));
    // The owner who raised it is not the second pair of eyes on it.
    let ledger_request = rules.pending_request(ledger_agent).await;
    let raiser = approvals::decide(&rules.pool, cache, rules.as_admin(&rules.owner), ledger_request, approve()).await;
    assert!(matches!(raiser, Err(DomainError::NotAllowed(ref m)) if m.contains("risk level")), "{raiser:?}");

    // Someone else approves both.
    approvals::decide(&rules.pool, cache, rules.as_admin(&approver), request_id, approve()).await.unwrap();
    approvals::decide(&rules.pool, cache, rules.as_admin(&approver), ledger_request, approve()).await.unwrap();
    assert_eq!(rules.request_status(ledger_request).await, "approved");
}

/// Least privilege, item 6: nobody locks the owners out. The last active owner cannot be
/// deactivated in the portal (an admin may not deactivate any owner) nor by SCIM — a SCIM create
/// of the owner's email as inactive, a PATCH to `active=false`, or a DELETE.
#[sqlx::test]
async fn the_last_active_owner_cannot_be_deactivated_by_any_path(pool: PgPool) {
    let rules = Rules::new(pool).await;
    let cache = rules.state.mandates();
    let owner_email = rules.owner.email().to_string();
    let owner_person = rules.owner.person_id();
    let alex = rules.admin("alex", Role::Admin).await;
    let by_admin = leaver::set_active(&rules.pool, cache, rules.as_admin(&alex), owner_person, false).await;
    assert!(matches!(by_admin, Err(DomainError::Forbidden(_))), "{by_admin:?}");
    let by_self = leaver::set_active(&rules.pool, cache, rules.as_admin(&rules.owner), owner_person, false).await;
    assert!(matches!(by_self, Err(DomainError::Conflict(_))), "{by_self:?}");

    let okta = rules.directory().await;
    let scim = DirectoryCall { directory: &okta, meta: &rules.meta, now: rules.now };
    let takeover = users::create_user(&rules.pool, cache, scim, user(&owner_email, false)).await;
    assert!(matches!(takeover, Err(DomainError::Conflict(ref m)) if m.contains("last active owner")), "{takeover:?}");
    let linked = users::create_user(&rules.pool, cache, scim, user(&owner_email, true)).await.unwrap();
    let patched = users::modify_user(&rules.pool, cache, scim, linked.id, None, |_| {
        Ok::<_, DomainError>(user(&owner_email, false))
    })
    .await;
    assert!(matches!(patched, Err(ChangeError::Domain(DomainError::Conflict(_)))), "the PATCH is refused");
    let deleted = users::delete_user(&rules.pool, cache, scim, linked.id, None).await;
    assert!(matches!(deleted, Err(DomainError::Conflict(_))), "{deleted:?}");
    let active: bool = sqlx::query_scalar("select active from people where id = $1")
        .bind(owner_person)
        .fetch_one(&rules.pool)
        .await
        .unwrap();
    assert!(active, "the owner is still active and can sign in");

    // With a second owner, an owner may deactivate the first; the second is then the last.
    let dana = rules.admin("dana", Role::Owner).await;
    leaver::set_active(&rules.pool, cache, rules.as_admin(&dana), owner_person, false).await.unwrap();
    let last = users::create_user(&rules.pool, cache, scim, user("dana@acme.example", false)).await;
    assert!(matches!(last, Err(DomainError::Conflict(_))), "{last:?}");
    // And a deactivated owner does not count as the other owner for a demotion.
    let demoted = admins::change_role(&rules.pool, rules.as_admin(&dana), dana.admin_id(), Role::Admin).await;
    assert!(matches!(demoted, Err(DomainError::Conflict(_))), "{demoted:?}");
}

/// Least privilege, item 7: revoking cannot be undone. A token whose approval was withdrawn stays
/// inactive when the scope is approved again (a new approval is a new mandate), and a token of a
/// person who left stays dead when they rejoin.
#[sqlx::test]
async fn a_withdrawn_token_stays_dead_after_the_scope_is_approved_again(pool: PgPool) {
    let rules = Rules::new(pool).await;
    let cache = rules.state.mandates();
    rules.scope("crm.read", "low").await;
    let (agent_id, client_id) = rules.agent("sam@acme.example", "Ledger", &["crm.read"], true).await;
    let token = rules.token(&client_id).await;
    assert!(rules.active(&token).await);
    let approval: Uuid =
        sqlx::query_scalar("select id from scope_requests where agent_id = $1 and status = 'approved'")
            .bind(agent_id)
            .fetch_one(&rules.pool)
            .await
            .unwrap();
    approvals::withdraw(&rules.pool, cache, rules.operator(), approval, "audit finding").await.unwrap();
    assert!(!rules.active(&token).await, "withdrawn: the token stops");

    let again =
        approvals::request(&rules.pool, rules.operator(), agent_id, "crm.read", "needed after all").await.unwrap();
    let approve = Decision::Approve { until: None, note: String::new() };
    approvals::decide(&rules.pool, cache, rules.operator(), again, approve).await.unwrap();
    assert!(!rules.active(&token).await, "re-approving the scope does not revive the withdrawn token");
    let fresh = rules.token(&client_id).await;
    assert!(rules.active(&fresh).await, "a new token rests on the new approval");
}
