//! Agent actions: what an agent (or a resource server on its behalf) reports having done,
//! recorded with the whole chain of authority behind it — the person, the approvals behind the
//! scopes used (who approved, when), the mandate, the token and the agent — so that "who is
//! accountable for this?" has an answer in one event.
//!
//! Reports arrive on a hot path, so they are written with group commit: each request returns
//! only after its event is durable, but many requests share one transaction.

use super::{record_many, NewEvent, Outcome};
use crate::model::api_keys::ApiKeyScope;
use crate::server::domain::actor::{Actor, RequestMeta};
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::agents::tokens::{mandate_id, ActiveToken, TokenService};
use crate::server::domain::group_commit::GroupCommit;
use crate::server::domain::ApiKeyPrincipal;
use crate::server::domain::DomainError;
use crate::server::domain::Work;
use serde_json::{json, Value};
use sqlx::PgPool;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Most events per transaction.
const MAX_BATCH: usize = 1024;
/// Largest `metadata`, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// A resource server may report an action made with a token this long after the token expired.
pub const LATE_REPORT: Duration = Duration::hours(1);

/// The first segments of actions Mandate records itself. An agent may not report an action in
/// these namespaces, so a reported `agent.revoked` can never pass for a real revocation.
const RESERVED_NAMESPACES: &[&str] = &[
    "admin",
    "agent",
    "api_key",
    "audit",
    "audit_stream",
    "connection",
    "directory",
    "domain",
    "invitation",
    "keys",
    "login",
    "logout",
    "mandate",
    "organization",
    "person",
    "saml",
    "scim",
    "scope",
    "session",
    "settings",
    "setup",
    "sso",
    "token",
];

/// An action as reported, before validation.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub outcome: Option<String>,
    pub metadata: Option<Value>,
    /// The scopes the action relied on; all of the token's scopes when absent.
    pub scopes: Option<Vec<String>>,
}

/// Where a recorded action landed in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub seq: i64,
}

/// The writer shared by every request.
#[derive(Clone)]
pub struct ActionLog {
    pool: PgPool,
    commit: GroupCommit<(NewEvent, RequestMeta), Result<i64, String>>,
}

impl ActionLog {
    pub fn start(pool: PgPool) -> ActionLog {
        ActionLog { pool: pool.clone(), commit: GroupCommit::start("agent action log", pool, MAX_BATCH, write_batch) }
    }

    async fn append(&self, event: NewEvent, meta: RequestMeta) -> Result<Recorded, DomainError> {
        let seq = self.commit.submit((event, meta)).await?.map_err(DomainError::Internal)?;
        Ok(Recorded { seq })
    }
}

/// One transaction per organization in the batch, so that a slow or failing organization
/// (its chain head held by a long transaction) never holds up or fails another's reports.
async fn write_batch(
    pool: PgPool,
    batch: Vec<(NewEvent, RequestMeta)>,
) -> Result<Vec<Result<i64, String>>, DomainError> {
    let mut results: Vec<Result<i64, String>> = vec![Err("not written".into()); batch.len()];
    let mut by_org: Vec<(Uuid, Vec<usize>)> = Vec::new();
    for (index, (event, _)) in batch.iter().enumerate() {
        match by_org.iter_mut().find(|(org, _)| *org == event.org_id) {
            Some((_, indexes)) => indexes.push(index),
            None => by_org.push((event.org_id, vec![index])),
        }
    }
    let mut slots: Vec<Option<(NewEvent, RequestMeta)>> = batch.into_iter().map(Some).collect();
    for (org_id, indexes) in by_org {
        let events: Vec<_> = indexes.iter().filter_map(|&i| slots[i].take()).collect();
        let written = async {
            let mut work = Work::system(&pool, OffsetDateTime::now_utc()).await?;
            // language=PostgreSQL
            sqlx::query!("set local lock_timeout = '5s'").execute(work.conn()).await?;
            let seqs = record_many(work.conn(), events, OffsetDateTime::now_utc()).await?;
            work.commit().await?;
            Ok::<_, DomainError>(seqs)
        }
        .await;
        match written {
            Ok(seqs) => {
                for (&index, seq) in indexes.iter().zip(seqs) {
                    results[index] = Ok(seq);
                }
            }
            Err(err) => {
                tracing::error!(%org_id, error = %err, "could not record agent actions");
                for &index in &indexes {
                    results[index] = Err(format!("recording the action failed: {err}"));
                }
            }
        }
    }
    Ok(results)
}

/// One approval behind a scope used.
struct ApprovalLink {
    scope: String,
    approval_id: Uuid,
    approved_by: Option<String>,
    approved_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
}

/// Everything the event says about who stands behind the action.
struct Authority {
    org_id: Uuid,
    person_id: Uuid,
    person_email: String,
    person_name: String,
    /// The agent that acted (holder of the token) and, for a delegated token, the agents
    /// between it and the root agent whose mandate the token carries (holder first).
    holder: (Uuid, String, String),
    delegation: Vec<(Uuid, String)>,
    jti: Uuid,
    mandate_id: Uuid,
    token_scopes: Vec<String>,
    token_expires_at: OffsetDateTime,
    token_status: &'static str,
    approvals: Vec<ApprovalLink>,
}

fn time(at: Option<OffsetDateTime>) -> Value {
    at.and_then(|at| at.format(&Rfc3339).ok()).map(Value::String).unwrap_or(Value::Null)
}

/// Validates a report against the token's authority and shapes the event.
fn event(authority: Authority, report: Report, reported_by: Value) -> Result<NewEvent, DomainError> {
    let action = report.action.trim().to_string();
    validate_action(&action)?;
    let outcome = match report.outcome.as_deref().map(str::trim) {
        None | Some("") | Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        Some(other) => {
            return Err(DomainError::invalid(format!("outcome must be \"success\" or \"failure\", not {other:?}")))
        }
    };
    let metadata = report.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        return Err(DomainError::invalid("metadata must be a JSON object"));
    }
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(DomainError::invalid(format!("metadata must be at most {} KiB", MAX_METADATA_BYTES / 1024)));
    }
    let scopes_used = match report.scopes {
        None => authority.token_scopes.clone(),
        Some(mut scopes) => {
            scopes.sort();
            scopes.dedup();
            if let Some(missing) = scopes.iter().find(|s| !authority.token_scopes.contains(s)) {
                return Err(DomainError::NotAllowed(format!(
                    "the token does not carry the scope {missing:?} (it carries: {})",
                    authority.token_scopes.join(" ")
                )));
            }
            scopes
        }
    };
    let target = match report.target_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => {
            let kind = report.target_type.as_deref().map(str::trim).filter(|k| !k.is_empty()).unwrap_or("resource");
            let label = report.target_label.as_deref().map(str::trim).filter(|l| !l.is_empty()).unwrap_or(id);
            for (name, value, max) in [("target.id", id, 500), ("target.type", kind, 100), ("target.label", label, 500)]
            {
                if value.chars().count() > max || value.chars().any(char::is_control) {
                    return Err(DomainError::invalid(format!(
                        "{name} must be at most {max} characters, without control characters"
                    )));
                }
            }
            Some((kind.to_string(), id.to_string(), label.to_string()))
        }
    };
    let approvals: Vec<Value> = authority
        .approvals
        .iter()
        .filter(|a| scopes_used.contains(&a.scope))
        .map(|a| {
            json!({
                "scope": a.scope, "approval_id": a.approval_id, "approved_by": a.approved_by,
                "approved_at": time(a.approved_at), "expires_at": time(a.expires_at),
            })
        })
        .collect();
    let (holder_id, holder_name, holder_client_id) = authority.holder;
    let details = json!({
        "kind": "agent_action",
        "reported_by": reported_by,
        "person": { "id": authority.person_id, "email": authority.person_email, "name": authority.person_name },
        "agent": { "id": holder_id, "name": holder_name, "client_id": holder_client_id },
        "delegation": authority.delegation.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect::<Vec<_>>(),
        "token": {
            "jti": authority.jti, "mandate_id": authority.mandate_id, "scopes": authority.token_scopes,
            "expires_at": time(Some(authority.token_expires_at)), "status": authority.token_status,
        },
        "scopes_used": scopes_used,
        "approvals": approvals,
        "metadata": metadata,
    });
    let actor = Actor::Agent { agent_id: holder_id, label: holder_name };
    let mut event = NewEvent::new(authority.org_id, actor, action).details(details);
    if let Some((kind, id, label)) = target {
        event.target = Some(super::Target { kind: kind.into(), id, label });
    }
    if outcome == Outcome::Failure {
        event = event.failed();
    }
    Ok(event)
}

/// Action names look like scopes (`crm.contact.update`) and stay out of Mandate's own namespaces.
pub fn validate_action(action: &str) -> Result<(), DomainError> {
    let well_formed = !action.is_empty()
        && action.len() <= 100
        && action.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
        && action.as_bytes()[0].is_ascii_lowercase();
    if !well_formed {
        return Err(DomainError::invalid(format!(
            "action {action:?} must be 1-100 characters of lowercase letters, digits, '_' or '-', in dot-separated parts \
             starting with a letter (for example \"crm.contact.update\")"
        )));
    }
    let namespace = action.split('.').next().unwrap_or_default();
    if RESERVED_NAMESPACES.contains(&namespace) {
        return Err(DomainError::invalid(format!(
            "actions in the {namespace:?} namespace are recorded by Mandate itself; name the action after the system it touched"
        )));
    }
    Ok(())
}

/// Records an action reported by the agent itself, authenticated by its (active) access token.
pub async fn record_by_token(
    log: &ActionLog,
    token: &ActiveToken,
    report: Report,
    meta: RequestMeta,
    now: OffsetDateTime,
) -> Result<Recorded, DomainError> {
    let root = &token.root;
    let holder = token.holder();
    let approvals = token
        .scopes
        .iter()
        .filter_map(|scope| root.grant(scope, now))
        .map(|g| ApprovalLink {
            scope: g.scope.clone(),
            approval_id: g.approval_id,
            approved_by: g.approved_by.clone(),
            approved_at: g.approved_at,
            expires_at: g.expires_at,
        })
        .collect::<Vec<_>>();
    let mandate = token
        .claims
        .get("mandate_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| mandate_id(root.agent_id, &approvals.iter().map(|a| a.approval_id).collect::<Vec<_>>()));
    let authority = Authority {
        org_id: token.org_id,
        person_id: root.owner_id,
        person_email: root.owner_email.clone(),
        person_name: root.owner_name.clone(),
        holder: (holder.agent_id, holder.name.clone(), holder.client_id.clone()),
        // The agents the token passed through after the holder, ending at the root agent.
        delegation: if token.delegates.is_empty() {
            Vec::new()
        } else {
            token.delegates.iter().skip(1).chain(std::iter::once(root)).map(|a| (a.agent_id, a.name.clone())).collect()
        },
        jti: token.jti,
        mandate_id: mandate,
        token_scopes: token.scopes.clone(),
        token_expires_at: token.expires_at,
        token_status: "active",
        approvals,
    };
    log.append(event(authority, report, json!({ "type": "agent" }))?, meta).await
}

/// Records an action reported by a resource server with an organization API key holding
/// `audit:write`, handing over the access token the agent presented to it. The token itself, not
/// just its `jti`, is the proof: a key cannot report actions of agents it never saw. The token
/// must be one this organization issued and not long expired; a token revoked since is accepted
/// (the action happened) and marked as such. The key is named as the reporter.
pub async fn record_presented(
    log: &ActionLog,
    tokens: &TokenService,
    key: &ApiKeyPrincipal,
    token: &str,
    report: Report,
    meta: RequestMeta,
    now: OffsetDateTime,
) -> Result<Recorded, DomainError> {
    key.require(ApiKeyScope::AuditWrite)?;
    let jti = tokens.issued_jti(key.org_id(), token).ok_or_else(|| {
        DomainError::invalid(
            "`token` is not an access token this organization issued: send the token the agent presented",
        )
    })?;
    record_by_jti(log, &tokens.mandates, key, jti, report, meta, now).await
}

async fn record_by_jti(
    log: &ActionLog,
    mandates: &Mandates,
    key: &ApiKeyPrincipal,
    jti: Uuid,
    report: Report,
    meta: RequestMeta,
    now: OffsetDateTime,
) -> Result<Recorded, DomainError> {
    let pool = &log.pool;
    // language=PostgreSQL
    let token = sqlx::query!(
        "select t.agent_id, t.owner_id, t.delegates, t.scopes, t.approval_ids, t.expires_at, t.revoked_at,
                p.email, p.display_name, a.name as agent_name, a.client_id
         from access_tokens t
         join people p on p.org_id = t.org_id and p.id = t.owner_id
         join agents a on a.org_id = t.org_id and a.id = t.agent_id
         where t.org_id = $1 and t.jti = $2",
        key.org_id(),
        jti
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| DomainError::invalid(format!("no token with jti {jti} was issued in this organization")))?;
    if token.expires_at + LATE_REPORT < now {
        return Err(DomainError::NotAllowed(format!(
            "token {jti} expired more than {} minutes ago; report actions as they happen",
            LATE_REPORT.whole_minutes()
        )));
    }
    // language=PostgreSQL
    let approvals = sqlx::query!(
        "select r.id, s.name, r.decided_by_label, r.decided_at, r.expires_at
         from scope_requests r join scopes s on s.org_id = r.org_id and s.id = r.scope_id
         where r.org_id = $1 and r.id = any($2)",
        key.org_id(),
        &token.approval_ids
    )
    .fetch_all(pool)
    .await?;
    // language=PostgreSQL
    let chain = sqlx::query!(
        "select id, name, client_id from agents where org_id = $1 and id = any($2)",
        key.org_id(),
        &token.delegates
    )
    .fetch_all(pool)
    .await?;
    let find = |id: &Uuid| chain.iter().find(|a| a.id == *id);
    let holder = match token.delegates.first().and_then(find) {
        Some(a) => (a.id, a.name.clone(), a.client_id.clone()),
        None => (token.agent_id, token.agent_name.clone(), token.client_id.clone()),
    };
    let delegation = if token.delegates.is_empty() {
        Vec::new()
    } else {
        token
            .delegates
            .iter()
            .skip(1)
            .filter_map(|id| find(id).map(|a| (a.id, a.name.clone())))
            .chain(std::iter::once((token.agent_id, token.agent_name.clone())))
            .collect()
    };
    let status = if token.revoked_at.is_some() || mandates.is_revoked(pool, jti).await? {
        "revoked"
    } else if token.expires_at <= now {
        "expired"
    } else {
        "active"
    };
    let authority = Authority {
        org_id: key.org_id(),
        person_id: token.owner_id,
        person_email: token.email,
        person_name: token.display_name,
        holder,
        delegation,
        jti,
        mandate_id: mandate_id(token.agent_id, &token.approval_ids),
        token_scopes: token.scopes,
        token_expires_at: token.expires_at,
        token_status: status,
        approvals: approvals
            .into_iter()
            .map(|r| ApprovalLink {
                scope: r.name,
                approval_id: r.id,
                approved_by: r.decided_by_label,
                approved_at: r.decided_at,
                expires_at: r.expires_at,
            })
            .collect(),
    };
    let reported_by = json!({ "type": "api_key", "id": key.key_id(), "name": key.name() });
    log.append(event(authority, report, reported_by)?, meta).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_checked_and_reserved_namespaces_refused() {
        for good in ["crm.contact.update", "mail.send", "search", "db.query_rows", "k8s.pod-restart"] {
            assert!(validate_action(good).is_ok(), "{good}");
        }
        for bad in ["", "CRM.read", "crm..read", ".crm", "crm.", "1crm.read", "crm read", "crm.réad", &"a".repeat(101)]
        {
            assert!(validate_action(bad).is_err(), "{bad:?}");
        }
        for reserved in ["agent.revoked", "token.issued", "login.succeeded", "audit.retention_applied", "logout"] {
            let err = validate_action(reserved).unwrap_err().to_string();
            assert!(err.contains("recorded by Mandate itself"), "{reserved}: {err}");
        }
    }
}
