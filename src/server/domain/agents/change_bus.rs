//! The cross-node change bus: PostgreSQL `LISTEN/NOTIFY` on one channel. A change that can
//! shorten an agent's authority is announced inside the transaction that makes it (so it is
//! delivered exactly when, and only if, the change commits); every node listens and hands each
//! change to its caches. A dropped connection may have missed changes, so the subscriber is told
//! to reset everything it holds.

use crate::server::domain::DomainError;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use std::future::Future;

pub const CHANNEL: &str = "mandate_changes";

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
    /// Forgets everything that a missed change could have made stale; returns when done.
    fn reset(&self) -> impl Future<Output = ()> + Send;
}

/// Connects and subscribes, so that nothing committed after this returns is missed.
pub async fn connect(pool: &PgPool) -> Result<PgListener, DomainError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hands every change to `subscriber` in the background, until the pool closes.
pub fn spawn_listener(pool: PgPool, mut listener: PgListener, subscriber: impl Subscriber) {
    tokio::spawn(async move {
        // Stop (and hand the connection back) when the pool closes, so shutdown is prompt.
        let closed = pool.close_event();
        tokio::pin!(closed);
        loop {
            let received = tokio::select! {
                _ = &mut closed => break,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => match serde_json::from_str::<Change>(notification.payload()) {
                    Ok(change) => {
                        if let Err(err) = subscriber.apply(&change).await {
                            tracing::error!(error = %err, "could not apply a mandate change; resetting the cache");
                            subscriber.reset().await;
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "ignored a malformed mandate notification"),
                },
                Ok(None) => {
                    // The connection dropped and was re-established: anything may have changed.
                    tracing::warn!("mandate listener reconnected; resetting the cache");
                    subscriber.reset().await;
                }
                Err(_) if pool.is_closed() => break,
                Err(err) => {
                    tracing::error!(error = %err, "mandate listener failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    subscriber.reset().await;
                }
            }
        }
    });
}
