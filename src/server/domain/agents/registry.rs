//! The agent registry: registration (with the scopes they request), credentials, listing and
//! detail. Ending an agent's authority lives in `revocation`.

use crate::model::agents::{AgentCredentials, AgentDetail, AgentFilter, AgentRow, AgentScope, PersonRef};
use crate::model::Permission;
use crate::server::domain::actor::Caller;
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::{
    agents::approvals, agents::scopes, audit, crypto::secrets, directory::people, validate, Call, DomainError,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of agent client secrets.
pub const SECRET_PREFIX: &str = "mnd_sec_";
/// Most scopes one registration may request.
pub const MAX_REQUESTED_SCOPES: usize = 50;

/// Who owns a new agent.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    Id(Uuid),
    /// Unknown addresses become people of the organization.
    Email(&'a str),
}

pub struct NewAgent<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub owner: Owner<'a>,
    pub scopes: &'a [String],
    pub reason: &'a str,
    /// Approve the requested scopes at once (the operator's `--approve`; missing catalog scopes
    /// are created as low risk).
    pub approve: bool,
}

fn new_client_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("agt_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Permission: agents.
pub async fn register(pool: &PgPool, call: Call<'_>, agent: NewAgent<'_>) -> Result<AgentCredentials, DomainError> {
    call.require(Permission::ManageAgents)?;
    if agent.approve && !matches!(call.caller, Caller::Operator { .. }) {
        return Err(DomainError::NotAllowed(
            "Only the platform operator can register an agent with its scopes pre-approved.".into(),
        ));
    }
    let name = validate::label("Agent name", agent.name, 100)?;
    let description = agent.description.trim();
    let reason = agent.reason.trim();
    if description.chars().count() > 1000 || reason.chars().count() > 1000 {
        return Err(DomainError::invalid("Description and reason must be at most 1000 characters each"));
    }
    if agent.scopes.len() > MAX_REQUESTED_SCOPES {
        return Err(DomainError::invalid(format!(
            "An agent can request at most {MAX_REQUESTED_SCOPES} scopes at once"
        )));
    }
    let org_id = call.org_id();
    let mut work = call.begin(pool).await?;
    let owner_id = match agent.owner {
        Owner::Id(id) => id,
        Owner::Email(email) => people::find_or_create(work.conn(), org_id, email, None, call.now).await?,
    };
    let owner = people::get(work.conn(), org_id, owner_id).await?;
    if !owner.active {
        return Err(DomainError::invalid(format!("{} is deactivated and cannot own agents", owner.email)));
    }
    let agent_id = Uuid::new_v4();
    let client_id = new_client_id();
    let client_secret = secrets::generate(SECRET_PREFIX);
    // language=PostgreSQL
    sqlx::query!(
        "insert into agents (org_id, id, name, description, owner_id, client_id, secret_hash, secret_rotated_at, created_by,
                             created_at, registered_by_admin_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10)",
        org_id,
        agent_id,
        name,
        description,
        owner_id,
        client_id,
        secrets::digest(&client_secret),
        call.now,
        call.caller.actor().label(),
        call.caller.admin_id()
    )
    .execute(work.conn())
    .await?;
    work.record(work.event("agent.registered").target("agent", agent_id, &name).details(json!({
        "owner_id": owner_id, "owner": owner.email, "client_id": client_id, "requested_scopes": agent.scopes,
    })))
    .await?;
    let mut requested = agent.scopes.to_vec();
    requested.sort();
    requested.dedup();
    for scope in &requested {
        let scope_id = scopes::resolve(work.conn(), org_id, scope, agent.approve, call.now).await?;
        let request_id = approvals::insert_request(&mut work, agent_id, &name, scope_id, scope, reason).await?;
        if agent.approve {
            approvals::approve_in(&mut work, call.caller, request_id, None).await?;
        }
    }
    work.commit().await?;
    Ok(AgentCredentials { agent_id, client_id, client_secret })
}

/// Replaces an agent's secret; the old one stops working at once.
/// Permission: agents.
pub async fn rotate_secret(
    pool: &PgPool,
    cache: &Mandates,
    call: Call<'_>,
    agent_id: Uuid,
) -> Result<AgentCredentials, DomainError> {
    call.require(Permission::ManageAgents)?;
    let org_id = call.org_id();
    let secret = secrets::generate(SECRET_PREFIX);
    let mut work = call.begin(pool).await?;
    // language=PostgreSQL
    let agent = sqlx::query!(
        "update agents set secret_hash = $3, secret_rotated_at = $4 where org_id = $1 and id = $2 and status = 'active'
         returning name, client_id",
        org_id,
        agent_id,
        secrets::digest(&secret),
        call.now
    )
    .fetch_optional(work.conn())
    .await?
    .ok_or(DomainError::NotFound)?;
    work.announce(cache, Change::Agent { org_id, agent_id }).await?;
    work.record(work.event("agent.secret_rotated").target("agent", agent_id, &agent.name)).await?;
    work.commit().await?;
    Ok(AgentCredentials { agent_id, client_id: agent.client_id, client_secret: secret })
}

/// Agents of the organization, newest first, filtered.
/// Permission: view portal.
pub async fn list(
    pool: &PgPool,
    caller: Caller<'_>,
    filter: &AgentFilter,
    now: OffsetDateTime,
) -> Result<Vec<AgentRow>, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let search =
        text(&filter.search).map(|s| format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    let owner = match text(&filter.owner) {
        Some(owner) => {
            Some(owner.parse::<Uuid>().map_err(|_| DomainError::invalid("The owner filter must be a person id"))?)
        }
        None => None,
    };
    let status = text(&filter.status);
    if status.as_deref().is_some_and(|s| s != "active" && s != "revoked") {
        return Err(DomainError::invalid("The status filter must be active or revoked"));
    }
    let rows = RowFilter { agent_id: None, search, owner, status, scope: text(&filter.scope) };
    load_rows(pool, caller.org_id(), rows, now).await
}

/// One agent with its history.
/// Permission: view portal.
pub async fn detail(
    pool: &PgPool,
    caller: Caller<'_>,
    agent_id: Uuid,
    now: OffsetDateTime,
) -> Result<AgentDetail, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    let one = RowFilter { agent_id: Some(agent_id), ..RowFilter::default() };
    let agent = load_rows(pool, org_id, one, now).await?.into_iter().next().ok_or(DomainError::NotFound)?;
    // language=PostgreSQL
    let extra = sqlx::query!(
        "select created_by, revoked_at, revoked_reason from agents where org_id = $1 and id = $2",
        org_id,
        agent_id
    )
    .fetch_one(pool)
    .await?;
    let events = audit::about(pool, org_id, &agent_id.to_string(), 50).await?;
    Ok(AgentDetail {
        agent,
        created_by: extra.created_by,
        revoked_at: extra.revoked_at,
        revoked_reason: extra.revoked_reason,
        delegates: super::delegation::delegates(pool, org_id, agent_id).await?,
        events,
    })
}

/// Which agents `load_rows` reads (every field narrows; none reads them all).
#[derive(Default)]
struct RowFilter {
    agent_id: Option<Uuid>,
    /// A `LIKE` pattern, already escaped.
    search: Option<String>,
    owner: Option<Uuid>,
    status: Option<String>,
    scope: Option<String>,
}

async fn load_rows(
    pool: &PgPool,
    org_id: Uuid,
    filter: RowFilter,
    now: OffsetDateTime,
) -> Result<Vec<AgentRow>, DomainError> {
    let RowFilter { agent_id, search, owner, status, scope } = filter;
    // language=PostgreSQL
    let rows = sqlx::query!(
        r#"select a.id, a.name, a.description, a.client_id, a.status, a.last_active_at, a.created_at,
                  p.id as owner_id, p.email as owner_email, p.display_name as owner_name, p.active as owner_active,
                  (select count(*) from access_tokens t where t.org_id = a.org_id and (t.agent_id = a.id or a.id = any(t.delegates))
                      and t.expires_at > $8 and t.revoked_at is null) as "live_tokens!",
                  coalesce((select json_agg(json_build_object(
                        'request_id', r.id, 'scope', s.name, 'risk', s.risk, 'status', r.status, 'expires_at', r.expires_at,
                        'decided_by', r.decided_by_label, 'decided_at', r.decided_at, 'reason', r.reason, 'decision_note', r.decision_note,
                        'allowed', (not exists (select 1 from scope_ceilings c where c.org_id = s.org_id and c.scope_id = s.id)
                                    or exists (select 1 from scope_ceilings c join group_members m on m.org_id = c.org_id and m.group_id = c.group_id
                                               where c.org_id = s.org_id and c.scope_id = s.id and m.person_id = a.owner_id)))
                        order by s.name, r.requested_at desc)
                     from scope_requests r join scopes s on s.org_id = r.org_id and s.id = r.scope_id
                     where r.org_id = a.org_id and r.agent_id = a.id), '[]') as "scopes!: serde_json::Value"
           from agents a join people p on p.org_id = a.org_id and p.id = a.owner_id
           where a.org_id = $1
             and ($2::uuid is null or a.id = $2)
             and ($3::text is null or a.name ilike $3 or a.description ilike $3 or a.client_id ilike $3 or p.email ilike $3)
             and ($4::uuid is null or a.owner_id = $4)
             and ($5::text is null or a.status = $5)
             and ($6::text is null or exists (select 1 from scope_requests r join scopes s on s.org_id = r.org_id and s.id = r.scope_id
                                              where r.org_id = a.org_id and r.agent_id = a.id and s.name = $6
                                                and r.status in ('approved', 'pending')))
           order by a.created_at desc
           limit $7"#,
        org_id,
        agent_id,
        search,
        owner,
        status,
        scope,
        500_i64,
        now
    )
    .fetch_all(pool)
    .await?;
    #[derive(serde::Deserialize)]
    struct RawScope {
        request_id: Uuid,
        scope: String,
        risk: String,
        status: String,
        #[serde(with = "time::serde::rfc3339::option")]
        expires_at: Option<OffsetDateTime>,
        decided_by: Option<String>,
        #[serde(with = "time::serde::rfc3339::option")]
        decided_at: Option<OffsetDateTime>,
        reason: String,
        decision_note: Option<String>,
        allowed: bool,
    }
    rows.into_iter()
        .map(|row| {
            let raw: Vec<RawScope> = serde_json::from_value(row.scopes)
                .map_err(|err| DomainError::Internal(format!("agent scopes: {err}")))?;
            let active = row.status == "active" && row.owner_active;
            let scopes = raw
                .into_iter()
                .map(|s| {
                    let expired = s.status == "approved" && s.expires_at.is_some_and(|at| at <= now);
                    let status = if expired { "expired".to_string() } else { s.status };
                    let approved = status == "approved";
                    AgentScope {
                        request_id: s.request_id,
                        scope: s.scope,
                        risk: s.risk,
                        in_mandate: approved && s.allowed && active,
                        blocked_by_ceiling: approved && !s.allowed,
                        status,
                        expires_at: s.expires_at,
                        decided_by: s.decided_by,
                        decided_at: s.decided_at,
                        reason: s.reason,
                        decision_note: s.decision_note,
                    }
                })
                .collect();
            Ok(AgentRow {
                id: row.id,
                name: row.name,
                description: row.description,
                client_id: row.client_id,
                owner: PersonRef {
                    id: row.owner_id,
                    email: row.owner_email,
                    display_name: row.owner_name,
                    active: row.owner_active,
                },
                status: row.status,
                scopes,
                live_tokens: if active { row.live_tokens } else { 0 },
                last_active_at: row.last_active_at,
                created_at: row.created_at,
            })
        })
        .collect()
}
