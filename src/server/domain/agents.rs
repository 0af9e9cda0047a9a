//! Agents: registration (with the scopes they request), credentials, listing, and revocation —
//! of one agent or of every agent of a person — effective before the call returns.

use super::actor::{Caller, RequestMeta};
use super::audit::{self, NewEvent};
use super::mandate::{Change, Changes, Mandates};
use super::{approvals, people, scopes, secrets, validate, DomainError};
use crate::model::agents::{
    AgentCredentials, AgentDetail, AgentFilter, AgentRow, AgentScope, PersonRef, RevocationImpact,
};
use crate::model::Permission;
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

pub async fn register(
    pool: &PgPool,
    caller: Caller<'_>,
    agent: NewAgent<'_>,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<AgentCredentials, DomainError> {
    caller.require(Permission::ManageAgents)?;
    if agent.approve && !matches!(caller, Caller::Operator { .. }) {
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
    let org_id = caller.org_id();
    let mut tx = pool.begin().await?;
    let owner_id = match agent.owner {
        Owner::Id(id) => id,
        Owner::Email(email) => people::find_or_create(&mut tx, org_id, email, None, now).await?,
    };
    let owner = people::get(&mut *tx, org_id, owner_id).await?;
    if !owner.active {
        return Err(DomainError::invalid(format!("{} is deactivated and cannot own agents", owner.email)));
    }
    let agent_id = Uuid::new_v4();
    let client_id = new_client_id();
    let client_secret = secrets::generate(SECRET_PREFIX);
    // language=PostgreSQL
    sqlx::query!(
        "insert into agents (org_id, id, name, description, owner_id, client_id, secret_hash, secret_rotated_at, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)",
        org_id,
        agent_id,
        name,
        description,
        owner_id,
        client_id,
        secrets::digest(&client_secret),
        now,
        caller.actor().label()
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "agent.registered").target("agent", agent_id, &name).details(json!({
            "owner_id": owner_id, "owner": owner.email, "client_id": client_id, "requested_scopes": agent.scopes,
        })),
        meta,
        now,
    )
    .await?;
    let mut requested = agent.scopes.to_vec();
    requested.sort();
    requested.dedup();
    for scope in &requested {
        let scope_id = scopes::resolve(&mut tx, org_id, scope, agent.approve, now).await?;
        let request_id =
            approvals::insert_request(&mut tx, caller, agent_id, &name, scope_id, scope, reason, meta, now).await?;
        if agent.approve {
            approvals::approve_in(&mut tx, caller, request_id, None, meta, now).await?;
        }
    }
    tx.commit().await?;
    Ok(AgentCredentials { agent_id, client_id, client_secret })
}

/// Replaces an agent's secret; the old one stops working at once.
pub async fn rotate_secret(
    pool: &PgPool,
    mandates: &Mandates,
    caller: Caller<'_>,
    agent_id: Uuid,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<AgentCredentials, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let secret = secrets::generate(SECRET_PREFIX);
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let agent = sqlx::query!(
        "update agents set secret_hash = $3, secret_rotated_at = $4 where org_id = $1 and id = $2 and status = 'active'
         returning name, client_id",
        org_id,
        agent_id,
        secrets::digest(&secret),
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound)?;
    let mut changes = Changes::default();
    changes.add(&mut tx, Change::Agent { org_id, agent_id }).await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "agent.secret_rotated").target("agent", agent_id, &agent.name),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    changes.apply_to(mandates);
    Ok(AgentCredentials { agent_id, client_id: agent.client_id, client_secret: secret })
}

/// Live tokens that carry an agent (as the mandate's agent or as a delegate).
async fn live_tokens_of(
    executor: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    agent_id: Uuid,
    now: OffsetDateTime,
) -> Result<i64, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_scalar!(
        "select count(*) as \"n!\" from access_tokens
         where org_id = $1 and (agent_id = $2 or $2 = any(delegates)) and expires_at > $3 and revoked_at is null",
        org_id,
        agent_id,
        now
    )
    .fetch_one(executor)
    .await?)
}

/// Revokes an agent: its credentials stop working and every token it carries is inactive
/// before this returns. Returns the number of live tokens that ended (0 if already revoked).
pub async fn revoke(
    pool: &PgPool,
    mandates: &Mandates,
    caller: Caller<'_>,
    agent_id: Uuid,
    reason: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<i64, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(DomainError::invalid("The reason must be at most 500 characters"));
    }
    let mut tx = pool.begin().await?;
    // language=PostgreSQL
    let agent =
        sqlx::query!("select name, status from agents where org_id = $1 and id = $2 for update", org_id, agent_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(DomainError::NotFound)?;
    if agent.status == "revoked" {
        return Ok(0);
    }
    let revoked_tokens = live_tokens_of(&mut *tx, org_id, agent_id, now).await?;
    end_agent(&mut tx, org_id, agent_id, reason, now).await?;
    let mut changes = Changes::default();
    changes.add(&mut tx, Change::Agent { org_id, agent_id }).await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "agent.revoked")
            .target("agent", agent_id, &agent.name)
            .details(json!({ "revoked_tokens": revoked_tokens, "reason": reason })),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    changes.apply_to(mandates);
    Ok(revoked_tokens)
}

async fn end_agent(
    conn: &mut sqlx::PgConnection,
    org_id: Uuid,
    agent_id: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!(
        "update agents set status = 'revoked', revoked_at = $3, revoked_reason = nullif($4, '') where org_id = $1 and id = $2",
        org_id,
        agent_id,
        now,
        reason
    )
    .execute(&mut *conn)
    .await?;
    // language=PostgreSQL
    sqlx::query!(
        "update scope_requests set status = 'cancelled', decided_at = $3, decision_note = 'agent revoked'
         where org_id = $1 and agent_id = $2 and status = 'pending'",
        org_id,
        agent_id,
        now
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Revokes every active agent of a person, in one transaction and one audit event.
pub async fn revoke_all_of_person(
    pool: &PgPool,
    mandates: &Mandates,
    caller: Caller<'_>,
    person_id: Uuid,
    reason: &str,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<RevocationImpact, DomainError> {
    caller.require(Permission::ManageAgents)?;
    let org_id = caller.org_id();
    let mut tx = pool.begin().await?;
    let person = people::get(&mut *tx, org_id, person_id).await?;
    let mut changes = Changes::default();
    let ended = end_agents_of_person(&mut tx, &mut changes, org_id, person_id, reason.trim(), now).await?;
    audit::record(
        &mut tx,
        NewEvent::new(org_id, caller.actor(), "person.agents_revoked")
            .target("person", person_id, &person.email)
            .details(
                json!({ "agents": ended.agents_json(), "revoked_tokens": ended.live_tokens, "reason": reason.trim() }),
            ),
        meta,
        now,
    )
    .await?;
    tx.commit().await?;
    changes.apply_to(mandates);
    Ok(RevocationImpact {
        agents: ended.agents.into_iter().map(|(_, name)| name).collect(),
        live_tokens: ended.live_tokens,
        scopes: Vec::new(),
    })
}

/// What revoking a person's agents ended.
pub struct EndedAgents {
    pub agents: Vec<(Uuid, String)>,
    pub live_tokens: i64,
}

impl EndedAgents {
    pub fn agents_json(&self) -> serde_json::Value {
        json!(self.agents.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect::<Vec<_>>())
    }
}

/// Revokes every active agent of a person inside the caller's transaction (announcing each).
pub(super) async fn end_agents_of_person(
    conn: &mut sqlx::PgConnection,
    changes: &mut Changes,
    org_id: Uuid,
    person_id: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> Result<EndedAgents, DomainError> {
    // language=PostgreSQL
    let agents = sqlx::query!(
        "select id, name from agents where org_id = $1 and owner_id = $2 and status = 'active' order by name for update",
        org_id,
        person_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut live_tokens = 0;
    for agent in &agents {
        live_tokens += live_tokens_of(&mut *conn, org_id, agent.id, now).await?;
        end_agent(conn, org_id, agent.id, reason, now).await?;
        changes.add(conn, Change::Agent { org_id, agent_id: agent.id }).await?;
    }
    Ok(EndedAgents { agents: agents.into_iter().map(|a| (a.id, a.name)).collect(), live_tokens })
}

/// What revoking an agent would end.
pub async fn impact(
    pool: &PgPool,
    caller: Caller<'_>,
    agent_id: Uuid,
    now: OffsetDateTime,
) -> Result<RevocationImpact, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    // language=PostgreSQL
    let agent = sqlx::query!(
        r#"select a.name, coalesce((select array_agg(s.name order by s.name) from scope_requests r
                   join scopes s on s.org_id = r.org_id and s.id = r.scope_id
                   where r.org_id = a.org_id and r.agent_id = a.id and r.status = 'approved'), '{}') as "scopes!"
           from agents a where a.org_id = $1 and a.id = $2 and a.status = 'active'"#,
        org_id,
        agent_id
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok(RevocationImpact {
        agents: vec![agent.name],
        live_tokens: live_tokens_of(pool, org_id, agent_id, now).await?,
        scopes: agent.scopes,
    })
}

/// What revoking all of a person's agents would end.
pub async fn person_impact(
    pool: &PgPool,
    caller: Caller<'_>,
    person_id: Uuid,
    now: OffsetDateTime,
) -> Result<RevocationImpact, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    people::get(pool, org_id, person_id).await?;
    // language=PostgreSQL
    let row = sqlx::query!(
        r#"select coalesce(array_agg(a.name order by a.name), '{}') as "agents!",
                  (select count(*) from access_tokens t join agents b on b.org_id = t.org_id and b.id = t.agent_id
                   where t.org_id = $1 and b.owner_id = $2 and b.status = 'active' and t.expires_at > $3 and t.revoked_at is null) as "live!"
           from agents a where a.org_id = $1 and a.owner_id = $2 and a.status = 'active'"#,
        org_id,
        person_id,
        now
    )
    .fetch_one(pool)
    .await?;
    Ok(RevocationImpact { agents: row.agents, live_tokens: row.live, scopes: Vec::new() })
}

/// Agents of the organization, newest first, filtered.
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
    load_rows(pool, caller.org_id(), None, search, owner, status, text(&filter.scope), now).await
}

/// One agent with its history.
pub async fn detail(
    pool: &PgPool,
    caller: Caller<'_>,
    agent_id: Uuid,
    now: OffsetDateTime,
) -> Result<AgentDetail, DomainError> {
    caller.require(Permission::ViewPortal)?;
    let org_id = caller.org_id();
    let agent = load_rows(pool, org_id, Some(agent_id), None, None, None, None, now)
        .await?
        .into_iter()
        .next()
        .ok_or(DomainError::NotFound)?;
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
        events,
    })
}

#[allow(clippy::too_many_arguments)]
async fn load_rows(
    pool: &PgPool,
    org_id: Uuid,
    agent_id: Option<Uuid>,
    search: Option<String>,
    owner: Option<Uuid>,
    status: Option<String>,
    scope: Option<String>,
    now: OffsetDateTime,
) -> Result<Vec<AgentRow>, DomainError> {
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
