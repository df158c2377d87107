//! The one writer: settled calls — usage records with their charges — are written by a
//! single task in batches (group commit). When the first call of a batch arrives, the
//! writer waits `window` for more (by default a few milliseconds: a commit rewrites the same
//! hot pages whether it holds ten calls or a thousand), then commits everything queued;
//! whatever arrives during a commit goes into the next batch. With a zero window (sync
//! durability, where a response waits for its commit) nothing is delayed on purpose. The
//! usage records of calls refused once their key was known go the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tollgate_store::calls::{SettledCall, UsageRecord};
use tollgate_store::{Store, StoreError};

/// The most calls written in one transaction.
pub(crate) const MAX_BATCH: usize = 2048;

/// A handle to the writer task: settled calls go in, batches are committed.
#[derive(Clone)]
pub struct Writer {
    inbox: mpsc::UnboundedSender<Write>,
    /// How far behind the writer is (the meter counts calls in, the writer out).
    backlog: Arc<Backlog>,
}

/// Calls the gateway finished and the writer has not committed yet, and how old the oldest
/// of them may be. Times are microseconds since the gateway started.
#[derive(Debug)]
pub(crate) struct Backlog {
    epoch: Instant,
    /// Finished calls not yet committed.
    uncommitted: AtomicUsize,
    /// Every call that reached the writer before this time is committed.
    committed_through: AtomicU64,
    /// When the count of uncommitted calls last rose from zero.
    pending_since: AtomicU64,
}

impl Backlog {
    fn new() -> Backlog {
        Backlog {
            epoch: Instant::now(),
            uncommitted: AtomicUsize::new(0),
            committed_through: AtomicU64::new(0),
            pending_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Counts a finished call in; answers whether the oldest call still waiting for its
    /// commit is older than `max_lag` (the writer is behind).
    pub(crate) fn finished(&self, max_lag: Duration) -> bool {
        let now = self.now();
        if self.uncommitted.fetch_add(1, Ordering::AcqRel) == 0 {
            self.pending_since.store(now, Ordering::Release);
            return false;
        }
        // No call waiting is older than the later of these two moments.
        let oldest = self.committed_through.load(Ordering::Acquire).max(self.pending_since.load(Ordering::Acquire));
        now.saturating_sub(oldest) > u64::try_from(max_lag.as_micros()).unwrap_or(u64::MAX)
    }
}

impl Writer {
    /// Starts the writer over `store`, gathering each batch for `window`. It runs on a
    /// thread of its own: a batch is a dozen round trips to the database, and on the
    /// runtime that serves the calls each would wait behind them, so under load a commit
    /// took tens of milliseconds of queueing rather than of writing.
    pub fn start(store: Store, window: Duration) -> std::io::Result<Writer> {
        let (inbox, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::new());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let behind = backlog.clone();
        std::thread::Builder::new()
            .name("tollgate-writer".into())
            .spawn(move || runtime.block_on(run(store, rx, window, behind)))?;
        Ok(Writer { inbox, backlog })
    }

    /// Queues a settled call; `committed` is answered once its batch is committed.
    pub fn submit(&self, call: SettledCall, committed: Option<oneshot::Sender<()>>) {
        self.send_call(call, committed, false);
    }

    /// Queues a settled call; `ends` when it is the last (or only) settled call of a call
    /// the meter counted in [`Writer::backlog`].
    pub(crate) fn send_call(&self, call: SettledCall, committed: Option<oneshot::Sender<()>>, ends: bool) {
        if self.inbox.send(Write::Call(Box::new(call), committed, ends)).is_err() {
            tracing::error!("the writer has stopped; a settled call was not written");
        }
    }

    /// The calls finished and not yet committed.
    pub(crate) fn backlog(&self) -> Arc<Backlog> {
        self.backlog.clone()
    }

    /// Queues the usage record of a call refused once its key was known (free; written in
    /// the next batch, never waited for).
    pub(crate) fn refused(&self, record: UsageRecord) {
        if self.inbox.send(Write::Refused(Box::new(record))).is_err() {
            tracing::error!("the writer has stopped; a refused call was not recorded");
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
    /// A settled call, who to tell once it is committed (`sync` durability), and whether it
    /// ends a call counted as uncommitted.
    Call(Box<SettledCall>, Option<oneshot::Sender<()>>, bool),
    /// A refused call's usage record.
    Refused(Box<UsageRecord>),
    /// Answer once everything sent before is committed.
    Flush(oneshot::Sender<()>),
}

/// Runs the writer until every sender is gone.
async fn run(store: Store, mut inbox: mpsc::UnboundedReceiver<Write>, window: Duration, backlog: Arc<Backlog>) {
    let mut batch = Batch::default();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut ending = 0;
    while let Some(first) = inbox.recv().await {
        if !window.is_zero() && matches!(first, Write::Call(..) | Write::Refused(_)) {
            // Sleeping (rather than waiting on the inbox) also spares every call's sender
            // from waking this task.
            tokio::time::sleep(window).await;
        }
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Write::Call(call, done, ends) => {
                    batch.calls.push(*call);
                    waiting.extend(done);
                    ending += usize::from(ends);
                }
                Write::Refused(record) => batch.refused.push(*record),
                Write::Flush(done) => waiting.push(done),
            }
            if batch.calls.len() + batch.refused.len() < MAX_BATCH {
                next = inbox.try_recv().ok();
            }
        }
        let closed = backlog.now();
        commit(&store, &mut batch).await;
        backlog.committed_through.fetch_max(closed, Ordering::AcqRel);
        backlog.uncommitted.fetch_sub(std::mem::take(&mut ending), Ordering::AcqRel);
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

/// What one commit writes.
#[derive(Default)]
struct Batch {
    calls: Vec<SettledCall>,
    refused: Vec<UsageRecord>,
}

/// Writes `batch` (and empties it). While the database is unreachable the batch is retried
/// with a growing pause, for as long as it takes: calls are never dropped for an outage.
/// A batch the database refuses is written call by call, so one bad record cannot hold back
/// the others. Batches are idempotent (records are written once, by id), so a retry never
/// charges twice.
async fn commit(store: &Store, batch: &mut Batch) {
    if batch.calls.is_empty() && batch.refused.is_empty() {
        return;
    }
    match write(store, &batch.calls, &batch.refused).await {
        Ok(()) => {}
        Err(e) => {
            let count = batch.calls.len() + batch.refused.len();
            tracing::warn!(error = %e, calls = count, "the database refused a batch of settled calls; writing them one by one");
            for call in &batch.calls {
                if let Err(e) = write(store, std::slice::from_ref(call), &[]).await {
                    // Logged without content: the record's id and the error only. The call
                    // stays uncharged rather than risking a double charge.
                    tracing::error!(error = %e, request.id = %call.record.id, "a settled call could not be written");
                }
            }
            for record in &batch.refused {
                if let Err(e) = write(store, &[], std::slice::from_ref(record)).await {
                    tracing::error!(error = %e, request.id = %record.id, "a refused call could not be recorded");
                }
            }
        }
    }
    batch.calls.clear();
    batch.refused.clear();
}

/// Writes calls and refusals, retrying for as long as the database is unreachable.
async fn write(store: &Store, calls: &[SettledCall], refused: &[UsageRecord]) -> Result<(), StoreError> {
    let mut delay = Duration::from_millis(10);
    loop {
        match store.settle_calls_and_refusals(calls, refused).await {
            Ok(settled) => {
                tracing::debug!(
                    calls = calls.len(),
                    refused = refused.len(),
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
