//! The unit of work: the one way state changes.
//!
//! An entry point builds a `Call` once (who is calling, from where, and when); a domain write
//! begins a `Work` from it, changes rows through `conn()`, records its audit event(s) with
//! `record`, announces what other nodes' caches must forget with `announce`, and ends with
//! `commit`, which commits and then applies the announced changes to this node's cache before
//! returning. Dropping a `Work` without committing rolls everything back, events and
//! announcements included, so no path can commit a change without its audit event reaching the
//! same transaction, or leave this node's cache behind a committed change.

use crate::model::Permission;
use crate::server::domain::actor::{Actor, Caller, RequestMeta};
use crate::server::domain::agents::change_bus::{self, Change};
use crate::server::domain::agents::mandate::Mandates;
use crate::server::domain::audit::{self, NewEvent};
use crate::server::domain::DomainError;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::borrow::Cow;
use time::OffsetDateTime;
use uuid::Uuid;

/// One call into the domain: who is calling, from where, and when. Built once by the entry
/// point and passed by value.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub caller: Caller<'a>,
    pub meta: &'a RequestMeta,
    pub now: OffsetDateTime,
}

impl<'a> Call<'a> {
    pub fn new(caller: Caller<'a>, meta: &'a RequestMeta, now: OffsetDateTime) -> Self {
        Call { caller, meta, now }
    }

    pub fn org_id(&self) -> Uuid {
        self.caller.org_id()
    }

    /// Fails unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), DomainError> {
        self.caller.require(permission)
    }

    /// Begins a unit of work in the caller's organization, audited as the caller.
    pub async fn begin(&self, pool: &PgPool) -> Result<Work<'a>, DomainError> {
        Work::begin(pool, self.org_id(), self.caller.actor(), self.meta, self.now).await
    }
}

/// One transaction with everything that must happen with it.
pub struct Work<'a> {
    tx: Transaction<'static, Postgres>,
    org_id: Uuid,
    actor: Actor,
    meta: &'a RequestMeta,
    now: OffsetDateTime,
    cache: Option<&'a Mandates>,
    changes: Vec<Change>,
    revoked_tokens: Vec<(Uuid, OffsetDateTime)>,
}

impl<'a> Work<'a> {
    /// Begins a unit of work for `actor` in one organization (entry points without a `Caller`:
    /// a directory, an agent, a sign-in).
    pub async fn begin(
        pool: &PgPool,
        org_id: Uuid,
        actor: Actor,
        meta: &'a RequestMeta,
        now: OffsetDateTime,
    ) -> Result<Work<'a>, DomainError> {
        Ok(Work {
            tx: pool.begin().await?,
            org_id,
            actor,
            meta,
            now,
            cache: None,
            changes: Vec::new(),
            revoked_tokens: Vec::new(),
        })
    }

    /// Begins a unit of work for Mandate's own bookkeeping rather than an organization's change:
    /// the token signing keys, sign-in attempts being used up, batched logs, checkpoints,
    /// delivery cursors. It has no audit chain of its own: `record` refuses (batches that carry
    /// audit events append them with `audit::record_many` on `conn()`).
    pub async fn system(pool: &PgPool, now: OffsetDateTime) -> Result<Work<'static>, DomainError> {
        static NO_REQUEST: RequestMeta = RequestMeta { ip: None, user_agent: None, request_id: None };
        Work::begin(pool, Uuid::nil(), Actor::Operator, &NO_REQUEST, now).await
    }

    /// The transaction's connection, for the change itself.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub fn org_id(&self) -> Uuid {
        self.org_id
    }

    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// An audit event by this work's actor in its organization, to fill in and `record`.
    pub fn event(&self, action: impl Into<Cow<'static, str>>) -> NewEvent {
        NewEvent::new(self.org_id, self.actor.clone(), action)
    }

    /// Appends an audit event in this transaction; returns its sequence number.
    pub async fn record(&mut self, event: NewEvent) -> Result<i64, DomainError> {
        if self.org_id.is_nil() {
            return Err(DomainError::Internal("Mandate's own bookkeeping has no audit chain".into()));
        }
        audit::record(&mut self.tx, event, self.meta, self.now).await
    }

    /// Announces a change to every node (delivered at commit) and remembers it for this node's
    /// cache, which `commit` updates.
    pub async fn announce(&mut self, cache: &'a Mandates, change: Change) -> Result<(), DomainError> {
        change_bus::announce(&mut self.tx, &change).await?;
        self.cache = Some(cache);
        self.changes.push(change);
        Ok(())
    }

    /// Marks tokens revoked in this node's cache once the transaction commits (their `Tokens`
    /// announcement tells the other nodes).
    pub fn tokens_revoked(&mut self, cache: &'a Mandates, tokens: Vec<(Uuid, OffsetDateTime)>) {
        self.cache = Some(cache);
        self.revoked_tokens.extend(tokens);
    }

    /// Records one event in a transaction of its own (events that accompany no other change,
    /// such as a failed sign-in or a sign-out).
    pub async fn record_alone(
        pool: &PgPool,
        event: NewEvent,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<i64, DomainError> {
        let mut work = Work::begin(pool, event.org_id, event.actor.clone(), meta, now).await?;
        let seq = work.record(event).await?;
        work.commit().await?;
        Ok(seq)
    }

    /// Commits, then brings this node's cache up to date before returning.
    pub async fn commit(self) -> Result<(), DomainError> {
        self.tx.commit().await?;
        if let Some(cache) = self.cache {
            if !self.revoked_tokens.is_empty() {
                cache.mark_revoked(&self.revoked_tokens);
            }
            for change in &self.changes {
                cache.apply(change);
            }
        }
        Ok(())
    }
}
