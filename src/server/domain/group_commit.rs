//! Group commit: many requests, one transaction. A request that must be on disk before it is
//! answered (an issued token, a reported agent action) would otherwise cost one fsync each,
//! capping throughput at the disk's flush rate. Requests queue here; one writer task takes
//! whatever has queued (up to a batch), writes it in one transaction, commits, and then answers
//! every waiting request with its own result.

use crate::server::domain::DomainError;
use sqlx::PgPool;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

struct Pending<T, R> {
    item: T,
    done: oneshot::Sender<Result<R, String>>,
}

/// A queue in front of one batch writer.
pub struct GroupCommit<T, R> {
    name: &'static str,
    sender: mpsc::Sender<Pending<T, R>>,
}

impl<T, R> Clone for GroupCommit<T, R> {
    fn clone(&self) -> Self {
        GroupCommit { name: self.name, sender: self.sender.clone() }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts the writer task. `write` gets a batch in arrival order and returns one result per
    /// item, in the same order, after its transaction committed.
    pub fn start<W, F>(name: &'static str, pool: PgPool, max_batch: usize, write: W) -> Self
    where
        W: Fn(PgPool, Vec<T>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<R>, DomainError>> + Send,
    {
        let (sender, mut receiver) = mpsc::channel::<Pending<T, R>>(max_batch * 8);
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match receiver.try_recv() {
                        Ok(entry) => batch.push(entry),
                        Err(_) => break,
                    }
                }
                let (items, waiting): (Vec<T>, Vec<_>) = batch.into_iter().map(|p| (p.item, p.done)).unzip();
                let count = items.len();
                match write(pool.clone(), items).await {
                    Ok(results) if results.len() == count => {
                        for (done, result) in waiting.into_iter().zip(results) {
                            let _ = done.send(Ok(result));
                        }
                    }
                    outcome => {
                        let message = match outcome {
                            Err(err) => err.to_string(),
                            Ok(_) => "the writer returned the wrong number of results".to_string(),
                        };
                        tracing::error!(writer = name, error = %message, records = count, "group commit failed");
                        for done in waiting {
                            let _ = done.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        GroupCommit { name, sender }
    }

    /// Queues `item` and waits until its batch committed.
    pub async fn submit(&self, item: T) -> Result<R, DomainError> {
        let stopped = || DomainError::Internal(format!("the {} writer has stopped", self.name));
        let (done, wait) = oneshot::channel();
        self.sender.send(Pending { item, done }).await.map_err(|_| stopped())?;
        wait.await
            .map_err(|_| stopped())?
            .map_err(|err| DomainError::Internal(format!("writing to the {} failed: {err}", self.name)))
    }
}
