//! The writer thread: owns the only read-write connection and runs batches.
//!
//! A batch is one `BEGIN IMMEDIATE … COMMIT`. Requests are pulled from the scheduler one at a
//! time *inside* the transaction until the budget (blobs, bytes, hold time) is spent, so the
//! next batch is always chosen afresh. Each request runs under its own savepoint: a failing
//! request rolls back only itself. Acks go out only after `COMMIT` returned.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::request::{AppValue, Request, Work};
use super::Shared;
use crate::checkpoint::Checkpointer;
use crate::cid::multihash_key;
use crate::config::BatchBudget;
use crate::error::{Error, Result, SqlContext};
use crate::stats::RequestOutcome;

pub(super) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    budget: BatchBudget,
    checkpointer: Arc<Checkpointer>,
}

/// A request executed in the open transaction, waiting for `COMMIT` to be acked.
struct Done {
    req: Request,
    value: Option<AppValue>,
    outcome: RequestOutcome,
}

impl Writer {
    pub fn new(
        conn: Connection,
        shared: Arc<Shared>,
        budget: BatchBudget,
        checkpointer: Arc<Checkpointer>,
    ) -> Self {
        Writer {
            conn,
            shared,
            budget,
            checkpointer,
        }
    }

    /// Runs batches until the lane is closed and its queues are empty.
    pub fn run(mut self) {
        while let Some(first) = self.next_first() {
            self.run_batch(first);
        }
        tracing::debug!("writer lane drained and stopped");
    }

    /// Blocks until work is queued (→ its first request) or the lane is closed and empty.
    fn next_first(&self) -> Option<Request> {
        let mut q = self.shared.queue.lock();
        loop {
            if !q.scheduler.is_empty() {
                q.scheduler.start_batch();
                return q.scheduler.pop();
            }
            if q.closed {
                return None;
            }
            self.shared.wake.wait(&mut q);
        }
    }

    fn run_batch(&mut self, first: Request) {
        self.checkpointer.hold_writes_if_over_cap();
        // The checkpointer takes this gate for RESTART/TRUNCATE, so the two never contend
        // for SQLite's write lock (which would surface as SQLITE_BUSY).
        let gate = self.checkpointer.write_gate();
        let _held = gate.lock();
        let started = Instant::now();
        let span = tracing::trace_span!(
            "lane_batch",
            requests = tracing::field::Empty,
            blobs = tracing::field::Empty,
            hold_us = tracing::field::Empty
        );
        let _enter = span.enter();

        if let Err(e) = self
            .conn
            .execute_batch("BEGIN IMMEDIATE")
            .during("begin batch")
        {
            self.shared.stats.record_error(&e);
            self.fail(first, e);
            return;
        }
        let now_ms = unix_millis();
        let (mut done, mut blobs, mut bytes) = (Vec::new(), 0usize, 0usize);
        let mut next = Some(first);
        while let Some(req) = next.take() {
            if let Some(d) = self.run_request(req, now_ms) {
                blobs += d.req.blobs;
                bytes += d.req.bytes;
                done.push(d);
            }
            let budget_spent = blobs >= self.budget.max_blobs
                || bytes >= self.budget.max_bytes
                || started.elapsed() >= self.budget.max_hold;
            if !budget_spent {
                next = self.shared.queue.lock().scheduler.pop();
            }
        }
        let committed = self.conn.execute_batch("COMMIT").during("commit batch");
        let hold = started.elapsed();
        drop(_held);
        span.record("requests", done.len());
        span.record("blobs", blobs);
        span.record("hold_us", hold.as_micros() as u64);
        self.checkpointer.notify_commit();
        self.finish(done, committed, blobs, bytes, hold);
    }

    /// Executes one request inside the open transaction. Returns it for acking after
    /// `COMMIT`, or `None` when it was cancelled or failed (already answered).
    fn run_request(&mut self, mut req: Request, now_ms: i64) -> Option<Done> {
        let stats = &self.shared.stats;
        if req.ack.is_closed() {
            // The caller dropped its future before the lane reached it: write nothing.
            self.shared.release(&req);
            stats.record_cancelled(req.class, &req.source);
            return None;
        }
        let exec_started = Instant::now();
        let queue_wait = exec_started.saturating_duration_since(req.enqueued);
        match self.execute(&mut req.work, now_ms) {
            Ok((value, dedup)) => {
                let outcome = RequestOutcome {
                    queue_wait,
                    hold: exec_started.elapsed(),
                    dedup,
                };
                Some(Done {
                    req,
                    value,
                    outcome,
                })
            }
            Err(e) => {
                self.shared.stats.record_error(&e);
                self.shared.stats.record_failed(req.class, &req.source);
                self.fail(req, e);
                None
            }
        }
    }

    /// Acks every executed request with the outcome of `COMMIT`.
    fn finish(
        &mut self,
        done: Vec<Done>,
        committed: Result<()>,
        blobs: usize,
        bytes: usize,
        hold: std::time::Duration,
    ) {
        let stats = &self.shared.stats;
        match committed {
            Ok(()) => {
                stats.record_batch(done.len(), blobs, bytes, hold);
                for d in done {
                    stats.record_request(&d.req, &d.outcome);
                    self.shared.release(&d.req);
                    let _ = d.req.ack.send(Ok(d.value));
                }
            }
            Err(e) => {
                stats.record_error(&e);
                let _ = self.conn.execute_batch("ROLLBACK");
                for d in done {
                    stats.record_failed(d.req.class, &d.req.source);
                    self.fail(d.req, e.duplicate());
                }
            }
        }
    }

    /// Acks a request with an error; nothing of it was committed.
    fn fail(&self, req: Request, err: Error) {
        self.shared.release(&req);
        let _ = req.ack.send(Err(err));
    }

    /// Runs one request under its own savepoint; returns its app value and dedup hits.
    fn execute(&mut self, work: &mut Work, now_ms: i64) -> Result<(Option<AppValue>, usize)> {
        self.conn
            .execute_batch("SAVEPOINT request")
            .during("savepoint")?;
        let result = match std::mem::replace(work, Work::Blobs(Vec::new())) {
            Work::Blobs(blobs) => insert_blobs(&self.conn, blobs, now_ms).map(|d| (None, d)),
            Work::App(write) => write(&self.conn).map(|v| (Some(v), 0)).map_err(Error::App),
        };
        if result.is_err() {
            self.conn
                .execute_batch("ROLLBACK TO request")
                .during("rollback savepoint")?;
        }
        self.conn
            .execute_batch("RELEASE request")
            .during("release savepoint")?;
        result
    }
}

/// Inserts blobs (bytes once per multihash, one metadata row per CID) and runs their staged
/// ops. Returns how many CIDs were already stored.
fn insert_blobs(conn: &Connection, blobs: Vec<super::StagedBlob>, now_ms: i64) -> Result<usize> {
    let mut insert_data = conn
        .prepare_cached(
            "INSERT INTO blob_data (mh, data) VALUES (?1, ?2) ON CONFLICT (mh) DO NOTHING",
        )
        .during("prepare insert data")?;
    let mut find_data = conn
        .prepare_cached("SELECT id FROM blob_data WHERE mh = ?1")
        .during("prepare find data")?;
    let mut insert_meta = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO blobs (mh, codec, data_id, size, inserted_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .during("prepare insert blob")?;
    let mut dedup = 0;
    for staged in blobs {
        let blob = &staged.blob;
        let mh = multihash_key(blob.cid());
        let data_id = if insert_data
            .execute((&mh, blob.data().as_ref()))
            .during("insert data")?
            == 1
        {
            conn.last_insert_rowid()
        } else {
            find_data
                .query_row([&mh], |r| r.get(0))
                .during("find data")?
        };
        let codec = blob.cid().codec() as i64;
        let inserted = insert_meta
            .execute((&mh, codec, data_id, blob.len() as i64, now_ms))
            .during("insert blob")?
            == 1;
        if !inserted {
            dedup += 1;
        }
        if let Some(op) = staged.op {
            op.apply(conn, blob, inserted).map_err(Error::App)?;
        }
    }
    Ok(dedup)
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
