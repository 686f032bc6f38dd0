//! `naive`: what sync daemons run today. One shared pool of connections serves reads and
//! writes; every write is its own `BEGIN IMMEDIATE … COMMIT` on a pooled connection, waiting
//! in SQLite's busy handler (10 s timeout) *while holding that connection*; readers take
//! connections from the same pool. SQLite's defaults otherwise (`wal_autocheckpoint = 1000`).
//!
//! The busy handler is SQLite's own default one (same delays, same timeout), re-stated here
//! only so the bench can count how often connections sat in it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cid::Cid;

use super::{insert_blobs, is_busy, open_connection, query_info, upsert_peer};
use super::{Counters, Engine, EngineSettings, PeerWrite};
use seedbank_blobstore::rusqlite::{self, Connection};
use seedbank_blobstore::{Blob, PutOptions};

/// Sleeps in SQLite's busy handler, process-wide (a busy handler is a plain `fn`). Runs are
/// sequential, so each engine reports the difference since it opened.
static BUSY_WAITS: AtomicU64 = AtomicU64::new(0);
/// The busy timeout the handler enforces, ms.
static BUSY_TIMEOUT_MS: AtomicU64 = AtomicU64::new(10_000);

/// Times a put is retried after SQLITE_BUSY before the run fails.
const MAX_ATTEMPTS: usize = 100;

/// SQLite's `sqliteDefaultBusyCallback`: sleeps 1, 2, 5, … 100 ms between polls of the lock
/// until the timeout is spent. The lock is not handed over when freed: a sleeper notices only
/// at its next poll, so under contention the lock sits idle between holders.
fn busy_handler(count: i32) -> bool {
    const DELAYS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
    const TOTALS: [u64; 12] = [0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228];
    let count = count.max(0) as usize;
    let (mut delay, prior) = match DELAYS.get(count) {
        Some(&d) => (d, TOTALS[count]),
        None => (100, TOTALS[11] + 100 * (count as u64 - 11)),
    };
    let timeout = BUSY_TIMEOUT_MS.load(Relaxed);
    if prior + delay > timeout {
        if prior >= timeout {
            return false;
        }
        delay = timeout - prior;
    }
    BUSY_WAITS.fetch_add(1, Relaxed);
    std::thread::sleep(Duration::from_millis(delay));
    true
}

/// A blocking pool of connections (std `Mutex` + `Condvar`, as simple as the Go pools it
/// stands for). Waiters are woken in no particular order.
struct Pool {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

/// A connection taken from the pool; goes back on drop.
struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Pool {
    fn get(&self) -> Pooled<'_> {
        let mut idle = self.idle.lock().expect("pool lock");
        loop {
            if let Some(conn) = idle.pop() {
                return Pooled {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self.returned.wait(idle).expect("pool lock");
        }
    }
}

impl Pooled<'_> {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("held until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().expect("pool lock").push(conn);
            self.pool.returned.notify_one();
        }
    }
}

/// The shared-pool engine.
pub struct Naive {
    pool: Arc<Pool>,
    busy_errors: Arc<AtomicU64>,
    transactions: Arc<AtomicU64>,
    busy_waits_at_open: u64,
}

impl Naive {
    /// Opens `settings.naive_pool` connections on a database made by `prepare_database`.
    ///
    /// # Errors
    /// SQLite errors opening or configuring a connection.
    pub fn open(path: &Path, settings: &EngineSettings) -> anyhow::Result<Naive> {
        BUSY_TIMEOUT_MS.store(settings.naive_busy_timeout_ms, Relaxed);
        let conns = (0..settings.naive_pool.max(1))
            .map(|_| {
                let conn = open_connection(path, settings.synchronous)?;
                conn.busy_handler(Some(busy_handler))?;
                Ok(conn)
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Naive {
            pool: Arc::new(Pool {
                idle: Mutex::new(conns),
                returned: Condvar::new(),
            }),
            busy_errors: Arc::new(AtomicU64::new(0)),
            transactions: Arc::new(AtomicU64::new(0)),
            busy_waits_at_open: BUSY_WAITS.load(Relaxed),
        })
    }

    /// Runs `f` in its own `BEGIN IMMEDIATE` transaction on a pooled connection, on a
    /// blocking thread. `retry_busy`: retry after SQLITE_BUSY (a sync engine re-fetches
    /// content it failed to store) or give up (best-effort bookkeeping).
    async fn write(
        &self,
        retry_busy: bool,
        f: impl Fn(&Connection) -> rusqlite::Result<()> + Send + 'static,
    ) -> anyhow::Result<bool> {
        let (pool, busy, txs) = (
            self.pool.clone(),
            self.busy_errors.clone(),
            self.transactions.clone(),
        );
        tokio::task::spawn_blocking(move || {
            for _ in 0..MAX_ATTEMPTS {
                let conn = pool.get();
                match write_transaction(conn.conn(), &f) {
                    Ok(()) => {
                        txs.fetch_add(1, Relaxed);
                        return Ok(true);
                    }
                    Err(e) if is_busy(&e) => {
                        busy.fetch_add(1, Relaxed);
                        if !retry_busy {
                            return Ok(false);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            anyhow::bail!("naive write still SQLITE_BUSY after {MAX_ATTEMPTS} attempts")
        })
        .await?
    }
}

/// `BEGIN IMMEDIATE`, `f`, `COMMIT`; rolls back on any error.
fn write_transaction(
    conn: &Connection,
    f: &impl Fn(&Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = f(conn).and_then(|()| conn.execute_batch("COMMIT"));
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

impl Engine for Naive {
    async fn put(&self, blobs: Vec<Blob>, _opts: PutOptions) -> anyhow::Result<()> {
        self.write(true, move |conn| insert_blobs(conn, &blobs))
            .await?;
        Ok(())
    }

    async fn info(&self, cid: Cid) -> anyhow::Result<bool> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || Ok(query_info(pool.get().conn(), &cid)?)).await?
    }

    async fn touch_peer(&self, peer: u32, _opts: PutOptions) -> anyhow::Result<PeerWrite> {
        let applied = self
            .write(false, move |conn| upsert_peer(conn, peer))
            .await?;
        Ok(if applied {
            PeerWrite::Applied
        } else {
            PeerWrite::Dropped
        })
    }

    fn counters(&self) -> Counters {
        Counters {
            busy_errors: self.busy_errors.load(Relaxed),
            busy_waits: Some(
                BUSY_WAITS
                    .load(Relaxed)
                    .saturating_sub(self.busy_waits_at_open),
            ),
            wal_peak_bytes: 0,
            transactions: self.transactions.load(Relaxed),
        }
    }

    async fn close(&self) -> anyhow::Result<Counters> {
        Ok(self.counters())
    }
}
