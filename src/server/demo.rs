//! The demo organization that `scripts/run` starts with: a few admins in every role, a pending
//! invitation, an API key, agents with approvals, SSO and a directory, agent actions traced to
//! their humans, a signed checkpoint and a log stream, all made through the domain functions (so
//! the demo exercises the same rules and audit events as real use). Idempotent: a second run
//! only refreshes the owner's setup link if the owner has not set a password yet.

use super::config::Config;
use super::domain::agents::approvals::{self, Decision};
use super::domain::agents::delegation::{self, Designation};
use super::domain::agents::mandate::Mandates;
use super::domain::agents::registry::{self, NewAgent, Owner};
use super::domain::agents::scopes::{self, NewScope};
use super::domain::directory::{self, groups, users, ChangeError, Directory, DirectoryCall, FeedEntry};
use super::domain::{
    crypto::secrets,
    org::admins,
    org::api_keys,
    org::factors::{self, AfterPassword},
    org::login,
    org::organizations,
    sso::connections,
    sso::domains,
    sso::oidc,
    sso::saml,
    AdminSession, Caller, DomainError, RequestMeta,
};
use super::scim;
use crate::model::agents::AgentFilter;
use crate::model::api_keys::ApiKeyScope;
use crate::model::connections::{OidcConnectionInput, SamlConnectionInput};
use crate::model::Role;
use crate::server::domain::Call;
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
    if let Some(org_id) = organizations::find_by_name(pool, DEMO_ORG_NAME).await? {
        seed_agents(pool, config, org_id).await?;
        seed_sso(pool, config, org_id).await?;
        seed_audit(pool, config, org_id).await?;
        return refresh_owner_link(pool, config, org_id, now).await;
    }
    let meta = demo_meta("10.0.0.10");
    let created =
        organizations::create(pool, DEMO_ORG_NAME, DEMO_OWNER_EMAIL, Some("acme.example"), &meta, now).await?;
    let org_id = created.org_id;

    // Admins who already joined (their passwords are random and thrown away: the demo signs
    // them in once below so the trail shows real sign-ins).
    let team = [
        ("sam@acme.example", "Sam Rivera", Role::Admin, "10.0.0.21"),
        ("priya@acme.example", "Priya Natarajan", Role::Approver, "10.0.0.22"),
        ("lee@acme.example", "Lee Chen", Role::Auditor, "10.0.0.23"),
    ];
    for (email, name, role, ip) in team {
        let invitation = admins::invite(pool, Call::new(Caller::Operator { org_id }, &meta, now), email, role).await?;
        let password = secrets::generate("demo-");
        admins::accept_invitation(pool, &invitation.token, name, &password, &demo_meta(ip), now).await?;
        let outcome = factors::sign_in_with_password(pool, email, &password, &demo_meta(ip), now).await?;
        if let (true, AfterPassword::SignedIn(session)) = (email.starts_with("lee"), &outcome) {
            login::logout(pool, session, &demo_meta(ip), now).await?;
        }
    }
    seed_second_factor(pool, config, org_id, "priya@acme.example").await?;
    // Someone guessing Sam's password from a few addresses: the first failure is recorded, the
    // rest are counted into one summary when the window closes (a running server does that).
    for ip in ["203.0.113.7", "203.0.113.8", "198.51.100.23", "203.0.113.7"] {
        let _ = login::check_password(pool, "sam@acme.example", "not-the-right-password", &demo_meta(ip), now).await;
    }
    admins::invite(pool, Call::new(Caller::Operator { org_id }, &meta, now), "jordan@acme.example", Role::Approver)
        .await?;
    let ci = [ApiKeyScope::AgentsRead, ApiKeyScope::AgentsWrite, ApiKeyScope::AuditRead];
    let ci = api_keys::NewApiKey { name: "ci-pipeline", scopes: &ci, expires_at: Some(now + time::Duration::days(90)) };
    api_keys::create(pool, Call::new(Caller::Operator { org_id }, &meta, now), ci).await?;
    let crm = api_keys::NewApiKey { name: "crm-resource-server", scopes: &ApiKeyScope::DEFAULT, expires_at: None };
    api_keys::create(pool, Call::new(Caller::Operator { org_id }, &meta, now), crm).await?;
    seed_agents(pool, config, org_id).await?;
    seed_sso(pool, config, org_id).await?;
    seed_audit(pool, config, org_id).await?;

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
    let invitation = admins::invite(
        pool,
        Call::new(Caller::Operator { org_id }, &demo_meta("10.0.0.10"), now),
        DEMO_OWNER_EMAIL,
        Role::Owner,
    )
    .await?;
    Ok(json!({
        "org_id": org_id,
        "owner_email": DEMO_OWNER_EMAIL,
        "setup_url": config.url(&admins::setup_path(&invitation.token)),
    }))
}

/// Single sign-on as a customer would have it before go-live: an Okta OIDC connection with
/// group → role mappings, not yet turned on (the demo has no reachable IdP, and the owner signs in with
/// a password), acme.example verified and a second domain waiting for its TXT record.
/// An admin who set up an authenticator app (the code an app would show, computed here), so the
/// trail shows an enrolment and the Security settings have something to show for that admin.
async fn seed_second_factor(pool: &PgPool, config: &Config, org_id: Uuid, email: &str) -> Result<(), DomainError> {
    use super::domain::crypto::master_key::MasterKey;
    let Some(master) = config.master_key.map(MasterKey::new) else { return Ok(()) };
    let now = OffsetDateTime::now_utc();
    let admin = AdminSession::for_operator(pool, org_id, email).await?;
    let setup = factors::totp::begin(pool, &master, &admin, now).await?;
    let secret = totp_rs::Secret::try_from_base32(&setup.secret)
        .map_err(|err| DomainError::Internal(format!("demo authenticator: {err:?}")))?;
    let code = totp_rs::Builder::new().with_secret(secret).build_noncompliant().generate(now.unix_timestamp() as u64);
    factors::totp::confirm(pool, &master, &admin, setup.factor_id, &code.to_string(), &demo_meta("10.0.0.22"), now)
        .await?;
    Ok(())
}

async fn seed_sso(pool: &PgPool, config: &Config, org_id: Uuid) -> Result<(), DomainError> {
    let Some(master) = config.master_key.map(super::domain::crypto::master_key::MasterKey::new) else { return Ok(()) };
    let operator = Caller::Operator { org_id };
    if !connections::list(pool, operator).await?.is_empty() {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let meta = demo_meta("10.0.0.10");
    let input = OidcConnectionInput {
        name: "Okta (demo)".into(),
        issuer: "https://acme.okta.example".into(),
        client_id: "0oa1demo2mandate3".into(),
        client_secret: secrets::generate("demo-"),
        scopes: "openid email profile groups".into(),
        role_mappings: "mandate-admins = admin\nsecurity-reviewers = approver\ncompliance = auditor".into(),
        ..Default::default()
    };
    oidc::create(pool, &master, Call::new(operator, &meta, now), &input).await?;
    domains::verify_by_operator(pool, org_id, "acme.example", &meta, now).await?;
    domains::add(pool, Call::new(operator, &meta, now), "acme-labs.example").await?;

    // A SAML connection whose IdP certificate expires in 45 days: the dashboard warns about it.
    let (_, certificate) = saml::generate_key_and_certificate("Acme Entra ID signing (demo)", 45)?;
    let input = SamlConnectionInput {
        name: "Entra ID (demo)".into(),
        role_mappings: "mandate-admins = admin".into(),
        ..Default::default()
    };
    let idp = saml::IdpSettings {
        entity_id: "https://sts.windows.example/acme-tenant/".into(),
        sso_url: "https://login.microsoftonline.example/acme-tenant/saml2".into(),
        metadata_url: None,
        certificates: vec![saml::Certificate::from_der(&certificate)?],
    };
    saml::create(pool, &master, Call::new(operator, &meta, now), &input, &idp).await?;
    Ok(())
}

/// The catalog, groups, people and agents of the demo — approvals, a denial, live tokens, a
/// delegated sub-agent token and a leaver whose agents stopped — made once per organization.
async fn seed_agents(pool: &PgPool, config: &Config, org_id: Uuid) -> Result<(), DomainError> {
    let now = OffsetDateTime::now_utc();
    let operator = Caller::Operator { org_id };
    if !registry::list(pool, operator, &AgentFilter::default(), now).await?.is_empty() {
        return Ok(());
    }
    let meta = demo_meta("10.0.0.10");
    let mandates = Mandates::default();

    let catalog = [
        ("crm.read", "Read customer records in the CRM", "low", 300),
        ("crm.write", "Create and update CRM records", "medium", 300),
        ("mail.send", "Send email as the owner", "low", 120),
        ("calendar.write", "Create and move calendar events", "low", 300),
        ("github.read", "Read repositories and pull requests", "low", 300),
        ("finance.export", "Export ledgers and invoices", "high", 120),
    ];
    for (name, description, risk, lifetime) in catalog {
        let scope = NewScope { name, description, risk, max_token_lifetime_seconds: lifetime };
        scopes::create(pool, Call::new(operator, &meta, now), scope).await?;
    }

    // People and groups arrive the way they do in production: over SCIM from the IdP.
    let created = directory::create(pool, Call::new(operator, &meta, now), "Okta (demo)", "okta").await?;
    let okta = Directory::for_operator(pool, org_id, created.directory_id).await?;
    let okta_meta = demo_meta("198.51.100.20");
    let okta_call = DirectoryCall { directory: &okta, meta: &okta_meta, now };
    let mut user_ids = Vec::new();
    for (user_name, given, family, department) in [
        ("priya@acme.example", "Priya", "Natarajan", "Finance"),
        ("sam@acme.example", "Sam", "Rivera", "Engineering"),
        ("maria@acme.example", "Maria", "Gomez", "Sales"),
        ("omar@acme.example", "Omar", "Haddad", "Sales"),
    ] {
        let body = json!({
            "userName": user_name, "externalId": format!("00u{}", &user_name[..3]), "active": true,
            "name": { "givenName": given, "familyName": family }, "displayName": format!("{given} {family}"),
            "emails": [{ "value": user_name, "type": "work", "primary": true }],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": department },
        });
        let input = scim::users::input_from(&body).map_err(|e| DomainError::Internal(e.detail))?;
        let user = users::create_user(pool, &mandates, okta_call, input).await?;
        directory::record_event(
            pool,
            okta_call,
            FeedEntry {
                method: "POST",
                path: &format!("/scim/v2/{}/Users", okta.id()),
                event: "user.created",
                resource: Some(("User", user.id.to_string())),
                status: 201,
                detail: "",
            },
        )
        .await?;
        user_ids.push((user_name, user.id, user.person_id));
    }
    let id_of = |email: &str| {
        user_ids.iter().find(|(e, _, _)| *e == email).map(|(_, id, person)| (*id, *person)).unwrap_or_default()
    };
    let (priya_user, priya) = id_of("priya@acme.example");
    let (sam_user, sam) = id_of("sam@acme.example");
    let (maria_user, maria) = id_of("maria@acme.example");
    let (omar_user, omar) = id_of("omar@acme.example");
    let group_id = |name: &'static str, members: Vec<Uuid>| {
        let okta = okta.clone();
        let okta_meta = okta_meta.clone();
        let mandates = &mandates;
        async move {
            let input = groups::GroupInput { display_name: name.to_string(), external_id: None, members };
            let call = DirectoryCall { directory: &okta, meta: &okta_meta, now };
            let group = groups::create_group(pool, mandates, call, input).await?;
            directory::record_event(
                pool,
                call,
                FeedEntry {
                    method: "POST",
                    path: &format!("/scim/v2/{}/Groups", okta.id()),
                    event: "group.created",
                    resource: Some(("Group", group.id.to_string())),
                    status: 201,
                    detail: "",
                },
            )
            .await?;
            Ok::<Uuid, DomainError>(group.id)
        }
    };
    let finance = group_id("Finance", vec![priya_user]).await?;
    group_id("Engineering", vec![sam_user]).await?;
    group_id("Sales", vec![maria_user, omar_user]).await?;
    let catalog = scopes::catalog(pool, operator).await?.scopes;
    // Security review raised mail.send after it was created (only owners change a risk level).
    if let Some(mail) = catalog.iter().find(|s| s.name == "mail.send") {
        scopes::set_risk(pool, &mandates, Call::new(operator, &meta, now), mail.id, "medium").await?;
    }
    let finance_export = catalog.into_iter().find(|s| s.name == "finance.export").map(|s| s.id);
    if let Some(scope_id) = finance_export {
        scopes::set_ceiling(pool, &mandates, Call::new(operator, &meta, now), scope_id, &[finance]).await?;
    }

    // Decisions come from real admins of the demo (Sam is an admin, Priya an approver).
    let sam_admin = AdminSession::for_operator(pool, org_id, "sam@acme.example").await?;
    let priya_admin = AdminSession::for_operator(pool, org_id, "priya@acme.example").await?;
    let register = |name: &'static str,
                    description: &'static str,
                    owner: Uuid,
                    scopes: &'static [&'static str],
                    reason: &'static str| {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let meta = meta.clone();
        async move {
            let input =
                NewAgent { name, description, owner: Owner::Id(owner), scopes: &scopes, reason, approve: false };
            registry::register(pool, Call::new(operator, &meta, now), input).await
        }
    };
    let ledger = register(
        "Ledger Reconciler",
        "Matches invoices to payments at month end",
        priya,
        &["crm.read", "finance.export"],
        "Month-end close needs exports",
    )
    .await?;
    let inbox = register(
        "Inbox Assistant",
        "Drafts replies and schedules meetings for Maria",
        maria,
        &["calendar.write", "mail.send"],
        "Book follow-up meetings and send recaps",
    )
    .await?;
    let copilot = register(
        "Sales Copilot",
        "Keeps the pipeline up to date",
        maria,
        &["crm.read", "crm.write", "finance.export"],
        "Forecasts need revenue data",
    )
    .await?;
    let reviewer = register(
        "Code Reviewer",
        "Reviews pull requests and summarises risk",
        sam,
        &["github.read"],
        "Read pull requests",
    )
    .await?;
    let runner = register(
        "Test Runner",
        "Sub-agent that checks out code for the reviewer",
        sam,
        &["github.read"],
        "Clone the repository under review",
    )
    .await?;
    let travel =
        register("Travel Booker", "Books trips for Omar", omar, &["calendar.write"], "Block travel time").await?;

    let pending = approvals::list(pool, operator, "pending").await?;
    let request =
        |agent: Uuid, scope: &str| pending.iter().find(|r| r.agent_id == agent && r.scope == scope).map(|r| r.id);
    let approve = |admin: &AdminSession, agent: Uuid, scope: &'static str, until: Option<OffsetDateTime>| {
        let id = request(agent, scope);
        let admin = admin.clone();
        let meta = meta.clone();
        let mandates = &mandates;
        async move {
            if let Some(id) = id {
                let decision = Decision::Approve { until, note: String::new() };
                approvals::decide(pool, mandates, Call::new(Caller::Admin(&admin), &meta, now), id, decision).await?;
            }
            Ok::<(), DomainError>(())
        }
    };
    approve(&priya_admin, ledger.agent_id, "crm.read", None).await?;
    // High risk and owned by Priya: someone else (Sam) approves it.
    approve(&sam_admin, ledger.agent_id, "finance.export", Some(now + time::Duration::days(30))).await?;
    approve(&priya_admin, inbox.agent_id, "calendar.write", None).await?;
    approve(&priya_admin, copilot.agent_id, "crm.read", None).await?;
    approve(&sam_admin, reviewer.agent_id, "github.read", None).await?;
    approve(&priya_admin, runner.agent_id, "github.read", None).await?;
    // The reviewer may hand its tokens to its sub-agent (token exchange), and to no one else.
    delegation::designate(
        pool,
        &mandates,
        Call::new(Caller::Admin(&sam_admin), &meta, now),
        reviewer.agent_id,
        runner.agent_id,
        Designation::Grant,
    )
    .await?;
    approve(&priya_admin, travel.agent_id, "calendar.write", None).await?;
    if let Some(id) = request(copilot.agent_id, "finance.export") {
        let decision =
            Decision::Deny { reason: "Sales does not need ledger exports; use the revenue dashboard".into() };
        approvals::decide(pool, &mandates, Call::new(Caller::Admin(&priya_admin), &meta, now), id, decision).await?;
    }
    // Left pending for the newcomer to decide: Inbox Assistant's mail.send, Sales Copilot's crm.write.

    // Real tokens, a delegation, then a leaver.
    if let Some(master) = config.master_key {
        let tokens = demo_token_service(pool, config, master).await?;
        let agent_meta = demo_meta("10.0.1.5");
        for credentials in [&ledger, &inbox, &reviewer, &travel] {
            if let Some(state) = tokens.mandates.agent(pool, credentials.agent_id).await? {
                let issued = tokens.client_credentials(&state, None, &agent_meta, now).await.map_err(token_error)?;
                if credentials.agent_id == reviewer.agent_id {
                    if let Some(runner_state) = tokens.mandates.agent(pool, runner.agent_id).await? {
                        tokens
                            .exchange(&runner_state, &issued.access_token, None, &agent_meta, now)
                            .await
                            .map_err(token_error)?;
                    }
                }
            }
        }
    }
    // Omar leaves: the IdP deactivates him, and his agents stop with him.
    let (left, _) = users::modify_user(pool, &mandates, okta_call, omar_user, None, |current| {
        let mut body = current.resource.clone();
        body["active"] = json!(false);
        scim::users::input_from(&body).map_err(|e| DomainError::Internal(e.detail))
    })
    .await
    .map_err(|err| match err {
        ChangeError::Refused(err) | ChangeError::Domain(err) => err,
    })?;
    directory::record_event(
        pool,
        okta_call,
        FeedEntry {
            method: "PATCH",
            path: &format!("/scim/v2/{}/Users/{}", okta.id(), left.id),
            event: "user.deactivated",
            resource: Some(("User", left.id.to_string())),
            status: 200,
            detail: "",
        },
    )
    .await?;
    Ok(())
}

/// Agent actions reported by the demo's agents (one through a resource server's API key, one
/// by a delegated sub-agent, one that failed), a signed checkpoint over the trail, and a log
/// stream to the company's Splunk, which the demo cannot reach: its delivery errors show.
async fn seed_audit(pool: &PgPool, config: &Config, org_id: Uuid) -> Result<(), DomainError> {
    use super::domain::audit::actions::{self, ActionLog, Report};
    use super::domain::audit::checkpoints::{self, AuditKeys};
    use super::domain::audit::streams::{self, NewStream};
    use super::domain::crypto::master_key::MasterKey;
    let Some(master) = config.master_key else { return Ok(()) };
    let operator = Caller::Operator { org_id };
    if !streams::list(pool, operator).await?.is_empty() {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let tokens = demo_token_service(pool, config, master).await?;
    let log = ActionLog::start(pool.clone());
    let agent_meta = demo_meta("10.0.1.5");
    let active = AgentFilter { status: "active".into(), ..AgentFilter::default() };
    let agents = registry::list(pool, operator, &active, now).await?;
    let agent_id = |name: &str| agents.iter().find(|a| a.name == name).map(|a| a.id);
    let token_for = |name: &'static str| {
        let tokens = &tokens;
        let agent_meta = agent_meta.clone();
        let id = agent_id(name);
        async move {
            let Some(id) = id else { return Ok(None) };
            let Some(state) = tokens.mandates.agent(pool, id).await? else { return Ok(None) };
            let issued = tokens.client_credentials(&state, None, &agent_meta, now).await.map_err(token_error)?;
            Ok::<_, DomainError>(Some(issued.access_token))
        }
    };
    let report = |action: &str, target: (&str, &str, &str), outcome: &str, metadata: Value| Report {
        action: action.to_string(),
        target_type: Some(target.0.to_string()),
        target_id: Some(target.1.to_string()),
        target_label: Some(target.2.to_string()),
        outcome: Some(outcome.to_string()),
        metadata: Some(metadata),
        scopes: None,
    };
    let mut reported = Vec::new();
    if let Some(token) = token_for("Ledger Reconciler").await? {
        reported.push((
            token.clone(),
            report(
                "crm.invoice.read",
                ("invoice", "INV-2026-1187", "Invoice INV-2026-1187 (Globex)"),
                "success",
                json!({ "amount_eur": 12400 }),
            ),
        ));
        let mut export = report(
            "ledger.export",
            ("ledger", "2026-11", "November 2026 ledger"),
            "success",
            json!({ "rows": 1832, "format": "csv" }),
        );
        export.scopes = Some(vec!["finance.export".into()]);
        reported.push((token, export));
    }
    if let Some(token) = token_for("Inbox Assistant").await? {
        reported.push((
            token.clone(),
            report(
                "calendar.event.create",
                ("event", "evt-77", "Quarterly review with Globex"),
                "success",
                json!({ "attendees": 4 }),
            ),
        ));
        reported.push((
            token,
            report(
                "calendar.event.move",
                ("event", "evt-78", "1:1 with Dana"),
                "failure",
                json!({ "error": "conflicts with an all-day event" }),
            ),
        ));
    }
    if let Some(token) = token_for("Code Reviewer").await? {
        reported.push((
            token.clone(),
            report(
                "github.pull_request.review",
                ("pull_request", "acme/api#1423", "acme/api#1423 Rate-limit the export endpoint"),
                "success",
                json!({ "verdict": "changes requested", "risk": "medium" }),
            ),
        ));
        // The reviewer hands a narrower token to its sub-agent, which reports too.
        if let Some(runner) = agent_id("Test Runner") {
            if let Some(runner) = tokens.mandates.agent(pool, runner).await? {
                let delegated = tokens.exchange(&runner, &token, None, &agent_meta, now).await.map_err(token_error)?;
                reported.push((
                    delegated.access_token,
                    report(
                        "git.repository.clone",
                        ("repository", "acme/api", "acme/api"),
                        "success",
                        json!({ "commit": "9f3c2e1" }),
                    ),
                ));
            }
        }
    }
    let mut presented = None;
    for (token, action) in reported {
        if let Some(active) = tokens.introspect_bearer(&token, now).await? {
            actions::record_by_token(&log, &active, action, agent_meta.clone(), now).await?;
            presented.get_or_insert(token);
        }
    }
    // The CRM, a resource server, reports a read it served to the Ledger Reconciler, with the
    // token the agent presented to it.
    let key = api_keys::list(pool, operator)
        .await?
        .into_iter()
        .find(|key| key.revoked_at.is_none() && key.scopes.contains(&ApiKeyScope::AuditWrite));
    if let (Some(key), Some(token)) = (key, presented) {
        let principal = super::domain::ApiKeyPrincipal::for_operator(org_id, key.id, key.name, key.scopes);
        let action = report(
            "crm.account.read",
            ("account", "acc-0042", "Globex Corporation"),
            "success",
            json!({ "fields": ["billing_contact", "terms"] }),
        );
        actions::record_presented(&log, &tokens, &principal, &token, action, demo_meta("10.0.2.9"), now).await?;
    }
    let stream = NewStream {
        name: "Splunk (SOC)",
        kind: "splunk_hec",
        url: "https://splunk.acme.example:8088/services/collector/event",
        secret: "00000000-demo-hec-token-0000000000",
    };
    streams::create(
        pool,
        &MasterKey::new(master),
        Call::new(Caller::Operator { org_id }, &demo_meta("10.0.0.10"), now),
        stream,
    )
    .await?;
    let keys = AuditKeys::load(pool, &MasterKey::new(master), config.audit_high_water_file().as_deref()).await?;
    checkpoints::checkpoint_org(pool, &keys, org_id, now).await?;
    keys.save_high_water()?;
    Ok(())
}

async fn demo_token_service(
    pool: &PgPool,
    config: &Config,
    master: [u8; 32],
) -> Result<super::domain::agents::tokens::TokenService, DomainError> {
    use super::domain::{agents::signing::SigningKeys, agents::token_log::TokenLog, crypto::master_key::MasterKey};
    let keys = std::sync::Arc::new(SigningKeys::load(pool, MasterKey::new(master)).await?);
    Ok(super::domain::agents::tokens::TokenService {
        pool: pool.clone(),
        mandates: std::sync::Arc::new(Mandates::default()),
        keys,
        log: TokenLog::start(pool.clone()),
        issuer: config.public_url.clone(),
    })
}

fn token_error(err: super::domain::agents::tokens::TokenError) -> DomainError {
    DomainError::Internal(format!("demo token: {err:?}"))
}
