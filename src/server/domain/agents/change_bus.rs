//! The cross-node change bus: PostgreSQL `LISTEN/NOTIFY` on one channel. A change that can
//! shorten an agent's authority is announced inside the transaction that makes it (so it is
//! delivered exactly when, and only if, the change commits); every node listens and hands each
//! change to its caches. A dropped connection may have missed changes, so the subscriber is told
//! to reset everything it holds. A connection can also die silently (a network partition, a
//! backend killed): every node announces a heartbeat every `HEARTBEAT`, and a listener that hears
//! nothing for three of them treats its connection as dropped. From the moment a drop is seen
//! until the node has subscribed again *and then* reloaded, the subscriber is out of sync and
//! must not answer from its caches.

use crate::server::domain::DomainError;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use std::future::Future;

pub const CHANNEL: &str = "mandate_changes";

/// How often each node says it is alive on the bus.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(2);

/// A listener that hears nothing for this long has lost its connection, even if it was not told.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(6);

/// A change other nodes must hear about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// An agent's status, credentials or approvals changed.
    Agent { org_id: uuid::Uuid, agent_id: uuid::Uuid },
    /// A person was deactivated or reactivated, or their groups changed.
    Person { org_id: uuid::Uuid, person_id: uuid::Uuid },
    /// Something that can affect every agent of an organization (ceilings).
    Organization { org_id: uuid::Uuid },
    /// Tokens of an organization were revoked.
    Tokens { org_id: uuid::Uuid },
    /// Signing keys rotated.
    Keys,
    /// A node is alive; proves the listener's subscription still delivers.
    Heartbeat,
}

/// Announces a change inside the caller's transaction (delivered at commit).
pub async fn announce(conn: &mut PgConnection, change: &Change) -> Result<(), DomainError> {
    let payload = serde_json::to_string(change).map_err(|err| DomainError::Internal(err.to_string()))?;
    // language=PostgreSQL
    sqlx::query!("select pg_notify($1, $2)", CHANNEL, payload).execute(conn).await?;
    Ok(())
}

/// What a node does with the changes it hears.
pub trait Subscriber: Send + Sync + 'static {
    /// Applies one change; an error makes the bus ask for a reset.
    fn apply(&self, change: &Change) -> impl Future<Output = Result<(), DomainError>> + Send;
    /// The subscription was lost: stop answering from the caches until `reset` returns.
    fn out_of_sync(&self);
    /// Forgets everything that a missed change could have made stale and reloads; returns when
    /// done, in sync again. Called only once the bus is subscribed again.
    fn reset(&self) -> impl Future<Output = ()> + Send;
}

/// Connects and subscribes, so that nothing committed after this returns is missed.
pub async fn connect(pool: &PgPool) -> Result<PgListener, DomainError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hands every change to `subscriber` in the background, and announces this node's heartbeat,
/// until the pool closes.
pub fn spawn_listener(pool: PgPool, mut listener: PgListener, subscriber: impl Subscriber) {
    tokio::spawn(heartbeat(pool.clone()));
    tokio::spawn(async move {
        // Stop (and hand the connection back) when the pool closes, so shutdown is prompt.
        let closed = pool.close_event();
        tokio::pin!(closed);
        loop {
            let received = tokio::select! {
                _ = &mut closed => break,
                received = tokio::time::timeout(SILENCE, listener.try_recv()) => received,
            };
            let lost = match received {
                Ok(Ok(Some(notification))) => {
                    match serde_json::from_str::<Change>(notification.payload()) {
                        Ok(Change::Heartbeat) => {}
                        Ok(change) => {
                            if let Err(err) = subscriber.apply(&change).await {
                                tracing::error!(error = %err, "could not apply a mandate change; resetting the cache");
                                subscriber.out_of_sync();
                                subscriber.reset().await;
                            }
                        }
                        Err(err) => tracing::warn!(error = %err, "ignored a malformed mandate notification"),
                    }
                    continue;
                }
                Ok(Ok(None)) => "the connection dropped",
                Ok(Err(_)) if pool.is_closed() => break,
                Ok(Err(_)) => "the listener failed",
                Err(_) => "no heartbeat arrived",
            };
            // Whatever was announced since the drop is lost: stop trusting the caches, subscribe
            // on a fresh connection, and only then reload (a reload before subscribing could
            // miss a change committed in between, for good).
            tracing::warn!(reason = lost, "mandate listener lost its subscription; resubscribing");
            subscriber.out_of_sync();
            listener = loop {
                match connect(&pool).await {
                    Ok(fresh) => break fresh,
                    Err(_) if pool.is_closed() => return,
                    Err(err) => {
                        tracing::error!(error = %err, "mandate listener cannot subscribe; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            };
            subscriber.reset().await;
        }
    });
}

/// Announces `Change::Heartbeat` every `HEARTBEAT`, until the pool closes.
async fn heartbeat(pool: PgPool) {
    let mut every = tokio::time::interval(HEARTBEAT);
    while !pool.is_closed() {
        every.tick().await;
        if let Ok(mut conn) = pool.acquire().await {
            let _ = announce(&mut conn, &Change::Heartbeat).await;
        }
    }
}
