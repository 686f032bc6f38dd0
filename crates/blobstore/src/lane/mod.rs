//! The writer lane: the only path by which anything writes to the database.
//!
//! Callers pass [`admission`](self) (bounded per class by requests and bytes), their request
//! is queued in the [`scheduler`], and one writer thread ([`writer`]) owns the only read-write
//! connection, fills batches fairly up to a budget and acknowledges each request only after
//! the `COMMIT` that contains it returned.

mod admission;
pub(crate) mod guard;
pub(crate) mod request;
mod scheduler;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

pub(crate) use request::{Ack, Work};
pub use request::{StagedBlob, StagedOp};

use crate::checkpoint::Checkpointer;
use crate::config::{Config, Priority};
use crate::error::{Error, Result};
use crate::stats::StatsCollector;
use admission::Admission;
use request::Request;
use scheduler::{Pushed, Scheduler};

/// State shared by submitters and the writer thread.
pub(crate) struct Shared {
    queue: Mutex<QueueState>,
    /// Signalled when work is queued or the lane is asked to stop.
    wake: Condvar,
    admission: [Admission; 3],
    stats: Arc<StatsCollector>,
    /// Batches committed so far. Only the writer thread adds to it (once per committed
    /// batch, before acking its requests); a request notes it when admitted, so the batch
    /// that commits the request knows how many committed in between (the scheduler's
    /// promises, counted by the lane itself: see `GroupStats::queue_wait_batches`).
    committed: AtomicU64,
}

struct QueueState {
    scheduler: Scheduler,
    /// Set by `close`: no new requests; the writer drains what is queued, then exits.
    closed: bool,
}

/// Handle to the writer lane.
pub(crate) struct Lane {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What to submit: one request's work and its accounting.
pub(crate) struct Submission {
    pub work: Work,
    pub bytes: usize,
    pub blobs: usize,
}

impl Lane {
    /// Starts the writer thread on `conn`, the store's only read-write connection.
    pub fn start(
        conn: rusqlite::Connection,
        config: &Config,
        stats: Arc<StatsCollector>,
        checkpointer: Arc<Checkpointer>,
    ) -> Result<Lane> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(QueueState {
                scheduler: Scheduler::new(config.min_class_share, config.fairness_quantum),
                closed: false,
            }),
            wake: Condvar::new(),
            admission: Priority::ALL.map(|_| Admission::new(config.queue)),
            stats,
            committed: AtomicU64::new(0),
        });
        let writer = writer::Writer::new(conn, shared.clone(), config.batch, checkpointer);
        let thread = std::thread::Builder::new()
            .name("seedbank-lane".into())
            .spawn(move || writer.run())?;
        Ok(Lane {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Admits one request (waiting for room up to `deadline`) and returns the receiver of
    /// its acknowledgement. Dropping the receiver before the lane reaches the request
    /// cancels it: nothing of it is written.
    ///
    /// The request is *admitted* when it enters the scheduler, under the queue lock, once
    /// its class's queue had room for it: the point from which the scheduler's promises
    /// (an interactive request waits about one batch, a new source joins the round robin at
    /// once) are counted. What the caller did before (hashing, staging, waiting for room)
    /// and after (waking up to take its ack) is not the scheduler's, and is not counted.
    ///
    /// # Errors
    /// [`Error::Overloaded`] past the deadline, [`Error::Closed`] after `close`.
    pub async fn submit(
        &self,
        sub: Submission,
        opts: &crate::config::PutOptions,
    ) -> Result<oneshot::Receiver<Ack>> {
        let admission = &self.shared.admission[opts.priority.index()];
        let permits = admission.acquire(sub.bytes, opts.deadline).await?;
        let (ack, rx) = oneshot::channel();
        // Only app writes coalesce: every blob asked for is stored.
        let coalesce_key = match sub.work {
            Work::App(_) => opts.coalesce_key.clone(),
            Work::Blobs(_) => None,
        };
        let mut req = Request {
            class: opts.priority,
            source: opts.source.clone(),
            work: sub.work,
            bytes: sub.bytes,
            blobs: sub.blobs,
            coalesce_key,
            enqueued: std::time::Instant::now(),
            admitted_after: 0,
            ack,
            byte_permits: permits.bytes(),
        };
        {
            let mut q = self.shared.queue.lock();
            if q.closed {
                return Err(Error::Closed); // `permits` drops here and returns the room.
            }
            permits.keep();
            req.admitted_after = self.shared.committed.load(Relaxed);
            if let Pushed::Replaced(old) = q.scheduler.push(req) {
                self.shared.release(&old);
                self.shared.stats.record_coalesced(old.class, &old.source);
                let _ = old.ack.send(Err(Error::Superseded));
            }
        }
        self.shared.wake.notify_one();
        Ok(rx)
    }

    /// Queued requests and bytes per class (for stats).
    pub fn queued(&self) -> [(usize, usize); 3] {
        let q = self.shared.queue.lock();
        Priority::ALL.map(|p| q.scheduler.queued(p))
    }

    /// Stops admission, lets the writer drain and commit everything queued, and waits for
    /// the writer thread to exit. Idempotent.
    pub fn close(&self) {
        self.shared.queue.lock().closed = true;
        for a in &self.shared.admission {
            a.close();
        }
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            if thread.join().is_err() {
                tracing::error!("writer lane thread panicked");
            }
        }
    }
}

impl Shared {
    /// Returns a finished or dropped request's room to its class's admission queue.
    fn release(&self, req: &Request) {
        self.admission[req.class.index()].release(req.byte_permits);
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.close();
    }
}
