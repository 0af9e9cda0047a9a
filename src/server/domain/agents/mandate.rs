//! Mandates: the live authority of each agent — its approved, unexpired scopes that its owner's
//! groups allow — served from an in-process cache so that token requests and introspection are
//! memory lookups.
//!
//! The cache is kept exact. Every change that can shorten a mandate (revocation, deactivation,
//! withdrawn approval, group or ceiling change, revoked token) is announced on the change bus
//! inside its transaction; after the commit the changing node applies it to its own cache
//! before returning (the unit of work does this), and every other node applies it when the bus
//! delivers it (milliseconds). Entries are dropped rather than patched and reloaded on next use; a
//! generation counter stops a load that raced with a change from caching stale state. If the
//! listening connection drops, notifications may have been missed, so the whole cache is reset.

use crate::server::domain::agents::change_bus::{self, Change, Subscriber};
use crate::server::domain::agents::signing::SigningKeys;
use crate::server::domain::DomainError;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use time::OffsetDateTime;
use uuid::Uuid;

/// One approved scope in a mandate.
#[derive(Clone, Debug)]
pub struct Grant {
    pub scope: String,
    pub description: String,
    pub risk: String,
    pub approval_id: Uuid,
    pub approved_at: Option<OffsetDateTime>,
    pub approved_by: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub max_lifetime_seconds: i64,
    /// False when a group ceiling excludes the owner: approved, but not in the mandate.
    pub allowed_by_groups: bool,
}

/// An agent as the token endpoint and introspection need it; also the proof that an agent is
/// calling (`TokenService::authenticate_agent` hands it out once the client secret matched).
/// Its fields are readable everywhere, but only this module builds one (`load_agent`).
// A private field rather than `#[non_exhaustive]`, which would still let the rest of the crate
// (every protocol edge) build one.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Clone, Debug)]
pub struct AgentState {
    pub org_id: Uuid,
    pub org_name: String,
    pub agent_id: Uuid,
    pub name: String,
    pub client_id: String,
    pub owner_id: Uuid,
    pub owner_email: String,
    pub owner_name: String,
    pub secret_hash: Vec<u8>,
    pub active: bool,
    pub owner_active: bool,
    pub grants: Vec<Grant>,
    /// Agents an admin designated to receive this agent's tokens by token exchange.
    pub delegates: Vec<Uuid>,
    /// Private: no struct literal outside this module can forge an agent.
    #[allow(dead_code)]
    sealed: (),
}

impl AgentState {
    /// Agent not revoked and its owner active.
    pub fn usable(&self) -> bool {
        self.active && self.owner_active
    }

    /// The grant behind `scope` if it is in the mandate at `now`.
    pub fn grant(&self, scope: &str, now: OffsetDateTime) -> Option<&Grant> {
        self.grants.iter().find(|g| g.scope == scope && g.allowed_by_groups && g.expires_at.is_none_or(|at| at > now))
    }

    /// Every scope in the mandate at `now` (empty when the agent is not usable).
    pub fn mandate(&self, now: OffsetDateTime) -> Vec<&Grant> {
        if !self.usable() {
            return Vec::new();
        }
        self.grants.iter().filter(|g| g.allowed_by_groups && g.expires_at.is_none_or(|at| at > now)).collect()
    }
}

/// The cache.
#[derive(Default)]
pub struct Mandates {
    agents: RwLock<HashMap<Uuid, Arc<AgentState>>>,
    client_ids: RwLock<HashMap<String, Uuid>>,
    /// Revoked tokens that have not expired yet: jti → expiry.
    revoked: RwLock<HashMap<Uuid, OffsetDateTime>>,
    generation: AtomicU64,
    /// Set from the moment the change bus loses its subscription until it has subscribed again
    /// and reloaded: meanwhile nothing is answered from memory.
    out_of_sync: AtomicBool,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Mandates {
    /// The agent's current state (from the cache, or loaded once).
    pub async fn agent(&self, pool: &PgPool, agent_id: Uuid) -> Result<Option<Arc<AgentState>>, DomainError> {
        if !self.in_sync() {
            // The change bus lost its subscription: what is cached may be stale.
            return Ok(load_agent(pool, agent_id).await?.map(Arc::new));
        }
        if let Some(state) = read(&self.agents).get(&agent_id) {
            return Ok(Some(state.clone()));
        }
        for _ in 0..3 {
            let generation = self.generation.load(Ordering::SeqCst);
            let Some(state) = load_agent(pool, agent_id).await? else { return Ok(None) };
            let state = Arc::new(state);
            let mut agents = write(&self.agents);
            if self.generation.load(Ordering::SeqCst) == generation {
                agents.insert(agent_id, state.clone());
                write(&self.client_ids).insert(state.client_id.clone(), agent_id);
                return Ok(Some(state));
            }
            // A change arrived while loading: load again so we never cache what it replaced.
        }
        Ok(load_agent(pool, agent_id).await?.map(Arc::new))
    }

    /// The agent behind a client id.
    pub async fn agent_by_client_id(
        &self,
        pool: &PgPool,
        client_id: &str,
    ) -> Result<Option<Arc<AgentState>>, DomainError> {
        let known = read(&self.client_ids).get(client_id).copied();
        let agent_id = match known {
            Some(id) => id,
            None => {
                if client_id.len() > 100 {
                    return Ok(None);
                }
                // language=PostgreSQL
                match sqlx::query_scalar!("select id from agents where client_id = $1", client_id)
                    .fetch_optional(pool)
                    .await?
                {
                    Some(id) => id,
                    None => return Ok(None),
                }
            }
        };
        self.agent(pool, agent_id).await
    }

    /// The change bus lost its subscription: changes may be missed from now until it has
    /// subscribed again and reloaded, so nothing is answered from memory meanwhile.
    pub fn lose_subscription(&self) {
        self.out_of_sync.store(true, Ordering::SeqCst);
    }

    /// Whether this node's caches can be trusted (the change bus is subscribed and reloaded).
    pub fn in_sync(&self) -> bool {
        !self.out_of_sync.load(Ordering::SeqCst)
    }

    /// Whether the token was revoked: from memory while in sync, else from the database.
    pub async fn is_revoked(&self, pool: &PgPool, jti: Uuid) -> Result<bool, DomainError> {
        if self.in_sync() {
            return Ok(read(&self.revoked).contains_key(&jti));
        }
        // language=PostgreSQL
        let revoked = sqlx::query_scalar!(
            r#"select exists(select 1 from access_tokens where jti = $1 and revoked_at is not null) as "revoked!""#,
            jti
        )
        .fetch_one(pool)
        .await?;
        Ok(revoked || read(&self.revoked).contains_key(&jti))
    }

    /// Marks tokens revoked (on the node that revoked them, before it answers).
    pub fn mark_revoked(&self, tokens: &[(Uuid, OffsetDateTime)]) {
        let now = OffsetDateTime::now_utc();
        let mut revoked = write(&self.revoked);
        revoked.retain(|_, expires| *expires > now);
        for (jti, expires) in tokens {
            revoked.insert(*jti, *expires);
        }
    }

    /// Applies a change to this node's cache. Token and key changes need the database and are
    /// handled by `apply_remote`; the node that made them updates its cache directly.
    pub fn apply(&self, change: &Change) {
        let mut agents = write(&self.agents);
        match change {
            Change::Agent { agent_id, .. } => {
                agents.remove(agent_id);
            }
            Change::Person { person_id, .. } => agents.retain(|_, a| a.owner_id != *person_id),
            Change::Organization { org_id } => agents.retain(|_, a| a.org_id != *org_id),
            Change::Tokens { .. } | Change::Keys | Change::Heartbeat => {}
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Applies a change announced by any node (including this one).
    async fn apply_remote(&self, pool: &PgPool, keys: &SigningKeys, change: &Change) -> Result<(), DomainError> {
        match change {
            Change::Tokens { org_id } => self.reload_revoked(pool, Some(*org_id)).await,
            Change::Keys => keys.reload(pool).await,
            other => {
                self.apply(other);
                Ok(())
            }
        }
    }

    /// Forgets everything (after a missed-notification risk) and reloads revoked tokens.
    async fn reset(&self, pool: &PgPool, keys: &SigningKeys) -> Result<(), DomainError> {
        {
            let mut agents = write(&self.agents);
            agents.clear();
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.reload_revoked(pool, None).await?;
        keys.reload(pool).await
    }

    /// `reset`, retried until it succeeds: a half-done reset could miss revoked tokens.
    /// Retries until the reset succeeds, or until the pool is closed (shutdown: nothing left to
    /// keep exact, and retrying would hold the listener's connection open).
    async fn reset_until_done(&self, pool: &PgPool, keys: &SigningKeys) {
        while let Err(err) = self.reset(pool, keys).await {
            if pool.is_closed() {
                return;
            }
            tracing::error!(error = %err, "cache reset failed; retrying");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    async fn reload_revoked(&self, pool: &PgPool, org_id: Option<Uuid>) -> Result<(), DomainError> {
        let now = OffsetDateTime::now_utc();
        // language=PostgreSQL
        let rows = sqlx::query!(
            "select jti, expires_at from access_tokens
             where revoked_at is not null and expires_at > $1 and ($2::uuid is null or org_id = $2)",
            now,
            org_id
        )
        .fetch_all(pool)
        .await?;
        let tokens: Vec<(Uuid, OffsetDateTime)> = rows.into_iter().map(|r| (r.jti, r.expires_at)).collect();
        self.mark_revoked(&tokens);
        Ok(())
    }

    /// Connects the change bus, loads the revoked-token set, and keeps both current in the
    /// background. Returns once the node is ready to answer exactly.
    pub async fn start(self: &Arc<Self>, pool: PgPool, keys: Arc<SigningKeys>) -> Result<(), DomainError> {
        let listener = change_bus::connect(&pool).await?;
        self.reload_revoked(&pool, None).await?;
        let caches = NodeCaches { mandates: self.clone(), keys, pool: pool.clone() };
        change_bus::spawn_listener(pool, listener, caches);
        Ok(())
    }
}

/// This node's caches, as the change bus sees them.
struct NodeCaches {
    mandates: Arc<Mandates>,
    keys: Arc<SigningKeys>,
    pool: PgPool,
}

impl Subscriber for NodeCaches {
    async fn apply(&self, change: &Change) -> Result<(), DomainError> {
        self.mandates.apply_remote(&self.pool, &self.keys, change).await
    }

    fn out_of_sync(&self) {
        self.mandates.lose_subscription();
    }

    async fn reset(&self) {
        self.mandates.reset_until_done(&self.pool, &self.keys).await;
        self.mandates.out_of_sync.store(false, Ordering::SeqCst);
    }
}

/// Reads one agent's state: the agent, its owner, and its approved grants with ceilings applied.
pub async fn load_agent(pool: &PgPool, agent_id: Uuid) -> Result<Option<AgentState>, DomainError> {
    // language=PostgreSQL
    let Some(row) = sqlx::query!(
        "select a.org_id, o.name as org_name, a.name, a.client_id, a.owner_id, a.secret_hash, a.status,
                p.email as owner_email, p.display_name as owner_name, p.active as owner_active
         from agents a
         join people p on p.org_id = a.org_id and p.id = a.owner_id
         join organizations o on o.id = a.org_id
         where a.id = $1",
        agent_id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    // language=PostgreSQL
    let grants = sqlx::query!(
        r#"select s.name, s.description, s.risk, s.max_token_lifetime_seconds, r.id as approval_id, r.decided_at,
                  r.decided_by_label, r.expires_at,
                  (not exists (select 1 from scope_ceilings c where c.org_id = s.org_id and c.scope_id = s.id)
                   or exists (select 1 from scope_ceilings c
                              join group_members m on m.org_id = c.org_id and m.group_id = c.group_id
                              where c.org_id = s.org_id and c.scope_id = s.id and m.person_id = $3)) as "allowed!"
           from scope_requests r
           join scopes s on s.org_id = r.org_id and s.id = r.scope_id
           where r.org_id = $1 and r.agent_id = $2 and r.status = 'approved'
           order by s.name"#,
        row.org_id,
        agent_id,
        row.owner_id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|g| Grant {
        scope: g.name,
        description: g.description,
        risk: g.risk,
        approval_id: g.approval_id,
        approved_at: g.decided_at,
        approved_by: g.decided_by_label,
        expires_at: g.expires_at,
        max_lifetime_seconds: i64::from(g.max_token_lifetime_seconds),
        allowed_by_groups: g.allowed,
    })
    .collect();
    // language=PostgreSQL
    let delegates = sqlx::query_scalar!(
        "select delegate_id from agent_delegates where org_id = $1 and agent_id = $2 order by created_at, delegate_id",
        row.org_id,
        agent_id
    )
    .fetch_all(pool)
    .await?;
    Ok(Some(AgentState {
        org_id: row.org_id,
        org_name: row.org_name,
        agent_id,
        name: row.name,
        client_id: row.client_id,
        owner_id: row.owner_id,
        owner_email: row.owner_email,
        owner_name: row.owner_name,
        secret_hash: row.secret_hash,
        active: row.status == "active",
        owner_active: row.owner_active,
        grants,
        delegates,
        sealed: (),
    }))
}
