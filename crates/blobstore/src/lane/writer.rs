//! The writer thread: owns the only read-write connection and runs batches.
//!
//! A batch is one `BEGIN IMMEDIATE … COMMIT`. Requests are pulled from the scheduler one at a
//! time *inside* the transaction until the budget (blobs, bytes, hold time including the
//! expected `COMMIT`) is spent, so the next batch is always chosen afresh. Acks go out only
//! after `COMMIT` returned.
//!
//! App writes run under their own savepoint: a failing closure rolls back only itself. Blob
//! requests do not: a savepoint per request journals every page it touches a second time
//! (measured: half the lane's CPU per blob), and a blob insert or staged op can only fail on
//! a storage fault that would fail the commit anyway. So a failing blob request aborts the
//! whole batch: it gets its own error, every other request of the batch a batch error, and
//! nothing of the batch is committed.
//!
//! The lane never dies and never lies. Everything the lane runs on behalf of others (app
//! closures, staged ops) runs under `catch_unwind`: a panic fails its request (and its batch
//! when its writes cannot be isolated) and the lane carries on. SQLite's commit and rollback
//! hooks watch the connection: a `COMMIT` the lane did not issue is refused (turned into a
//! rollback), and any end of the transaction while a request ran fails the whole batch with
//! [`Error::TransactionEnded`], so nothing is acknowledged that was not committed as one unit.
//!
//! Nor can that code change the connection for later batches ([`super::guard`]): settings
//! pragmas are refused as they are prepared, and after each closure or staged op one atomic
//! load (and three `db_config` reads) tell whether it replaced a hook or the authorizer; if
//! so it fails with [`Error::ClosureChangedConnection`] and the lane puts its own back (and
//! its settings, when the authorizer was gone) before the batch commits.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::guard::{self, DbFlags, Role, Settings, Watched};
use super::request::{AppValue, Request, Work};
use super::Shared;
use crate::checkpoint::Checkpointer;
use crate::cid::multihash_key;
use crate::config::{BatchBudget, Priority};
use crate::error::{Error, Result, SqlContext};
use crate::schema::sql;
use crate::stats::RequestOutcome;

pub(super) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    budget: BatchBudget,
    checkpointer: Arc<Checkpointer>,
    commit_estimate: CommitEstimate,
    watch: Arc<TxnWatch>,
    /// Rings when code run for others changes the connection (see [`guard`]).
    guard: Arc<guard::Watch>,
    /// The connection's settings as the store configured them, to restore.
    settings: Settings,
    /// `db_config` flags as configured (`None` if SQLite would not tell).
    flags: Option<DbFlags>,
    /// Set when a closure ran without the authorizer: settings are applied again once the
    /// batch has ended (some, e.g. `foreign_keys`, cannot change inside a transaction).
    restore_after_batch: std::cell::Cell<bool>,
}

/// What SQLite's hooks saw of the writer connection's transactions.
#[derive(Default)]
struct TxnWatch {
    /// Set only around the lane's own `COMMIT`; any other commit is refused.
    commit_allowed: AtomicBool,
    /// Commits and rollbacks seen (the lane's own and anyone else's).
    ends: AtomicU64,
    /// `COMMIT`s refused: issued by code the lane ran, never by the lane.
    refused: AtomicU64,
}

impl TxnWatch {
    /// Installs the hooks on the writer connection, each with its alarm on `guard`.
    fn install(self: &Arc<Self>, conn: &Connection, guard: &Arc<guard::Watch>) {
        let w = self.clone();
        let alarm = guard.alarm(Watched::CommitHook);
        conn.commit_hook(Some(move || {
            let _owned = &alarm;
            w.ends.fetch_add(1, Relaxed);
            let refuse = !w.commit_allowed.load(Relaxed);
            if refuse {
                w.refused.fetch_add(1, Relaxed);
            }
            // `true` turns this COMMIT into a rollback.
            refuse
        }));
        let w = self.clone();
        let alarm = guard.alarm(Watched::RollbackHook);
        conn.rollback_hook(Some(move || {
            let _owned = &alarm;
            w.ends.fetch_add(1, Relaxed);
        }));
    }
}

/// Moving average of how long `COMMIT` takes (WAL write + fsync), to keep it in the budget.
#[derive(Default)]
struct CommitEstimate {
    micros: f64,
}

impl CommitEstimate {
    fn record(&mut self, took: Duration) {
        // An exponentially weighted average: recent commits count most; one slow fsync
        // moves the estimate by a quarter of its excess.
        self.micros += (took.as_micros() as f64 - self.micros) / 4.0;
    }

    fn get(&self) -> Duration {
        Duration::from_micros(self.micros as u64)
    }
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
        let settings = Settings::read(&conn);
        let flags = DbFlags::read(&conn);
        let guard = Arc::new(guard::Watch::default());
        let watch = Arc::new(TxnWatch::default());
        watch.install(&conn, &guard);
        // The update sentinel only while foreign code runs (`run_foreign`).
        guard::install_sentinels(&conn, &guard, false, true);
        // Last: from here on settings pragmas fail to prepare on this connection.
        guard::install_authorizer(&conn, &guard, Role::Writer);
        Writer {
            conn,
            shared,
            budget,
            checkpointer,
            commit_estimate: CommitEstimate::default(),
            watch,
            guard,
            settings,
            flags,
            restore_after_batch: std::cell::Cell::new(false),
        }
    }

    /// After code run for others: if it changed the connection (see [`guard`]), puts the
    /// lane's hooks, authorizer and settings back and returns the error for that code.
    /// Cheap when nothing changed: one atomic load and three `db_config` reads.
    fn check_connection(&self) -> Option<Error> {
        let flags_changed = self
            .flags
            .and_then(|f| f.changed(DbFlags::read(&self.conn)));
        if !self.guard.rang() && flags_changed.is_none() {
            return None;
        }
        let changed = self.guard.take();
        let bits = changed.as_ref().map_or(0, |c| c.bits);
        let has = |w: Watched| bits & w as u32 != 0;
        let mut setting: Vec<String> = changed.map(|c| c.setting).into_iter().collect();
        setting.extend(flags_changed);
        let conn = &self.conn;
        if let Some(flags) = self.flags {
            flags.restore(conn);
        }
        if has(Watched::CommitHook) || has(Watched::RollbackHook) {
            self.watch.install(conn, &self.guard);
        }
        if has(Watched::ProgressHandler) {
            guard::install_sentinels(conn, &self.guard, false, true);
        }
        if has(Watched::Authorizer) {
            // Without it the closure could set anything: apply the settings now (so this
            // batch's COMMIT is as durable as configured) and again after the batch.
            self.settings.apply(conn);
            self.restore_after_batch.set(true);
            guard::install_authorizer(conn, &self.guard, Role::Writer);
        }
        // Our own reinstalls rang the alarms of the hooks they replaced.
        let _ = self.guard.take();
        let setting = setting.join(", ");
        tracing::error!(%setting, "code run on the writer lane changed its connection; undone");
        Some(Error::ClosureChangedConnection { setting })
    }

    /// Runs foreign code (an app closure, staged ops) with the update sentinel in place, then
    /// checks what it changed of the connection.
    fn run_foreign<T>(&self, f: impl FnOnce() -> T) -> (T, Option<Error>) {
        guard::install_update_sentinel(&self.conn, &self.guard);
        let out = f();
        guard::remove_update_sentinel(&self.conn, &self.guard);
        (out, self.check_connection())
    }

    /// Applies the settings again once a batch after a closure that removed the authorizer
    /// has ended (outside a transaction every setting can change).
    fn restore_settings_if_needed(&self) {
        if self.restore_after_batch.replace(false) && self.conn.is_autocommit() {
            // The authorizer would refuse the lane's own settings pragmas: lift it meanwhile.
            self.conn.authorizer(
                None::<fn(rusqlite::hooks::AuthContext<'_>) -> rusqlite::hooks::Authorization>,
            );
            self.settings.apply(&self.conn);
            guard::install_authorizer(&self.conn, &self.guard, Role::Writer);
            let _ = self.guard.take();
        }
    }

    /// Runs batches until the lane is closed and its queues are empty.
    pub fn run(mut self) {
        loop {
            // The scheduler is the lane's own code too: a bug in it costs a pick, not the
            // lane (parking_lot's mutex is not poisoned by the unwind).
            let first = match catch_unwind(AssertUnwindSafe(|| self.next_first())) {
                Ok(Some(first)) => first,
                Ok(None) => break,
                Err(panic) => {
                    self.record_panic("lane scheduler", &panic);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
            };
            // Code run for others is caught closer to it; this catches the lane's own bugs
            // so that one of them costs a batch, not the lane (its requests' callers see
            // their acks dropped and get `Error::Panicked`).
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.run_batch(first))) {
                self.record_panic("writer lane", &panic);
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
            }
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
        // The checkpointer takes this gate between batches (to finish a backfill or to
        // TRUNCATE), so the two never contend for SQLite's locks, which would surface as
        // SQLITE_BUSY.
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
        let (mut aborted, mut holds_interactive) = (None, false);
        while let Some(req) = next.take() {
            holds_interactive |= req.class == Priority::Interactive;
            match self.run_request(req, now_ms) {
                Ran::Done(d) => {
                    blobs += d.req.blobs;
                    bytes += d.req.bytes;
                    done.push(d);
                }
                Ran::Skipped => {}
                Ran::Abort(e) => {
                    aborted = Some(e);
                    break;
                }
            }
            let mut q = self.shared.queue.lock();
            let interactive_waiting = q.scheduler.queued(Priority::Interactive).0 > 0;
            // Bulk-only batches may fill longer (fewer fsyncs); once a user waits, the
            // batch closes within the short budget.
            let hold = if holds_interactive || interactive_waiting {
                self.budget.max_hold
            } else {
                self.budget.max_hold_bulk
            };
            let spent = blobs >= self.budget.max_blobs
                || bytes >= self.budget.max_bytes
                || started.elapsed() >= self.fill_budget(hold);
            next = if !spent && !holds_interactive {
                q.scheduler.pop()
            } else if interactive_waiting && blobs < 2 * self.budget.max_blobs {
                // Users waiting ride along with the batch about to commit (their requests
                // are small) instead of paying a commit of their own; then it closes.
                q.scheduler.pop_class(Priority::Interactive)
            } else {
                None
            };
        }
        let commit_started = Instant::now();
        let committed = match aborted {
            None => {
                self.watch.commit_allowed.store(true, Relaxed);
                let r = self.conn.execute_batch("COMMIT").during("commit batch");
                self.watch.commit_allowed.store(false, Relaxed);
                r
            }
            Some(e) => Err(e),
        };
        let commit = commit_started.elapsed();
        let hold = started.elapsed();
        drop(_held);
        if committed.is_ok() {
            self.commit_estimate.record(commit);
        }
        span.record("requests", done.len());
        span.record("blobs", blobs);
        span.record("hold_us", hold.as_micros() as u64);
        self.checkpointer.notify_commit();
        self.finish(done, committed, (blobs, bytes), hold, commit);
        self.restore_settings_if_needed();
    }

    /// How long a batch may fill: the hold budget less the expected `COMMIT`, which may take
    /// at most half of it (so slow fsyncs shrink batches, but never to one request).
    fn fill_budget(&self, hold: Duration) -> Duration {
        hold - self.commit_estimate.get().min(hold / 2)
    }

    /// Executes one request inside the open transaction.
    fn run_request(&mut self, mut req: Request, now_ms: i64) -> Ran {
        let stats = &self.shared.stats;
        if req.ack.is_closed() {
            // The caller dropped its future before the lane reached it: write nothing.
            self.shared.release(&req);
            stats.record_cancelled(req.class, &req.source);
            return Ran::Skipped;
        }
        let exec_started = Instant::now();
        let queue_wait = exec_started.saturating_duration_since(req.enqueued);
        let ends_before = self.watch.ends.load(Relaxed);
        let refused_before = self.watch.refused.load(Relaxed);
        let result = match std::mem::replace(&mut req.work, Work::Blobs(Vec::new())) {
            Work::Blobs(blobs) => {
                let conn = &self.conn;
                // Only staged ops are foreign code; plain blobs skip the watch.
                let foreign = blobs.iter().any(|b| b.op.is_some());
                let (ran, changed) = if foreign {
                    self.run_foreign(|| {
                        catch_unwind(AssertUnwindSafe(|| insert_blobs(conn, blobs, now_ms)))
                    })
                } else {
                    (
                        catch_unwind(AssertUnwindSafe(|| insert_blobs(conn, blobs, now_ms))),
                        None,
                    )
                };
                // A staged op that changed the connection: its writes cannot be isolated.
                if let Some(changed) = changed {
                    Err(Failed::Batch(changed))
                } else {
                    match ran {
                        Ok(Ok(dedup)) => Ok((None, dedup)),
                        // Its rows may be half written: only a rollback of the batch undoes them.
                        Ok(Err(e)) => Err(Failed::Batch(e)),
                        Err(panic) => Err(Failed::Batch(self.record_panic("staged op", &panic))),
                    }
                }
            }
            Work::App(write) => self.run_app_write(write),
        };
        // Whatever the request returned: if its transaction ended under it, the batch is no
        // longer one unit and nothing in it may be acknowledged.
        // (A request that already fails its batch keeps its own error: SQLite itself rolls
        // back on some errors, e.g. a full disk. Not after a refused `COMMIT`, which only
        // the request can have issued: the error it returns is that refusal.)
        let ended = self.watch.ends.load(Relaxed) != ends_before || self.conn.is_autocommit();
        let refused = self.watch.refused.load(Relaxed) != refused_before;
        let result = if refused || (ended && !matches!(result, Err(Failed::Batch(_)))) {
            Err(Failed::Batch(Error::TransactionEnded))
        } else {
            result
        };
        match result {
            Ok((value, dedup)) => {
                let hold = exec_started.elapsed();
                let outcome = RequestOutcome {
                    queue_wait,
                    hold,
                    dedup,
                    batches_waited: 0, // known once its batch commits (`finish`)
                };
                Ran::Done(Done {
                    req,
                    value,
                    outcome,
                })
            }
            Err(Failed::Alone(e)) => {
                stats.record_error(&e);
                stats.record_failed(req.class, &req.source);
                self.fail(req, e);
                Ran::Skipped
            }
            Err(Failed::Batch(e)) => {
                if matches!(e, Error::TransactionEnded) {
                    stats.transactions_ended.fetch_add(1, Relaxed);
                    tracing::error!(
                        "a write ended the writer lane's transaction; batch rolled back"
                    );
                }
                let batch_error = batch_aborted(&e);
                stats.record_error(&e);
                stats.record_failed(req.class, &req.source);
                self.fail(req, e);
                Ran::Abort(batch_error)
            }
        }
    }

    /// Runs an app closure under its own savepoint, so its failure (error or panic) undoes
    /// only its writes. When the savepoint is gone (the closure released it or ended the
    /// transaction) its writes cannot be isolated and the batch fails.
    fn run_app_write(
        &self,
        write: super::request::AppWrite,
    ) -> Result<(Option<AppValue>, usize), Failed> {
        let conn = &self.conn;
        conn.execute_batch("SAVEPOINT app_write")
            .during("savepoint")
            .map_err(Failed::Batch)?;
        // Whatever it returned (it may have swallowed the refusal, or failed because of it):
        // a closure that changed the connection fails with that, its writes undone.
        let (ran, changed) = self.run_foreign(|| catch_unwind(AssertUnwindSafe(|| write(conn))));
        let (result, undo) = match (ran, changed) {
            (_, Some(changed)) => (Err(changed), true),
            (Ok(Ok(value)), None) => (Ok(value), false),
            // A full disk is the store's condition, not the closure's: its batch fails with
            // the documented error (SQLite may have rolled the transaction back already).
            (Ok(Err(e)), None) if is_disk_full(&*e) => {
                return Err(Failed::Batch(Error::DiskFull { op: "app write" }));
            }
            (Ok(Err(e)), None) => (Err(Error::App(e)), true),
            (Err(panic), None) => (Err(self.record_panic("write closure", &panic)), true),
        };
        let end = if undo {
            "ROLLBACK TO app_write; RELEASE app_write"
        } else {
            "RELEASE app_write"
        };
        if conn.execute_batch(end).is_err() {
            return Err(Failed::Batch(Error::TransactionEnded));
        }
        match result {
            Ok(value) => Ok((Some(value), 0)),
            Err(e) => Err(Failed::Alone(e)),
        }
    }

    /// Counts and logs a caught panic; returns the error for its request.
    fn record_panic(&self, what: &str, panic: &Box<dyn std::any::Any + Send>) -> Error {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        self.shared.stats.lane_panics.fetch_add(1, Relaxed);
        tracing::error!(%message, "{what} panicked on the writer lane; rolled back");
        Error::Panicked { message }
    }

    /// Acks every executed request with the outcome of `COMMIT`.
    fn finish(
        &mut self,
        done: Vec<Done>,
        committed: Result<()>,
        (blobs, bytes): (usize, usize),
        hold: Duration,
        commit: Duration,
    ) {
        let stats = &self.shared.stats;
        match committed {
            Ok(()) => {
                // Batches committed before this one; those since a request's admission are
                // the batches it waited (this one, its own, not counted).
                let before = self.shared.committed.fetch_add(1, Relaxed);
                stats.record_batch(done.len(), blobs, bytes, hold, commit);
                for mut d in done {
                    d.outcome.batches_waited = before.saturating_sub(d.req.admitted_after);
                    stats.record_request(
                        (d.req.class, &d.req.source),
                        (d.req.blobs, d.req.bytes),
                        &d.outcome,
                    );
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
}

/// How a request failed.
enum Failed {
    /// Its own writes were undone; the batch goes on.
    Alone(Error),
    /// Only a rollback of the whole batch undoes it.
    Batch(Error),
}

/// What happened to one request of the batch being filled.
enum Ran {
    /// Executed; acked after `COMMIT`.
    Done(Done),
    /// Cancelled or failed alone (already answered).
    Skipped,
    /// Failed in a way only a rollback of the whole batch undoes (already answered); the
    /// error for the batch's other requests.
    Abort(Error),
}

/// The error the other requests of an aborted batch get.
fn batch_aborted(cause: &Error) -> Error {
    if matches!(cause, Error::TransactionEnded | Error::DiskFull { .. }) {
        return cause.duplicate();
    }
    Error::batch_rolled_back(cause)
}

/// Inserts blobs (bytes once per multihash, one metadata row per CID) and runs their staged
/// ops. Returns how many CIDs were already stored.
fn insert_blobs(conn: &Connection, blobs: Vec<super::StagedBlob>, now_ms: i64) -> Result<usize> {
    let mut stmts = sql::DataStatements::prepare(conn).during("prepare insert data")?;
    let mut insert_meta = conn
        .prepare_cached(sql::INSERT_META)
        .during("prepare insert blob")?;
    let mut dedup = 0;
    for staged in blobs {
        let blob = &staged.blob;
        let mh = multihash_key(blob.cid());
        let data_id = stmts.store(&mh, blob.data()).during("insert data")?;
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

/// True when an app closure's error is SQLite reporting SQLITE_FULL.
fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<rusqlite::Error>()
        .is_some_and(|e| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull))
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
