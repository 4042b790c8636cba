//! The audit log (README: "Audit log"): who read what, when and from where, and who changed
//! what. Requests hand their events to a bounded queue and go on; one writer takes them off in
//! batches, one transaction each. Nothing is dropped: a full queue makes requests wait for
//! room (back-pressure), a batch that cannot be written is kept and retried, and a clean stop
//! writes what is queued before the process exits.

pub mod csv;
mod events;
pub mod filter;
mod retention;

use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use events::{Delivery, DownloadEvent, Route, change, download};
pub use retention::{keep_pruning, prune};

use crate::db::Db;
use crate::db::models::audit_event::{AuditEvent, NewEvent, PackedEvent};

/// Events waiting to be written, at most. Past it, requests wait for the writer.
const QUEUE: usize = 8192;
/// Events written in one transaction, at most.
const BATCH: usize = 2048;
/// How long the writer waits after the first event of a batch for more to come. Events are
/// visible this much later; a stop does not wait for it. Each commit writes the last page of
/// the table and of each index again, so fewer, bigger batches cost less per event: 100 ms
/// instead of 20 took a fifth off the writer's CPU per event at 4 KiB downloads.
const GATHER: Duration = Duration::from_millis(100);
/// How long a failed batch waits before it is tried again, doubling up to `MAX_RETRY_WAIT`.
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(100);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// At a stop, how long the writer keeps trying a batch the database refuses before it logs
/// the events instead (an error line each, so none is lost without a trace).
const STOP_GIVE_UP: Duration = Duration::from_secs(10);

/// Where requests put their events.
#[derive(Clone)]
pub struct Audit {
    queue: mpsc::Sender<PackedEvent>,
    /// `[audit] enabled`.
    enabled: bool,
}

/// The other end: started by `Writer::run`, stopped by `Stopper::stop`.
pub struct Writer {
    queue: mpsc::Receiver<PackedEvent>,
    stopping: watch::Receiver<bool>,
    db: Db,
}

pub struct Stopper {
    stopping: watch::Sender<bool>,
}

/// A queue and its writer into `db` (the audit database, `Db::audit`).
pub fn channel(db: Db, enabled: bool) -> (Audit, Writer, Stopper) {
    let (queue, receiver) = mpsc::channel(QUEUE);
    let (stop, stopping) = watch::channel(false);
    (
        Audit { queue, enabled },
        Writer {
            queue: receiver,
            stopping,
            db,
        },
        Stopper { stopping: stop },
    )
}

impl Audit {
    /// Queues `event`, waiting for room when the queue is full. Only a stopped writer makes
    /// this fail, and then the event is logged instead.
    pub async fn record(&self, event: NewEvent) {
        if !self.enabled {
            return;
        }
        if let Err(mpsc::error::SendError(event)) = self.queue.send(PackedEvent::pack(&event)).await
        {
            log_unwritten(&event, "the audit writer has stopped");
        }
    }
}

impl Stopper {
    /// Asks the writer to write what is queued and end.
    pub fn stop(&self) {
        let _ = self.stopping.send(true);
    }
}

impl Writer {
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let stopping = *self.stopping.borrow();
            if stopping {
                // No new event can come from a stopped server; take what is left.
                self.queue.close();
            }
            let received = tokio::select! {
                biased;
                n = self.queue.recv_many(&mut batch, BATCH) => n,
                _ = self.stopping.changed(), if !stopping => continue,
            };
            if received == 0 {
                // Closed and drained.
                return;
            }
            if !stopping && batch.len() < BATCH {
                // Let a batch gather: a writer that woke for every event cost each download a
                // thread wake-up, and each transaction a commit.
                tokio::time::sleep(GATHER).await;
                let room = BATCH - batch.len();
                while let Ok(event) = self.queue.try_recv() {
                    batch.push(event);
                    if batch.len() >= BATCH || batch.len() >= room + received {
                        break;
                    }
                }
            }
            self.write(&mut batch, stopping).await;
        }
    }

    /// Writes `batch` (and empties it), retrying until it is written; at a stop it gives up
    /// after `STOP_GIVE_UP` and logs the events.
    async fn write(&mut self, batch: &mut Vec<PackedEvent>, stopping: bool) {
        let mut wait = FIRST_RETRY_WAIT;
        let started = tokio::time::Instant::now();
        loop {
            // Shared with the try, not copied: a failed transaction leaves the batch to try
            // again.
            let events = std::sync::Arc::new(std::mem::take(batch));
            let written = events.clone();
            let result = self
                .db
                .run_uncached(move |c| AuditEvent::insert_packed(c, &written))
                .await;
            // The try has ended (its closure is dropped), so the batch is ours alone again.
            *batch = std::sync::Arc::try_unwrap(events).unwrap_or_else(|shared| (*shared).clone());
            match result {
                Ok(()) => {
                    batch.clear();
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = batch.len(), "writing audit events failed; retrying");
                }
            }
            let stopping = stopping || *self.stopping.borrow();
            if stopping && started.elapsed() >= STOP_GIVE_UP {
                for event in batch.drain(..) {
                    log_unwritten(&event, "the database refused it until the stop");
                }
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY_WAIT);
        }
    }
}

fn log_unwritten(event: &PackedEvent, why: &str) {
    tracing::error!(target: "private_media::audit", why, event = ?event, "audit event not written");
}
