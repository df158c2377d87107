//! The one writer: settled calls — usage records with their charges — are written by a
//! single task in batches (group commit). When the first call of a batch arrives, the
//! writer waits `window` for more (by default a few milliseconds: a commit rewrites the same
//! hot pages whether it holds ten calls or a thousand), then commits everything queued;
//! whatever arrives during a commit goes into the next batch. With a zero window (sync
//! durability, where a response waits for its commit) nothing is delayed on purpose.

use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tollgate_store::calls::SettledCall;
use tollgate_store::{Store, StoreError};

/// The most calls written in one transaction.
pub(crate) const MAX_BATCH: usize = 2048;

/// A handle to the writer task: settled calls go in, batches are committed.
#[derive(Clone)]
pub struct Writer {
    inbox: mpsc::UnboundedSender<Write>,
}

impl Writer {
    /// Starts the writer task over `store`, gathering each batch for `window` (call from
    /// within a Tokio runtime).
    pub fn start(store: Store, window: Duration) -> Writer {
        let (inbox, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx, window));
        Writer { inbox }
    }

    /// Queues a settled call; `committed` is answered once its batch is committed.
    pub fn submit(&self, call: SettledCall, committed: Option<oneshot::Sender<()>>) {
        if self.inbox.send(Write::Call(Box::new(call), committed)).is_err() {
            tracing::error!("the writer has stopped; a settled call was not written");
        }
    }

    /// Waits until everything submitted before is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inbox.send(Write::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Queues a flush marker answered through `done` (for senders that cannot wait).
    pub(crate) fn flush_then(&self, done: oneshot::Sender<()>) {
        let _ = self.inbox.send(Write::Flush(done));
    }
}

/// What the writer is sent.
enum Write {
    /// A settled call, and who to tell once it is committed (`sync` durability).
    Call(Box<SettledCall>, Option<oneshot::Sender<()>>),
    /// Answer once everything sent before is committed.
    Flush(oneshot::Sender<()>),
}

/// Runs the writer until every sender is gone.
async fn run(store: Store, mut inbox: mpsc::UnboundedReceiver<Write>, window: Duration) {
    let mut batch: Vec<SettledCall> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = inbox.recv().await {
        if !window.is_zero() && matches!(first, Write::Call(..)) {
            // Sleeping (rather than waiting on the inbox) also spares every call's sender
            // from waking this task.
            tokio::time::sleep(window).await;
        }
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Write::Call(call, done) => {
                    batch.push(*call);
                    waiting.extend(done);
                }
                Write::Flush(done) => waiting.push(done),
            }
            if batch.len() < MAX_BATCH {
                next = inbox.try_recv().ok();
            }
        }
        commit(&store, &mut batch).await;
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Whether an error is the database being unreachable or busy (worth retrying as is),
/// rather than the database refusing what was sent.
fn transient(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx_error) => !matches!(sqlx_error, tollgate_store::SqlxError::Database(_)),
        _ => false,
    }
}

/// Writes `batch` (and empties it). While the database is unreachable the batch is retried
/// with a growing pause, for as long as it takes: calls are never dropped for an outage.
/// A batch the database refuses is written call by call, so one bad record cannot hold back
/// the others. Batches are idempotent (records are written once, by id), so a retry never
/// charges twice.
async fn commit(store: &Store, batch: &mut Vec<SettledCall>) {
    if batch.is_empty() {
        return;
    }
    match write(store, batch).await {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(error = %e, calls = batch.len(), "the database refused a batch of settled calls; writing them one by one");
            for call in batch.iter() {
                if let Err(e) = write(store, std::slice::from_ref(call)).await {
                    // Logged without content: the record's id and the error only. The call
                    // stays uncharged rather than risking a double charge.
                    tracing::error!(error = %e, request.id = %call.record.id, "a settled call could not be written");
                }
            }
        }
    }
    batch.clear();
}

/// Writes calls, retrying for as long as the database is unreachable.
async fn write(store: &Store, calls: &[SettledCall]) -> Result<(), StoreError> {
    let mut delay = Duration::from_millis(10);
    loop {
        match store.settle_calls(calls).await {
            Ok(settled) => {
                tracing::debug!(
                    calls = calls.len(),
                    records = settled.records,
                    transfers = settled.transfers,
                    "batch settled"
                );
                return Ok(());
            }
            Err(e) if transient(&e) => {
                tracing::warn!(error = %e, calls = calls.len(), "writing settled calls failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}
