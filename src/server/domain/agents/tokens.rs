//! Access tokens: minting under a mandate (client credentials), delegation to sub-agents
//! (RFC 8693 token exchange: only ever narrower and never longer-lived), introspection and
//! revocation. The protocol layer (`server::oauth`) parses requests and shapes RFC answers;
//! the rules live here.
//!
//! A token is active only if none of these holds: the token (or a token it was exchanged from)
//! was revoked, an agent in its chain was revoked, the owner was deactivated, an approval behind
//! one of its scopes expired or was withdrawn, or the owner lost the group that allowed a scope.
//! All of that is checked from memory (`Mandates`), so introspection does no query.

use crate::server::domain::actor::{Actor, RequestMeta};
use crate::server::domain::agents::change_bus::Change;
use crate::server::domain::agents::mandate::{AgentState, Mandates};
use crate::server::domain::agents::signing::SigningKeys;
use crate::server::domain::agents::token_log::{TokenLog, TokenRecord};
use crate::server::domain::audit::NewEvent;
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Upper bound of any access token's lifetime.
pub const MAX_LIFETIME: Duration = Duration::seconds(300);
/// How many agents a delegation chain may hold (the root agent and its sub-agents).
pub const MAX_CHAIN: usize = 5;
/// Clock skew tolerated for `iat` in the future.
const SKEW: Duration = Duration::seconds(30);

#[derive(Debug)]
pub enum TokenError {
    InvalidRequest(String),
    /// Unknown client, wrong secret, or a revoked agent: deliberately one answer.
    InvalidClient,
    InvalidGrant(String),
    InvalidScope(String),
    Server(DomainError),
}

impl From<DomainError> for TokenError {
    fn from(err: DomainError) -> Self {
        TokenError::Server(err)
    }
}

impl From<sqlx::Error> for TokenError {
    fn from(err: sqlx::Error) -> Self {
        TokenError::Server(err.into())
    }
}

/// What the token endpoint hands out. (`Debug` leaves the token out.)
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
    pub jti: Uuid,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("jti", &self.jti)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A token that introspection found active, with what it proves.
#[derive(Clone, Debug)]
pub struct ActiveToken {
    pub claims: Value,
    pub jti: Uuid,
    pub org_id: Uuid,
    pub scopes: Vec<String>,
    pub expires_at: OffsetDateTime,
    /// The agent whose mandate the token carries.
    pub root: Arc<AgentState>,
    /// The sub-agents of a delegated token, the holder first (empty for a direct token).
    pub delegates: Vec<Arc<AgentState>>,
}

impl ActiveToken {
    /// The agent holding the token: the last sub-agent it was delegated to, or the root agent.
    pub fn holder(&self) -> &Arc<AgentState> {
        self.delegates.first().unwrap_or(&self.root)
    }
}

/// Everything minting and checking tokens needs; one per process, in the app state.
pub struct TokenService {
    pub pool: PgPool,
    pub mandates: Arc<Mandates>,
    pub keys: Arc<SigningKeys>,
    pub log: TokenLog,
    pub issuer: String,
}

/// SHA-256 of a client secret, compared in constant time.
pub fn secret_matches(stored_hash: &[u8], presented: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    stored_hash.len() == presented.len() && bool::from(stored_hash.ct_eq(presented.as_slice()))
}

/// Splits an OAuth `scope` parameter (RFC 6749 §3.3): space-separated, no duplicates kept.
pub fn parse_scope(input: &str) -> Result<Vec<String>, TokenError> {
    if input.len() > 2048 {
        return Err(TokenError::InvalidScope("the scope parameter is too long".into()));
    }
    let mut seen = BTreeSet::new();
    for part in input.split(' ').filter(|p| !p.is_empty()) {
        if !part.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)) {
            return Err(TokenError::InvalidScope(format!("{part:?} is not a valid scope token")));
        }
        seen.insert(part.to_string());
    }
    Ok(seen.into_iter().collect())
}

/// The identifier of the exact authority a token carries: the agent and the approvals behind
/// its scopes. Two tokens with the same mandate id rest on the same decisions.
pub fn mandate_id(agent_id: Uuid, approval_ids: &[Uuid]) -> Uuid {
    let mut sorted = approval_ids.to_vec();
    sorted.sort();
    let mut hasher = Sha256::new();
    hasher.update(b"mandate.v1");
    hasher.update(agent_id.as_bytes());
    for id in sorted {
        hasher.update(id.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // Shape it as a version-8 (custom) UUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

fn act_chain(claims: &Value) -> Option<Vec<Uuid>> {
    let mut chain = Vec::new();
    let mut act = claims.get("act")?;
    loop {
        chain.push(act.get("sub")?.as_str()?.parse().ok()?);
        if chain.len() > MAX_CHAIN {
            return None;
        }
        match act.get("act") {
            Some(inner) => act = inner,
            None => return Some(chain),
        }
    }
}

/// The RFC 8693 `may_act` claim of a token whose holder has designated `delegates`: one object
/// naming the delegate, or a list of such objects when there are several. The token endpoint
/// checks the designation itself, so withdrawing one takes effect before tokens expire.
fn may_act(delegates: &[Uuid]) -> Option<Value> {
    match delegates {
        [] => None,
        [one] => Some(json!({ "sub": one })),
        many => Some(Value::Array(many.iter().map(|id| json!({ "sub": id })).collect())),
    }
}

impl TokenService {
    /// Authenticates an agent by its client credentials.
    pub async fn authenticate_agent(&self, client_id: &str, secret: &str) -> Result<Arc<AgentState>, TokenError> {
        let agent = self.mandates.agent_by_client_id(&self.pool, client_id).await?.ok_or(TokenError::InvalidClient)?;
        if !secret_matches(&agent.secret_hash, secret) || !agent.usable() {
            return Err(TokenError::InvalidClient);
        }
        Ok(agent)
    }

    /// `grant_type=client_credentials`: a token for the agent, with its whole mandate or the
    /// requested part of it.
    pub async fn client_credentials(
        &self,
        agent: &AgentState,
        scope: Option<&str>,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<Issued, TokenError> {
        let mandate = agent.mandate(now);
        if mandate.is_empty() {
            return Err(TokenError::InvalidScope(
                "this agent has no approved scopes yet: ask an approver to approve its scope requests".into(),
            ));
        }
        let chosen: Vec<_> = match scope.map(parse_scope).transpose()? {
            None => mandate.clone(),
            Some(requested) if requested.is_empty() => mandate.clone(),
            Some(requested) => requested
                .iter()
                .map(|name| {
                    agent.grant(name, now).ok_or_else(|| {
                        let held: Vec<&str> = mandate.iter().map(|g| g.scope.as_str()).collect();
                        TokenError::InvalidScope(format!(
                            "{name} is not in this agent's mandate (it holds: {})",
                            held.join(" ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let mut lifetime = MAX_LIFETIME;
        for grant in &chosen {
            lifetime = lifetime.min(Duration::seconds(grant.max_lifetime_seconds));
            if let Some(until) = grant.expires_at {
                lifetime = lifetime.min(until - now);
            }
        }
        let lifetime = lifetime.max(Duration::seconds(1));
        let scopes: Vec<String> = chosen.iter().map(|g| g.scope.clone()).collect();
        let approval_ids: Vec<Uuid> = chosen.iter().map(|g| g.approval_id).collect();
        let mut claims = json!({
            "act": { "sub": agent.agent_id },
            "client_id": agent.client_id,
            "mandate_id": mandate_id(agent.agent_id, &approval_ids),
        });
        if let Some(may_act) = may_act(&agent.delegates) {
            claims["may_act"] = may_act;
        }
        let record = TokenRecord {
            org_id: agent.org_id,
            jti: Uuid::new_v4(),
            agent_id: agent.agent_id,
            owner_id: agent.owner_id,
            delegates: Vec::new(),
            parent_jti: None,
            scopes,
            approval_ids,
            issued_at: now,
            expires_at: now + lifetime,
        };
        let event = NewEvent::new(
            agent.org_id,
            Actor::Agent { agent_id: agent.agent_id, label: agent.name.clone() },
            "token.issued",
        )
        .target("agent", agent.agent_id, &agent.name)
        .details(json!({
            "jti": record.jti, "scopes": record.scopes, "expires_at": record.expires_at.unix_timestamp(),
            "approval_ids": record.approval_ids, "owner_id": agent.owner_id, "grant_type": "client_credentials",
        }));
        self.issue(claims, record, event, meta).await
    }

    /// RFC 8693 token exchange: `actor` (a sub-agent, authenticated) receives a token derived
    /// from `subject_token`, no longer than it lives. Only a delegate the token's holder was
    /// designated (`may_act`) may exchange it, and the result carries only scopes both the
    /// subject token and the actor's own mandate hold: delegation never widens anyone.
    pub async fn exchange(
        &self,
        actor: &AgentState,
        subject_token: &str,
        scope: Option<&str>,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<Issued, TokenError> {
        let subject = self
            .introspect(actor.org_id, subject_token, now)
            .await?
            .ok_or_else(|| TokenError::InvalidGrant("the subject token is not active".into()))?;
        let chain_ids: Vec<Uuid> =
            subject.delegates.iter().map(|a| a.agent_id).chain(std::iter::once(subject.root.agent_id)).collect();
        if chain_ids.contains(&actor.agent_id) {
            return Err(TokenError::InvalidGrant("this agent is already in the token's delegation chain".into()));
        }
        if chain_ids.len() >= MAX_CHAIN {
            return Err(TokenError::InvalidGrant(format!("delegation chains are limited to {MAX_CHAIN} agents")));
        }
        let holder = subject.holder();
        if !holder.delegates.contains(&actor.agent_id) {
            let reason = format!(
                "{} has not designated this agent as a delegate: an admin designates delegates on the agent's page",
                holder.name
            );
            let event = NewEvent::new(
                actor.org_id,
                Actor::Agent { agent_id: actor.agent_id, label: actor.name.clone() },
                "token.exchange_refused",
            )
            .target("agent", holder.agent_id, &holder.name)
            .details(json!({ "parent_jti": subject.jti, "reason": "not_a_designated_delegate" }))
            .failed();
            Work::record_alone(&self.pool, event, meta, now).await?;
            return Err(TokenError::InvalidGrant(reason));
        }
        let own = |scope: &String| actor.grant(scope, now).is_some();
        let scopes: Vec<String> = match scope.map(parse_scope).transpose()? {
            Some(requested) if !requested.is_empty() => {
                if let Some(wider) = requested.iter().find(|s| !subject.scopes.contains(s)) {
                    return Err(TokenError::InvalidScope(format!(
                        "{wider} is not in the subject token: a delegated token can only narrow (available: {})",
                        subject.scopes.join(" ")
                    )));
                }
                if let Some(foreign) = requested.iter().find(|s| !own(s)) {
                    return Err(TokenError::InvalidScope(format!(
                        "{foreign} is not in this agent's own mandate: a delegate acts within its own approvals too"
                    )));
                }
                requested
            }
            _ => subject.scopes.iter().filter(|s| own(s)).cloned().collect(),
        };
        if scopes.is_empty() || !actor.usable() {
            return Err(TokenError::InvalidScope(format!(
                "this agent holds none of the subject token's scopes ({}) in its own mandate",
                subject.scopes.join(" ")
            )));
        }
        // No longer than the subject token, nor than the delegate's own grants allow.
        let mut expires_at = subject.expires_at.min(now + MAX_LIFETIME);
        for grant in scopes.iter().filter_map(|s| actor.grant(s, now)) {
            expires_at = expires_at.min(now + Duration::seconds(grant.max_lifetime_seconds));
            if let Some(until) = grant.expires_at {
                expires_at = expires_at.min(until);
            }
        }
        if expires_at <= now {
            return Err(TokenError::InvalidGrant("the subject token has expired".into()));
        }
        let approval_ids: Vec<Uuid> =
            scopes.iter().filter_map(|s| subject.root.grant(s, now)).map(|g| g.approval_id).collect();
        let mut claims = json!({
            "act": { "sub": actor.agent_id, "act": subject.claims.get("act").cloned().unwrap_or(Value::Null) },
            "client_id": actor.client_id,
            "mandate_id": mandate_id(subject.root.agent_id, &approval_ids),
        });
        if let Some(may_act) = may_act(&actor.delegates) {
            claims["may_act"] = may_act;
        }
        let record = TokenRecord {
            org_id: actor.org_id,
            jti: Uuid::new_v4(),
            agent_id: subject.root.agent_id,
            owner_id: subject.root.owner_id,
            delegates: std::iter::once(actor.agent_id).chain(subject.delegates.iter().map(|a| a.agent_id)).collect(),
            parent_jti: Some(subject.jti),
            scopes,
            approval_ids,
            issued_at: now,
            expires_at,
        };
        let event = NewEvent::new(
            actor.org_id,
            Actor::Agent { agent_id: actor.agent_id, label: actor.name.clone() },
            "token.exchanged",
        )
        .target("agent", subject.root.agent_id, &subject.root.name)
        .details(json!({
            "jti": record.jti, "parent_jti": subject.jti, "scopes": record.scopes,
            "expires_at": record.expires_at.unix_timestamp(), "delegates": record.delegates,
            "approval_ids": record.approval_ids, "owner_id": subject.root.owner_id,
        }));
        self.issue(claims, record, event, meta).await
    }

    async fn issue(
        &self,
        mut claims: Value,
        record: TokenRecord,
        event: NewEvent,
        meta: &RequestMeta,
    ) -> Result<Issued, TokenError> {
        let extra = json!({
            "iss": self.issuer,
            "sub": record.owner_id,
            "scope": record.scopes.join(" "),
            "org_id": record.org_id,
            "jti": record.jti,
            "iat": record.issued_at.unix_timestamp(),
            "exp": record.expires_at.unix_timestamp(),
        });
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        let access_token = self.keys.current().sign(&claims)?;
        let issued = Issued {
            access_token,
            expires_in: (record.expires_at - record.issued_at).whole_seconds(),
            scope: record.scopes.join(" "),
            jti: record.jti,
        };
        self.log.append(record, event, meta.clone()).await?;
        Ok(issued)
    }

    /// The token's facts if it is active for organization `org_id` at `now`; `None` otherwise.
    pub async fn introspect(
        &self,
        org_id: Uuid,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ActiveToken>, DomainError> {
        let Ok(claims) = self.keys.current().verify(token) else { return Ok(None) };
        self.check(claims, Some(org_id), now).await
    }

    /// The `jti` of a token this server issued for organization `org_id`, active or not (a
    /// signature check only): proof that whoever hands it over was shown it.
    pub fn issued_jti(&self, org_id: Uuid, token: &str) -> Option<Uuid> {
        let claims = self.keys.current().verify_signature(token).ok()?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let ours = text("iss") == Some(self.issuer.as_str()) && text("org_id") == Some(org_id.to_string().as_str());
        ours.then(|| text("jti")?.parse().ok()).flatten()
    }

    /// Introspection for a token presented by its own holder: the organization is the one the
    /// (signed) token names.
    pub async fn introspect_bearer(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ActiveToken>, DomainError> {
        let Ok(claims) = self.keys.current().verify(token) else { return Ok(None) };
        self.check(claims, None, now).await
    }

    /// Every activity rule, on claims whose signature was verified.
    async fn check(
        &self,
        claims: Value,
        org_id: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<Option<ActiveToken>, DomainError> {
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let (Some(exp), Some(iat)) = (number("exp"), number("iat")) else { return Ok(None) };
        let Ok(expires_at) = OffsetDateTime::from_unix_timestamp(exp) else { return Ok(None) };
        let fresh = expires_at > now && iat <= (now + SKEW).unix_timestamp();
        let Some(token_org) = text("org_id").and_then(|s| s.parse::<Uuid>().ok()) else { return Ok(None) };
        let org_id = org_id.unwrap_or(token_org);
        let ours = text("iss") == Some(self.issuer.as_str()) && token_org == org_id;
        let Some(jti) = text("jti").and_then(|s| s.parse::<Uuid>().ok()) else { return Ok(None) };
        // A token can never have lived longer than any token is issued for, whatever it says.
        let lifetime_ok = exp - iat <= (MAX_LIFETIME + SKEW).whole_seconds();
        if !fresh || !ours || !lifetime_ok || self.mandates.is_revoked(&self.pool, jti).await? {
            return Ok(None);
        }
        let Some(chain) = act_chain(&claims) else { return Ok(None) };
        let Some((root_id, delegate_ids)) = chain.split_last() else { return Ok(None) };
        let Some(root) = self.mandates.agent(&self.pool, *root_id).await? else { return Ok(None) };
        if root.org_id != org_id || !root.usable() || text("sub") != Some(root.owner_id.to_string().as_str()) {
            return Ok(None);
        }
        let scopes: Vec<String> =
            text("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        // Each scope must rest on the very approval it was issued under: a withdrawn approval
        // ends the token for good, even when the scope is approved again later.
        let Some(approvals) =
            scopes.iter().map(|scope| root.grant(scope, now).map(|g| g.approval_id)).collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        if text("mandate_id") != Some(mandate_id(root.agent_id, &approvals).to_string().as_str()) {
            return Ok(None);
        }
        let mut delegates = Vec::with_capacity(delegate_ids.len());
        for id in delegate_ids {
            match self.mandates.agent(&self.pool, *id).await? {
                // A delegate acts within its own mandate too, for as long as the token lives.
                Some(agent)
                    if agent.org_id == org_id
                        && agent.usable()
                        && scopes.iter().all(|s| agent.grant(s, now).is_some()) =>
                {
                    delegates.push(agent)
                }
                _ => return Ok(None),
            }
        }
        // Every hand-over in the chain must still be designated: withdrawing a delegate ends the
        // tokens it received, not only its future exchanges.
        let links: Vec<&Arc<AgentState>> = delegates.iter().chain(std::iter::once(&root)).collect();
        if links.windows(2).any(|pair| !pair[1].delegates.contains(&pair[0].agent_id)) {
            return Ok(None);
        }
        Ok(Some(ActiveToken { claims, jti, org_id, scopes, expires_at, root, delegates }))
    }

    /// RFC 7009: revokes a token and every token exchanged from it. `may_revoke` decides
    /// whether the caller may (holder, an agent in its chain, or an org API key). Unknown,
    /// foreign or already-inactive tokens are not an error. Returns how many tokens ended.
    pub async fn revoke(
        &self,
        org_id: Uuid,
        token: &str,
        actor: Actor,
        may_revoke: impl Fn(&ActiveToken) -> bool,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<u64, DomainError> {
        let Some(active) = self.introspect(org_id, token, now).await? else { return Ok(0) };
        if !may_revoke(&active) {
            return Ok(0);
        }
        let mut work = Work::begin(&self.pool, org_id, actor, meta, now).await?;
        let ended = end_token_trees(&mut work, &self.mandates, &[active.jti]).await?;
        let event = work
            .event("token.revoked")
            .target("agent", active.root.agent_id, &active.root.name)
            .details(json!({ "jti": active.jti, "revoked_tokens": ended }));
        work.record(event).await?;
        work.commit().await?;
        Ok(ended as u64)
    }
}

/// Revokes the tokens `roots` and every token exchanged from them, inside `work`: announced on
/// the change bus, and applied to this node's cache when the work commits. Returns how many
/// ended (tokens already revoked are not counted again).
pub(crate) async fn end_token_trees<'a>(
    work: &mut Work<'a>,
    cache: &'a Mandates,
    roots: &[Uuid],
) -> Result<usize, DomainError> {
    let (org_id, now) = (work.org_id(), work.now());
    // language=PostgreSQL
    let ended = sqlx::query!(
        "with recursive tree as (
             select jti from access_tokens where org_id = $1 and jti = any($2)
             union
             select t.jti from access_tokens t join tree on t.parent_jti = tree.jti where t.org_id = $1)
         update access_tokens set revoked_at = $3
         where org_id = $1 and jti in (select jti from tree) and revoked_at is null
         returning jti, expires_at",
        org_id,
        roots,
        now
    )
    .fetch_all(work.conn())
    .await?;
    work.announce(cache, Change::Tokens { org_id }).await?;
    work.tokens_revoked(cache, ended.iter().map(|r| (r.jti, r.expires_at)).collect());
    Ok(ended.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parameter_parsing() {
        assert_eq!(parse_scope("crm.read  crm.write crm.read").unwrap(), vec!["crm.read", "crm.write"]);
        assert!(parse_scope("").unwrap().is_empty());
        assert!(parse_scope("crm.read\"x").is_err());
        assert!(parse_scope(&"a".repeat(3000)).is_err());
    }

    #[test]
    fn secrets_compare_by_hash() {
        let hash = Sha256::digest(b"s3cret").to_vec();
        assert!(secret_matches(&hash, "s3cret"));
        assert!(!secret_matches(&hash, "s3cret "));
        assert!(!secret_matches(&[], "s3cret"));
    }

    #[test]
    fn mandate_ids_depend_on_agent_and_approvals_not_their_order() {
        let (a, b, agent) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(mandate_id(agent, &[a, b]), mandate_id(agent, &[b, a]));
        assert_ne!(mandate_id(agent, &[a]), mandate_id(agent, &[a, b]));
        assert_ne!(mandate_id(agent, &[a]), mandate_id(Uuid::new_v4(), &[a]));
    }

    #[test]
    fn act_chains_are_read_outermost_first() {
        let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
        let claims = json!({ "act": { "sub": y, "act": { "sub": x } } });
        assert_eq!(act_chain(&claims), Some(vec![y, x]));
        assert_eq!(act_chain(&json!({})), None);
        assert_eq!(act_chain(&json!({ "act": { "sub": "not-a-uuid" } })), None);
    }
}
