//! The audit chain. Each organization's events form a SHA-256 hash chain: event `n` hashes a
//! canonical encoding of its own fields together with the hash of event `n - 1`. `record`
//! appends inside the caller's transaction (the change and its event commit together).
//! PostgreSQL refuses UPDATE and TRUNCATE on the table, and DELETE except below the retention
//! boundary (see the migrations).
//!
//! Around the chain: `checkpoints` signs a Merkle tree over it, `verify` checks all of it,
//! `actions` records what agents report doing, `export` streams it out, `retention` prunes old
//! events at a checkpoint.

pub mod actions;
pub mod checkpoints;
pub mod export;
pub mod failures;
pub mod high_water;
pub mod merkle;
pub mod retention;
pub mod streams;
pub mod verify;

use crate::model::audit::{AuditEventView, AuditFilter, AuditIntegrity, AuditPage, ChainStatus, InclusionProof};
use crate::model::Permission;
use crate::server::domain::actor::{Actor, AdminSession, RequestMeta};
use crate::server::domain::DomainError;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::borrow::Cow;
use time::OffsetDateTime;
use uuid::Uuid;

pub use verify::verify;

/// Version tag mixed into every hash, so a future encoding can never collide with this one.
const ENCODING_TAG: &[u8] = b"mandate.audit.v1";
pub const GENESIS_HASH: [u8; 32] = [0; 32];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// What an event is about.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: Cow<'static, str>,
    pub id: String,
    pub label: String,
}

/// An event to append.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub org_id: Uuid,
    pub actor: Actor,
    pub action: Cow<'static, str>,
    pub target: Option<Target>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

impl NewEvent {
    pub fn new(org_id: Uuid, actor: Actor, action: impl Into<Cow<'static, str>>) -> NewEvent {
        NewEvent {
            org_id,
            actor,
            action: action.into(),
            target: None,
            outcome: Outcome::Success,
            details: serde_json::json!({}),
        }
    }

    pub fn target(mut self, kind: &'static str, id: impl ToString, label: impl Into<String>) -> Self {
        self.target = Some(Target { kind: Cow::Borrowed(kind), id: id.to_string(), label: label.into() });
        self
    }

    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// The fields of one stored event that the hash covers, in encoding order.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainFields<'a> {
    pub org_id: Uuid,
    pub seq: i64,
    pub id: Uuid,
    /// Microseconds since the Unix epoch (PostgreSQL's `timestamptz` precision).
    pub occurred_at_micros: i64,
    pub actor_type: &'a str,
    pub actor_id: Option<&'a str>,
    pub actor_label: &'a str,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub target_label: Option<&'a str>,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: &'a str,
}

impl ChainFields<'_> {
    /// Who the event is about, derived from hashed fields only (so verification can recompute
    /// the unhashed filter columns): the person of an agent action (or a changed person), and
    /// the acting agent (or the agent acted on).
    pub fn subjects(&self) -> (Option<Uuid>, Option<Uuid>) {
        let target =
            |kind: &str| self.target_id.filter(|_| self.target_type == Some(kind)).and_then(|id| id.parse().ok());
        let person = if self.details.contains("\"kind\":\"agent_action\"") {
            // Only the one field is read (everything else skipped unparsed): this runs for every
            // event on ingestion and verification.
            #[derive(serde::Deserialize)]
            struct Details<'a> {
                #[serde(borrow)]
                person: Option<Person<'a>>,
            }
            #[derive(serde::Deserialize)]
            struct Person<'a> {
                #[serde(borrow)]
                id: Option<&'a str>,
            }
            serde_json::from_str::<Details<'_>>(self.details).ok().and_then(|d| d.person?.id?.parse().ok())
        } else {
            target("person")
        };
        let agent = match self.actor_type {
            "agent" => self.actor_id.and_then(|id| id.parse().ok()),
            _ => target("agent"),
        };
        (person, agent)
    }
}

/// `SHA-256(tag ‖ prev_hash ‖ fields)`, each field length-prefixed (u32 big-endian) and each
/// optional field preceded by a presence byte, so no two different events encode alike.
pub fn chain_hash(prev_hash: &[u8], fields: &ChainFields<'_>) -> [u8; 32] {
    fn put(hasher: &mut Sha256, bytes: &[u8]) {
        hasher.update((bytes.len() as u32).to_be_bytes());
        hasher.update(bytes);
    }
    fn put_opt(hasher: &mut Sha256, value: Option<&str>) {
        match value {
            None => hasher.update([0u8]),
            Some(value) => {
                hasher.update([1u8]);
                put(hasher, value.as_bytes());
            }
        }
    }
    let mut h = Sha256::new();
    put(&mut h, ENCODING_TAG);
    put(&mut h, prev_hash);
    put(&mut h, fields.org_id.as_bytes());
    h.update(fields.seq.to_be_bytes());
    put(&mut h, fields.id.as_bytes());
    h.update(fields.occurred_at_micros.to_be_bytes());
    put(&mut h, fields.actor_type.as_bytes());
    put_opt(&mut h, fields.actor_id);
    put(&mut h, fields.actor_label.as_bytes());
    put(&mut h, fields.action.as_bytes());
    put_opt(&mut h, fields.target_type);
    put_opt(&mut h, fields.target_id);
    put_opt(&mut h, fields.target_label);
    put(&mut h, fields.outcome.as_bytes());
    put_opt(&mut h, fields.ip);
    put_opt(&mut h, fields.user_agent);
    put_opt(&mut h, fields.request_id);
    put(&mut h, fields.details.as_bytes());
    h.finalize().into()
}

pub fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

fn from_micros(micros: i64) -> Result<OffsetDateTime, DomainError> {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
        .map_err(|err| DomainError::Internal(format!("timestamp out of range: {err}")))
}

/// Creates the (empty) chain of a new organization. Called in the organization's transaction.
pub async fn start_chain(conn: &mut PgConnection, org_id: Uuid) -> Result<(), DomainError> {
    // language=PostgreSQL
    sqlx::query!(
        "insert into audit_chain_heads (org_id, last_seq, last_hash) values ($1, 0, $2)",
        org_id,
        &GENESIS_HASH[..]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends an event to its organization's chain, inside the caller's transaction. Returns the
/// event's sequence number.
pub async fn record(
    conn: &mut PgConnection,
    event: NewEvent,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<i64, DomainError> {
    let seqs = record_many(conn, vec![(event, meta.clone())], now).await?;
    seqs.first().copied().ok_or_else(|| DomainError::Internal("no event recorded".into()))
}

/// Appends several events (of one or more organizations) in the caller's transaction, keeping
/// their order within each organization: one head lock and one multi-row insert per
/// organization. This is what lets hot paths batch their audit writes (group commit).
pub async fn record_many(
    conn: &mut PgConnection,
    events: Vec<(NewEvent, RequestMeta)>,
    now: OffsetDateTime,
) -> Result<Vec<i64>, DomainError> {
    let mut seqs = vec![0_i64; events.len()];
    let mut orgs: Vec<Uuid> = events.iter().map(|(e, _)| e.org_id).collect();
    // Lock heads in a fixed order so concurrent batches cannot deadlock.
    orgs.sort();
    orgs.dedup();
    let occurred_at_micros = micros(now);
    let occurred_at = from_micros(occurred_at_micros)?;
    for org_id in orgs {
        // language=PostgreSQL
        let head =
            sqlx::query!("select last_seq, last_hash from audit_chain_heads where org_id = $1 for update", org_id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(DomainError::NotFound)?;
        let mut rows = EventRows::default();
        let mut seq = head.last_seq;
        let mut prev_hash = head.last_hash;
        for (index, (event, meta)) in events.iter().enumerate().filter(|(_, (e, _))| e.org_id == org_id) {
            seq += 1;
            seqs[index] = seq;
            let id = Uuid::new_v4();
            let details = canonical_json(&event.details);
            let actor_id = event.actor.id();
            let actor_label = event.actor.label();
            let fields = ChainFields {
                org_id,
                seq,
                id,
                occurred_at_micros,
                actor_type: event.actor.kind(),
                actor_id: actor_id.as_deref(),
                actor_label: &actor_label,
                action: &event.action,
                target_type: event.target.as_ref().map(|t| t.kind.as_ref()),
                target_id: event.target.as_ref().map(|t| t.id.as_str()),
                target_label: event.target.as_ref().map(|t| t.label.as_str()),
                outcome: event.outcome.as_str(),
                ip: meta.ip.as_deref(),
                user_agent: meta.user_agent.as_deref(),
                request_id: meta.request_id.as_deref(),
                details: &details,
            };
            let hash = chain_hash(&prev_hash, &fields).to_vec();
            rows.push(&fields, &prev_hash, &hash);
            let (person_id, agent_id) = fields.subjects();
            rows.person_id.push(person_id);
            rows.agent_id.push(agent_id);
            prev_hash = hash;
        }
        // language=PostgreSQL
        sqlx::query!(
            "insert into audit_events (org_id, seq, id, occurred_at, actor_type, actor_id, actor_label, action,
                                       target_type, target_id, target_label, outcome, ip, user_agent, request_id,
                                       details, prev_hash, hash, person_id, agent_id)
             select $1, seq, id, $2, actor_type, actor_id, actor_label, action, target_type, target_id, target_label,
                    outcome, ip, user_agent, request_id, details, prev_hash, hash, person_id, agent_id
             from unnest($3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                         $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bytea[], $18::bytea[],
                         $19::uuid[], $20::uuid[])
                  as t(seq, id, actor_type, actor_id, actor_label, action, target_type, target_id, target_label,
                       outcome, ip, user_agent, request_id, details, prev_hash, hash, person_id, agent_id)",
            org_id,
            occurred_at,
            &rows.seq,
            &rows.id,
            &rows.actor_type as &[String],
            &rows.actor_id as &[Option<String>],
            &rows.actor_label as &[String],
            &rows.action as &[String],
            &rows.target_type as &[Option<String>],
            &rows.target_id as &[Option<String>],
            &rows.target_label as &[Option<String>],
            &rows.outcome as &[String],
            &rows.ip as &[Option<String>],
            &rows.user_agent as &[Option<String>],
            &rows.request_id as &[Option<String>],
            &rows.details as &[String],
            &rows.prev_hash as &[Vec<u8>],
            &rows.hash as &[Vec<u8>],
            &rows.person_id as &[Option<Uuid>],
            &rows.agent_id as &[Option<Uuid>]
        )
        .execute(&mut *conn)
        .await?;
        // language=PostgreSQL
        sqlx::query!(
            "update audit_chain_heads set last_seq = $2, last_hash = $3 where org_id = $1",
            org_id,
            seq,
            prev_hash
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(seqs)
}

/// Column arrays for one multi-row insert.
#[derive(Default)]
struct EventRows {
    seq: Vec<i64>,
    id: Vec<Uuid>,
    actor_type: Vec<String>,
    actor_id: Vec<Option<String>>,
    actor_label: Vec<String>,
    action: Vec<String>,
    target_type: Vec<Option<String>>,
    target_id: Vec<Option<String>>,
    target_label: Vec<Option<String>>,
    outcome: Vec<String>,
    ip: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    request_id: Vec<Option<String>>,
    details: Vec<String>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    person_id: Vec<Option<Uuid>>,
    agent_id: Vec<Option<Uuid>>,
}

impl EventRows {
    fn push(&mut self, f: &ChainFields<'_>, prev_hash: &[u8], hash: &[u8]) {
        let owned = |v: Option<&str>| v.map(str::to_string);
        self.seq.push(f.seq);
        self.id.push(f.id);
        self.actor_type.push(f.actor_type.to_string());
        self.actor_id.push(owned(f.actor_id));
        self.actor_label.push(f.actor_label.to_string());
        self.action.push(f.action.to_string());
        self.target_type.push(owned(f.target_type));
        self.target_id.push(owned(f.target_id));
        self.target_label.push(owned(f.target_label));
        self.outcome.push(f.outcome.to_string());
        self.ip.push(owned(f.ip));
        self.user_agent.push(owned(f.user_agent));
        self.request_id.push(owned(f.request_id));
        self.details.push(f.details.to_string());
        self.prev_hash.push(prev_hash.to_vec());
        self.hash.push(hash.to_vec());
    }
}

/// JSON with object keys sorted at every depth and no insignificant spaces. Sorted by hand:
/// serde_json's map keeps insertion order when any crate in the build enables `preserve_order`.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    write(value, out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// One stored event, with every hashed field.
pub struct StoredEvent {
    pub seq: i64,
    pub id: Uuid,
    pub occurred_at: OffsetDateTime,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub person_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
}

impl StoredEvent {
    /// The fields the chain hash covers.
    pub fn chain_fields(&self, org_id: Uuid) -> ChainFields<'_> {
        ChainFields {
            org_id,
            seq: self.seq,
            id: self.id,
            occurred_at_micros: micros(self.occurred_at),
            actor_type: &self.actor_type,
            actor_id: self.actor_id.as_deref(),
            actor_label: &self.actor_label,
            action: &self.action,
            target_type: self.target_type.as_deref(),
            target_id: self.target_id.as_deref(),
            target_label: self.target_label.as_deref(),
            outcome: &self.outcome,
            ip: self.ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            request_id: self.request_id.as_deref(),
            details: &self.details,
        }
    }
}

/// Events of an organization in sequence order, from `after_seq + 1`, at most `limit`: what
/// verification, checkpoints, exports and log streams read.
pub async fn events_after(
    db: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        StoredEvent,
        "select seq, id, occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id,
                target_label, outcome, ip, user_agent, request_id, details, prev_hash, hash, person_id, agent_id
         from audit_events where org_id = $1 and seq > $2 order by seq limit $3",
        org_id,
        after_seq,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// Admin-facing integrity check.
/// Permission: read audit.
pub async fn verify_for_admin(
    pool: &PgPool,
    keys: &checkpoints::AuditKeys,
    admin: &AdminSession,
) -> Result<ChainStatus, DomainError> {
    admin.require(Permission::ReadAudit)?;
    verify(pool, keys, admin.org_id()).await
}

/// The log's size, newest checkpoint and retention, for the Audit page's integrity panel.
/// Permission: read audit.
pub async fn integrity(pool: &PgPool, admin: &AdminSession) -> Result<AuditIntegrity, DomainError> {
    admin.require(Permission::ReadAudit)?;
    // language=PostgreSQL
    let row = sqlx::query!(
        "select h.last_seq, h.pruned_through, o.audit_retention_days
         from audit_chain_heads h join organizations o on o.id = h.org_id where h.org_id = $1",
        admin.org_id()
    )
    .fetch_one(pool)
    .await?;
    Ok(AuditIntegrity {
        events: row.last_seq,
        checkpoint: checkpoints::latest(pool, admin.org_id()).await?.map(|c| c.checkpoint),
        pruned_through: row.pruned_through,
        retention_days: row.audit_retention_days,
    })
}

/// An event's inclusion proof for the portal, checked here against the trusted keys.
/// Permission: read audit.
pub async fn proof_for_admin(
    pool: &PgPool,
    keys: &checkpoints::AuditKeys,
    admin: &AdminSession,
    seq: i64,
) -> Result<(InclusionProof, bool), DomainError> {
    admin.require(Permission::ReadAudit)?;
    let proof = checkpoints::inclusion(pool, admin.org_id(), seq, None).await?;
    let verified = checkpoints::inclusion_verifies(&proof, keys);
    Ok((proof, verified))
}

pub const PAGE_SIZE: i64 = 50;

/// A filter made ready for SQL: patterns escaped, times parsed, person and agent resolved.
#[derive(Clone, Debug)]
pub struct ResolvedFilter {
    action: Option<String>,
    outcome: Option<String>,
    actor: Option<String>,
    person: Option<String>,
    agent: Option<String>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
}

impl ResolvedFilter {
    pub fn new(filter: &AuditFilter) -> Result<ResolvedFilter, DomainError> {
        let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let outcome = text(&filter.outcome);
        if let Some(outcome) = &outcome {
            if outcome != "success" && outcome != "failure" {
                return Err(DomainError::invalid("outcome must be success or failure"));
            }
        }
        Ok(ResolvedFilter {
            action: text(&filter.action),
            outcome,
            actor: text(&filter.actor).map(|s| format!("%{}%", escape_like(&s))),
            person: text(&filter.person).map(|s| s.to_lowercase()),
            agent: text(&filter.agent),
            from: parse_time_bound(&filter.from, false)?,
            to: parse_time_bound(&filter.to, true)?,
        })
    }
}

/// `YYYY-MM-DD` (a whole day), `YYYY-MM-DDTHH:MM[:SS]` (UTC, as a browser's datetime-local
/// input sends it) or RFC 3339. `end` makes a day or minute inclusive of its last instant.
fn parse_time_bound(input: &str, end: bool) -> Result<Option<OffsetDateTime>, DomainError> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{Date, Duration, PrimitiveDateTime};
    let input = input.trim();
    if input.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = OffsetDateTime::parse(input, &Rfc3339) {
        return Ok(Some(at));
    }
    if let Ok(day) = Date::parse(input, format_description!("[year]-[month]-[day]")) {
        let start = day.midnight().assume_utc();
        return Ok(Some(if end { start + Duration::days(1) - Duration::microseconds(1) } else { start }));
    }
    for (format, span) in [
        (format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"), Duration::seconds(1)),
        (format_description!("[year]-[month]-[day]T[hour]:[minute]"), Duration::minutes(1)),
    ] {
        if let Ok(at) = PrimitiveDateTime::parse(input, format) {
            let start = at.assume_utc();
            return Ok(Some(if end { start + span - Duration::microseconds(1) } else { start }));
        }
    }
    Err(DomainError::invalid(format!(
        "{input:?} is not a time: use YYYY-MM-DD, YYYY-MM-DDTHH:MM (UTC) or RFC 3339 (2026-12-01T09:30:00Z)"
    )))
}

/// One page of an organization's events, newest first, filtered (`actions` left empty: only the
/// Audit page needs that list, see `list_for_admin`).
pub async fn list(pool: &PgPool, org_id: Uuid, filter: &AuditFilter, limit: i64) -> Result<AuditPage, DomainError> {
    let limit = limit.clamp(1, 500);
    let resolved = ResolvedFilter::new(filter)?;
    let rows = filtered(pool, org_id, &resolved, filter.before_seq, limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    let events: Vec<AuditEventView> = rows.into_iter().take(limit as usize).map(view).collect();
    let next_before_seq = if has_more { events.last().map(|e| e.seq) } else { None };
    Ok(AuditPage { events, next_before_seq, actions: Vec::new() })
}

/// Filtered events, newest first, below `before_seq` (the Audit page and the API's list).
pub async fn filtered(
    pool: &PgPool,
    org_id: Uuid,
    filter: &ResolvedFilter,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<StoredEvent>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        StoredEvent,
        "select seq, id, occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id,
                target_label, outcome, ip, user_agent, request_id, details, prev_hash, hash, person_id, agent_id
         from audit_events
         where org_id = $1
           and ($3::text is null or action = $3)
           and ($4::text is null or outcome = $4)
           and ($5::text is null or actor_label ilike $5 or target_label ilike $5)
           and ($6::text is null or actor_label = $6
                or person_id in (select id from people where org_id = $1 and (email = $6 or id::text = $6)))
           and ($7::text is null
                or agent_id in (select id from agents where org_id = $1
                                and (id::text = $7 or client_id = $7 or lower(name) = lower($7))))
           and ($8::timestamptz is null or occurred_at >= $8)
           and ($9::timestamptz is null or occurred_at <= $9)
           and ($2::bigint is null or seq < $2)
         order by seq desc
         limit $10",
        org_id,
        before_seq,
        filter.action,
        filter.outcome,
        filter.actor,
        filter.person,
        filter.agent,
        filter.from,
        filter.to,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Filtered events, oldest first, above `after_seq` (exports read the log in its order).
pub async fn filtered_in_order(
    pool: &PgPool,
    org_id: Uuid,
    filter: &ResolvedFilter,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, DomainError> {
    // language=PostgreSQL
    Ok(sqlx::query_as!(
        StoredEvent,
        "select seq, id, occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id,
                target_label, outcome, ip, user_agent, request_id, details, prev_hash, hash, person_id, agent_id
         from audit_events
         where org_id = $1
           and ($3::text is null or action = $3)
           and ($4::text is null or outcome = $4)
           and ($5::text is null or actor_label ilike $5 or target_label ilike $5)
           and ($6::text is null or actor_label = $6
                or person_id in (select id from people where org_id = $1 and (email = $6 or id::text = $6)))
           and ($7::text is null
                or agent_id in (select id from agents where org_id = $1
                                and (id::text = $7 or client_id = $7 or lower(name) = lower($7))))
           and ($8::timestamptz is null or occurred_at >= $8)
           and ($9::timestamptz is null or occurred_at <= $9)
           and seq > $2
         order by seq
         limit $10",
        org_id,
        after_seq,
        filter.action,
        filter.outcome,
        filter.actor,
        filter.person,
        filter.agent,
        filter.from,
        filter.to,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Admin-facing list, with the actions the filter can offer.
/// Permission: read audit.
pub async fn list_for_admin(
    pool: &PgPool,
    admin: &AdminSession,
    filter: &AuditFilter,
) -> Result<AuditPage, DomainError> {
    admin.require(Permission::ReadAudit)?;
    let mut page = list(pool, admin.org_id(), filter, PAGE_SIZE).await?;
    // language=PostgreSQL
    page.actions = sqlx::query_scalar!(
        "select distinct action from audit_events where org_id = $1 order by action",
        admin.org_id()
    )
    .fetch_all(pool)
    .await?;
    Ok(page)
}

/// The newest events by or about one actor or target (an agent's page), in one query.
pub async fn about(pool: &PgPool, org_id: Uuid, subject: &str, limit: i64) -> Result<Vec<AuditEventView>, DomainError> {
    // language=PostgreSQL
    let rows = sqlx::query_as!(
        StoredEvent,
        "select seq, id, occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id,
                target_label, outcome, ip, user_agent, request_id, details, prev_hash, hash, person_id, agent_id
         from audit_events where org_id = $1 and (target_id = $2 or actor_id = $2) order by seq desc limit $3",
        org_id,
        subject,
        limit.clamp(1, 500)
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(view).collect())
}

/// One event of the caller's organization by id (another organization's id is "not found").
/// Permission: read audit.
pub async fn get(pool: &PgPool, admin: &AdminSession, id: Uuid) -> Result<AuditEventView, DomainError> {
    admin.require(Permission::ReadAudit)?;
    get_in(pool, admin.org_id(), id).await
}

/// One event of an organization by id.
pub async fn get_in(pool: &PgPool, org_id: Uuid, id: Uuid) -> Result<AuditEventView, DomainError> {
    // language=PostgreSQL
    sqlx::query_as!(
        StoredEvent,
        "select seq, id, occurred_at, actor_type, actor_id, actor_label, action, target_type, target_id,
                target_label, outcome, ip, user_agent, request_id, details, prev_hash, hash, person_id, agent_id
         from audit_events where org_id = $1 and id = $2",
        org_id,
        id
    )
    .fetch_optional(pool)
    .await?
    .map(view)
    .ok_or(DomainError::NotFound)
}

/// An event as the portal, the API, exports and log streams show it.
pub fn view(event: StoredEvent) -> AuditEventView {
    AuditEventView {
        seq: event.seq,
        id: event.id,
        occurred_at: event.occurred_at,
        actor_type: event.actor_type,
        actor_id: event.actor_id,
        actor_label: event.actor_label,
        action: event.action,
        target_type: event.target_type,
        target_id: event.target_id,
        target_label: event.target_label,
        outcome: event.outcome,
        ip: event.ip,
        user_agent: event.user_agent,
        request_id: event.request_id,
        details: serde_json::from_str(&event.details).unwrap_or(serde_json::Value::Null),
        person_id: event.person_id,
        agent_id: event.agent_id,
        prev_hash: hex::encode(&event.prev_hash),
        hash: hex::encode(&event.hash),
    }
}

fn escape_like(input: &str) -> String {
    input.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(details: &str) -> ChainFields<'_> {
        ChainFields {
            org_id: Uuid::nil(),
            seq: 1,
            id: Uuid::nil(),
            occurred_at_micros: 1_700_000_000_000_000,
            actor_type: "admin",
            actor_id: None,
            actor_label: "dana@acme.example",
            action: "login.succeeded",
            target_type: None,
            target_id: None,
            target_label: None,
            outcome: "success",
            ip: Some("127.0.0.1"),
            user_agent: None,
            request_id: None,
            details,
        }
    }

    #[test]
    fn hash_covers_every_field_and_the_previous_hash() {
        let base = chain_hash(&GENESIS_HASH, &fields("{}"));
        assert_eq!(base, chain_hash(&GENESIS_HASH, &fields("{}")), "deterministic");
        assert_ne!(base, chain_hash(&[1; 32], &fields("{}")), "previous hash");
        assert_ne!(base, chain_hash(&GENESIS_HASH, &fields("{\"a\":1}")), "details");
        let mut moved = fields("{}");
        moved.actor_id = Some("");
        assert_ne!(base, chain_hash(&GENESIS_HASH, &moved), "absent differs from empty");
        let mut shifted = fields("{}");
        shifted.actor_label = "dana@acme.examplelogin.succeeded";
        shifted.action = "";
        assert_ne!(base, chain_hash(&GENESIS_HASH, &shifted), "length prefixes stop field shifting");
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let value = serde_json::json!({"b": 1, "a": {"d": [1, 2], "c": null}});
        assert_eq!(canonical_json(&value), r#"{"a":{"c":null,"d":[1,2]},"b":1}"#);
    }
}
