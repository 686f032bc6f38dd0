//! The checkpointer: a dedicated thread and connection keeping the WAL bounded.
//!
//! `wal_autocheckpoint` is off, so commits never pay for checkpoints on the lane. After
//! commits this thread runs PASSIVE checkpoints (never blocks readers or the writer) at most
//! every `checkpoint_interval`. When the WAL file passes the cap it escalates to TRUNCATE:
//! it takes the lane's write gate first (so it never fights the lane for SQLite's write lock,
//! which would surface as SQLITE_BUSY), backfills what it can with PASSIVE, then tries the
//! TRUNCATE without waiting in SQLite's busy handler. While a reader's snapshot blocks it,
//! it ends app reads older than `checkpoint_max_wait` (the reader transaction limit, see
//! `lease`) and tries again every few ms, for at most twice that. New reads
//! never wait for any of this: once the backfill is complete SQLite starts new readers
//! past the WAL (read mark 0), so they do not block the truncation.
//!
//! Under continuous ingest a PASSIVE checkpoint never catches up with the lane, and SQLite
//! only rewinds the WAL to its start when a write begins with every frame backfilled. So
//! past a quarter of the cap the checkpointer takes the lane's gate between two batches and
//! finishes the backfill there (a short pause: most frames were copied by earlier PASSIVE
//! runs); the next batch then rewinds the WAL instead of growing it.
//!
//! The lane checks the WAL size before each batch; past the cap it waits for the
//! checkpointer's TRUNCATE (at most `checkpoint_max_wait` plus one checkpoint), so the WAL
//! never exceeds the cap by more than one batch even when ingest outruns checkpoints. The
//! one exception: a snapshot that may not be ended (a library scan, `Store::scan`) and
//! outlives the TRUNCATE. Then the lane does not wait again batch after batch for a
//! TRUNCATE that cannot finish: it writes on past the cap while the checkpointer retries
//! once per interval, until a TRUNCATE completes.

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

use crate::error::{Result, SqlContext};
use crate::lease::Leases;
use crate::stats::StatsCollector;

/// Which checkpoint to run.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Alongside the lane: copies what it can, never waits.
    Passive,
    /// PASSIVE with the lane paused, so it completes and the next write rewinds the WAL.
    Rewind,
    /// The WAL is over the cap: lane paused, readers drained, file truncated.
    Truncate,
}

/// Handle shared by the lane (which notifies commits) and the store (which closes it).
pub(crate) struct Checkpointer {
    /// Held by the lane for a whole batch and by the checkpointer for TRUNCATE.
    gate: Arc<Mutex<()>>,
    /// App reads, which a blocked TRUNCATE may end.
    leases: Arc<Leases>,
    state: Mutex<State>,
    wake: Condvar,
    /// Signalled when an escalation the lane asked for has run.
    escalated: Condvar,
    thread: Mutex<Option<JoinHandle<Connection>>>,
    wal_path: PathBuf,
    cap: u64,
    interval: Duration,
    max_wait: Duration,
    stats: Arc<StatsCollector>,
}

#[derive(Default)]
struct State {
    /// A commit happened since the last check.
    dirty: bool,
    stop: bool,
    /// The lane found the WAL over the cap and waits for a TRUNCATE.
    escalate: bool,
    /// TRUNCATE checkpoints finished (to tell the waiting lane its request ran).
    escalations: u64,
    /// The last TRUNCATE could not finish (a snapshot that may not be ended holds the
    /// WAL): the lane writes on instead of waiting, and the checkpointer retries.
    stuck: bool,
}

impl Checkpointer {
    /// Starts the checkpointer thread on its own connection.
    pub fn start(
        conn: Connection,
        db_path: PathBuf,
        config: &crate::Config,
        stats: Arc<StatsCollector>,
        leases: Arc<Leases>,
    ) -> Result<Arc<Self>> {
        stats.wal.cap.store(config.wal_cap_bytes, Relaxed);
        let this = Arc::new(Checkpointer {
            gate: Arc::new(Mutex::new(())),
            leases,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            escalated: Condvar::new(),
            thread: Mutex::new(None),
            wal_path: crate::paths::wal_path(&db_path),
            cap: config.wal_cap_bytes,
            interval: config.checkpoint_interval,
            max_wait: config.checkpoint_max_wait,
            stats,
        });
        let runner = this.clone();
        let thread = std::thread::Builder::new()
            .name("seedbank-checkpoint".into())
            .spawn(move || runner.run(conn))?;
        *this.thread.lock() = Some(thread);
        Ok(this)
    }

    /// The gate the lane holds while its transaction is open.
    pub fn write_gate(&self) -> Arc<Mutex<()>> {
        self.gate.clone()
    }

    /// Called by the lane after every commit.
    pub fn notify_commit(&self) {
        // The one WAL size sample per batch: the lane's next check and this thread's
        // decision both read it, so neither stats the file again.
        self.sample_wal();
        self.state.lock().dirty = true;
        self.wake.notify_one();
    }

    /// Called by the lane before each batch: past the cap, asks for a TRUNCATE and waits
    /// (bounded) until it has run, so the WAL exceeds the cap by at most one batch.
    pub fn hold_writes_if_over_cap(&self) {
        if self.wal_size() <= self.cap {
            return;
        }
        let mut s = self.state.lock();
        let target = s.escalations + 1;
        s.escalate = true;
        self.wake.notify_one();
        if s.stuck {
            // A snapshot that may not be ended holds the WAL: waiting would stall every
            // batch for nothing. The checkpointer retries; write on.
            return;
        }
        self.stats.wal.lane_waits.fetch_add(1, Relaxed);
        // Bounded so a stuck checkpoint can slow writes but never stop them.
        let deadline = Instant::now() + self.max_wait * 4 + Duration::from_secs(1);
        while s.escalations < target && !s.stop {
            if self.escalated.wait_until(&mut s, deadline).timed_out() {
                tracing::warn!("WAL over cap and the checkpointer has not caught up; writing on");
                break;
            }
        }
    }

    /// Stops the thread and runs a final TRUNCATE checkpoint. Call after the lane has closed.
    pub fn close(&self) -> Result<()> {
        self.state.lock().stop = true;
        self.wake.notify_one();
        let Some(thread) = self.thread.lock().take() else {
            return Ok(());
        };
        let conn = thread
            .join()
            .map_err(|_| std::io::Error::other("checkpointer panicked"))?;
        self.checkpoint(&conn, Mode::Truncate)?;
        self.sample_wal();
        Ok(())
    }

    fn run(self: Arc<Self>, conn: Connection) -> Connection {
        let mut last_passive = Instant::now();
        loop {
            let escalate = {
                let mut s = self.state.lock();
                if !s.dirty && !s.stop && !s.escalate {
                    self.wake.wait_for(&mut s, self.interval);
                }
                if s.stop {
                    return conn;
                }
                if !s.dirty && !s.escalate {
                    continue;
                }
                s.dirty = false;
                std::mem::take(&mut s.escalate)
            };
            let wal = self.wal_size();
            let stuck = self.state.lock().stuck;
            let mode = if (escalate || wal > self.cap)
                && !(stuck && last_passive.elapsed() < self.interval)
            {
                Some(Mode::Truncate)
            } else if wal > self.cap / 4 && last_passive.elapsed() >= self.interval {
                Some(Mode::Rewind)
            } else if last_passive.elapsed() >= self.interval {
                Some(Mode::Passive)
            } else {
                // Not yet time: look again after the interval even if no commit comes.
                let mut s = self.state.lock();
                s.dirty = true;
                let rest = self.interval.saturating_sub(last_passive.elapsed());
                if !s.escalate && !s.stop {
                    self.wake.wait_for(&mut s, rest);
                }
                None
            };
            if let Some(mode) = mode {
                let done = match self.checkpoint(&conn, mode) {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::warn!(error = %e, ?mode, "checkpoint failed");
                        false
                    }
                };
                last_passive = Instant::now();
                self.sample_wal();
                if matches!(mode, Mode::Truncate) {
                    let mut s = self.state.lock();
                    s.escalations += 1;
                    s.stuck = !done && self.wal_size() > self.cap;
                    if s.stuck {
                        // Retried once per interval while the lane writes on.
                        s.dirty = true;
                    }
                    drop(s);
                    self.escalated.notify_all();
                }
            }
        }
    }

    /// Runs one checkpoint and records its outcome; true when it completed.
    fn checkpoint(&self, conn: &Connection, mode: Mode) -> Result<bool> {
        let w = &self.stats.wal;
        let result = match mode {
            Mode::Passive => {
                w.passive.fetch_add(1, Relaxed);
                run_pragma(conn, "PRAGMA wal_checkpoint(PASSIVE)")
            }
            Mode::Rewind => {
                w.rewind.fetch_add(1, Relaxed);
                // Backfill alongside the lane twice (the second pass copies only what the
                // lane wrote during the first), then the small rest with the lane paused.
                run_pragma(conn, "PRAGMA wal_checkpoint(PASSIVE)")?;
                run_pragma(conn, "PRAGMA wal_checkpoint(PASSIVE)")?;
                let _lane = self.gate.lock();
                run_pragma(conn, "PRAGMA wal_checkpoint(PASSIVE)")
            }
            Mode::Truncate => {
                w.truncate.fetch_add(1, Relaxed);
                self.truncate(conn)
            }
        };
        match result {
            Ok(complete) => {
                if !complete && matches!(mode, Mode::Truncate) {
                    w.truncate_incomplete.fetch_add(1, Relaxed);
                }
                Ok(complete)
            }
            Err(e) => {
                w.failures.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// TRUNCATE with the lane paused, polling instead of sleeping in SQLite's busy handler
    /// (so the lane's gate is held only for each attempt), ending app reads older than the
    /// limit while a snapshot blocks it. Gives up after twice the limit: within the first
    /// every read that blocked it at the start has passed the limit and been ended, the
    /// second lets those reads return.
    fn truncate(&self, conn: &Connection) -> Result<bool> {
        conn.busy_timeout(Duration::ZERO)
            .during("set checkpoint wait")?;
        // Already stuck behind a snapshot that may not be ended, with the lane writing on:
        // one attempt per retry, not a polling loop interleaved with the lane's batches.
        let wait = if self.state.lock().stuck {
            Duration::ZERO
        } else {
            self.max_wait * 2
        };
        let deadline = Instant::now() + wait;
        loop {
            {
                // Taking the gate waits for the lane's current batch to commit; the lane
                // itself waits in `hold_writes_if_over_cap` meanwhile, so nothing is written
                // between attempts.
                let _lane = self.gate.lock();
                run_pragma(conn, "PRAGMA wal_checkpoint(PASSIVE)")?;
                if run_pragma(conn, "PRAGMA wal_checkpoint(TRUNCATE)")? {
                    return Ok(true);
                }
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.leases.expire_older_than(self.max_wait);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The WAL size last sampled (after the last commit or checkpoint).
    fn wal_size(&self) -> u64 {
        self.stats.wal.bytes.load(Relaxed)
    }

    fn sample_wal(&self) -> u64 {
        let size = std::fs::metadata(&self.wal_path)
            .map(|m| m.len())
            .unwrap_or(0);
        self.stats.wal.bytes.store(size, Relaxed);
        self.stats.wal.peak.fetch_max(size, Relaxed);
        size
    }
}

/// Runs a `wal_checkpoint` pragma; true when it completed (SQLite's busy flag was 0).
fn run_pragma(conn: &Connection, sql: &str) -> Result<bool> {
    let busy: i64 = conn.query_row(sql, [], |r| r.get(0)).during("checkpoint")?;
    Ok(busy == 0)
}
