//! Read pools: read-only (`query_only`) connections, in pools the writer never touches.
//!
//! A small pool of our own rather than r2d2/deadpool: those pin their own rusqlite versions,
//! and we need per-pool wait timing and a hop to a blocking thread around every use. It is a
//! FIFO semaphore (fair waiting, close-able) over a stack of idle connections.
//!
//! Read closures cannot write nor change a connection for later readers: besides
//! `query_only`, each connection has the authorizer of [`crate::lane::guard`] (settings
//! pragmas, `ATTACH`, temporary triggers refused) and a commit hook that refuses any write
//! `COMMIT`. A closure that tried fails with [`Error::ClosureChangedConnection`]; one that
//! replaced the authorizer or a hook gets its connection replaced by a fresh one.
//!
//! A store read as an immutable file without the owner lock ([`ReaderMode::ImmutableUnlocked`])
//! checks after each read that no writer has appeared since it opened.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{Error, Result, SqlContext};
use crate::lane::guard::{self, Role, Watch, Watched};
use crate::lease::Leases;

/// Which pool a read goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Metadata-only reads (`info`): small rows, never blob bytes.
    Info,
    /// Blob bytes, `has_many`, scans, discovery haves builds.
    Data,
}

/// A pool of read-only connections.
pub(crate) struct ReadPool {
    idle: Arc<Mutex<Vec<Reader>>>,
    permits: Arc<Semaphore>,
    stats: Arc<crate::stats::StatsCollector>,
    kind: PoolKind,
    /// App reads' leases (the reader transaction limit, see `lease`): the owner's data pool
    /// only.
    leases: Option<(Arc<Leases>, Duration)>,
    /// Where connections are reopened from when one cannot be cleaned for reuse.
    path: Arc<Path>,
    mode: ReaderMode,
}

/// How a reader opens the database file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReaderMode {
    /// Beside the store's own writer: read-write at the SQLite level (so it shares the WAL
    /// index) but `query_only`.
    Owner,
    /// [`Store::open_read_only`](crate::Store::open_read_only): SQLite read-only, sharing the
    /// WAL index with whoever owns the file.
    ReadOnly,
    /// Read-only and `immutable`: no WAL index at all. Only while no owner can run (the
    /// store holds the owner lock shared) and the WAL is empty, e.g. on a full disk where
    /// SQLite cannot create its shared-memory file.
    Immutable,
    /// As `Immutable`, where no owner lock file exists to hold (a copy, a backup): nothing
    /// stops a writer from starting, so after each read the pool looks for the lock file
    /// every seedbank writer creates before it touches the database, and once it exists
    /// fails every read with [`Error::WriterAppeared`] (what it read may be torn).
    ImmutableUnlocked,
}

/// One pooled connection and the watch on what read closures do to it.
pub(crate) struct Reader {
    conn: Connection,
    watch: Arc<Watch>,
}

/// Opens one reader on an existing WAL database (never creating it).
pub(crate) fn open_reader(path: &Path, mode: ReaderMode) -> Result<Reader> {
    let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = match mode {
        ReaderMode::Owner => {
            Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_WRITE)
        }
        ReaderMode::ReadOnly => {
            Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_ONLY)
        }
        ReaderMode::Immutable | ReaderMode::ImmutableUnlocked => Connection::open_with_flags(
            format!("file:{}?immutable=1", uri_path(path)),
            flags | OpenFlags::SQLITE_OPEN_READ_ONLY,
        ),
    }
    .during("open reader")?;
    // query_only: this connection can never start a write, so it never waits on the lane.
    conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -8192;")
        .during("configure reader")?;
    conn.set_prepared_statement_cache_capacity(64);
    let watch = Arc::new(Watch::default());
    // A read connection never commits a write: refuse any a closure manages to start (SQLite
    // calls the hook for write transactions only, so reads never pay for it).
    let alarm = watch.alarm(Watched::CommitHook);
    conn.commit_hook(Some(move || {
        let _owned = &alarm;
        true
    }));
    guard::install_sentinels(&conn, &watch, true, false);
    guard::install_authorizer(&conn, &watch, Role::Reader);
    Ok(Reader { conn, watch })
}

/// A path as the path part of a SQLite `file:` URI: `%`, `?` and `#` escaped (by hand:
/// three characters do not justify a URL crate).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

impl ReadPool {
    pub fn open(
        path: &Path,
        size: usize,
        kind: PoolKind,
        stats: Arc<crate::stats::StatsCollector>,
        leases: Option<(Arc<Leases>, Duration)>,
        mode: ReaderMode,
    ) -> Result<Self> {
        let size = size.max(1);
        let conns = (0..size)
            .map(|_| open_reader(path, mode))
            .collect::<Result<Vec<_>>>()?;
        stats.pools[kind as usize].set_size(size);
        Ok(ReadPool {
            idle: Arc::new(Mutex::new(conns)),
            permits: Arc::new(Semaphore::new(size)),
            stats,
            kind,
            leases,
            path: path.into(),
            mode,
        })
    }

    /// Runs `f` on a pooled connection on a blocking thread (for the library's own reads:
    /// never ended early).
    ///
    /// # Errors
    /// [`Error::Closed`] once the pool is closed, or whatever `f` returns.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.run(false, f).await
    }

    /// As [`ReadPool::read`]; with `limited`, under the reader transaction limit where this
    /// pool has one: an app read the checkpointer ends fails with [`Error::ReadExpired`].
    pub async fn run<T, F>(&self, limited: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let asked = Instant::now();
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let waited = asked.elapsed();
        if self.kind == PoolKind::Info {
            // Inline on the caller's task: an info read is a point lookup of microseconds
            // that never waits on a lock, so a
            // hop to a blocking thread would cost more than the read and add a scheduler
            // wakeup to its tail latency.
            let result = {
                let _permit = permit;
                let conn = self.idle.lock().pop();
                let mut conn = self.checkout(conn);
                let result = f(conn.conn());
                conn.after_read(result)
            };
            return self.finish(result, waited, asked);
        }
        let idle = self.idle.clone();
        let (path, mode) = (self.path.clone(), self.mode);
        let leases = self.leases.clone().filter(|_| limited);
        let stats = self.stats.clone();
        let result = tokio::task::spawn_blocking(move || {
            // Declared first so it drops last: the connection is back before the room is.
            let _permit = permit;
            let conn = idle.lock().pop();
            let mut checkout = Checkout {
                conn,
                idle,
                path,
                mode,
                replace: false,
            };
            let conn = checkout.conn();
            let Some((leases, limit)) = leases else {
                let result = f(conn);
                return checkout.after_read(result);
            };
            let lease = leases.begin(conn);
            let result = f(conn);
            let interrupted = lease.interrupted();
            drop(lease);
            let result = checkout.after_read(result);
            let own_error = matches!(
                result,
                Err(Error::ClosureChangedConnection { .. } | Error::WriterAppeared { .. })
            );
            if interrupted && !own_error {
                stats
                    .reads_expired
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(Error::ReadExpired { limit });
            }
            result
        })
        .await
        .map_err(|source| Error::Task {
            what: "read",
            source,
        })?;
        self.finish(result, waited, asked)
    }

    /// Records a read's wait, latency and any SQLite error.
    fn finish<T>(&self, result: Result<T>, waited: Duration, asked: Instant) -> Result<T> {
        self.stats.pools[self.kind as usize].record(waited, asked.elapsed());
        if let Err(e) = &result {
            self.stats.record_error(e);
        }
        result
    }

    fn checkout(&self, conn: Option<Reader>) -> Checkout {
        Checkout {
            conn,
            idle: self.idle.clone(),
            path: self.path.clone(),
            mode: self.mode,
            replace: false,
        }
    }

    /// Runs `f` on an idle connection on the current thread, without waiting: for the checks
    /// `open` makes before the pool is shared.
    pub fn read_now<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().pop().ok_or(Error::Closed)?;
        let mut conn = self.checkout(Some(conn));
        let result = f(conn.conn());
        conn.after_read(result)
    }

    /// Fails every waiting and future read with [`Error::Closed`].
    pub fn close(&self) {
        self.permits.close();
    }
}

/// Runs `statements` queries in `f` as one read snapshot. A single statement is a snapshot
/// by itself, so the common one-CID read skips the `BEGIN`/`COMMIT` round trips.
pub(crate) fn in_snapshot<T>(
    conn: &Connection,
    statements: usize,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    if statements <= 1 {
        return f(conn);
    }
    let tx = conn.unchecked_transaction().during("begin read")?;
    let out = f(&tx)?;
    tx.finish().during("end read")?;
    Ok(out)
}

/// Puts a connection back in the pool when the read ends, even if `f` panicked.
struct Checkout {
    conn: Option<Reader>,
    idle: Arc<Mutex<Vec<Reader>>>,
    path: Arc<Path>,
    mode: ReaderMode,
    /// Set when the closure replaced the authorizer or a hook: the connection is not
    /// reused.
    replace: bool,
}

impl Checkout {
    /// The checked-out connection.
    fn conn(&self) -> &Connection {
        &self
            .conn
            .as_ref()
            .expect("a permit guarantees an idle connection")
            .conn
    }

    /// What a read returns, once checked: the closure did not try to change its connection,
    /// and (for an unlocked immutable reader) no writer appeared while it read.
    fn after_read<T>(&mut self, result: Result<T>) -> Result<T> {
        let reader = self.conn.as_ref().expect("checked out");
        if reader.watch.rang() {
            if let Some(changed) = reader.watch.take() {
                // A refused statement changed nothing; anything else did.
                self.replace |= changed.bits != Watched::Refused as u32;
                tracing::warn!(setting = %changed.setting, "a read closure tried to change its connection");
                return Err(Error::ClosureChangedConnection {
                    setting: changed.setting,
                });
            }
        }
        if self.mode == ReaderMode::ImmutableUnlocked
            && crate::paths::lock_path(&self.path).exists()
        {
            // Every seedbank writer creates the lock file before it touches the database, so
            // a read that ended before it existed saw no writer.
            return Err(Error::WriterAppeared {
                path: self.path.to_path_buf(),
            });
        }
        result
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(reader) = self.conn.take() {
            // Lifts any progress handler a closure set (an app read's lease has already
            // removed its own).
            reader.conn.progress_handler(0, None::<fn() -> bool>);
            // A closure may have left a transaction open (or panicked inside one): its
            // snapshot would pin the WAL and serve stale reads to the next user.
            let conn = &reader.conn;
            let reuse = !self.replace && !reader.watch.rang();
            let conn = if reuse && (conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok())
            {
                reader
            } else {
                // Replace it: every permit needs an idle connection behind it.
                match open_reader(&self.path, self.mode) {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot replace a read connection");
                        reader
                    }
                }
            };
            self.idle.lock().push(conn);
        }
    }
}
