//! Read leases: the reader transaction limit.
//!
//! An app read ([`Store::read`](crate::Store::read) on the data pool) holds a *lease* while
//! it runs: when it started, and a flag its connection's progress handler polls. When the
//! WAL is over its cap and a TRUNCATE cannot finish, the checkpointer expires every lease
//! older than `checkpoint_max_wait`: the read's running or next SQL statement is
//! interrupted, the read fails with [`Error::ReadExpired`](crate::Error::ReadExpired) and
//! its snapshot ends when the closure returns (the connection is rolled back before reuse).
//! Reads younger than the limit, and the library's own scans
//! ([`Store::scan`](crate::Store::scan)), are never ended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::Connection;

/// Virtual-machine steps between two looks at the expiry flag. 1: SQLite counts steps per
/// statement, so a larger number would let a reader of short statements (a point lookup is
/// ~10 steps) hold its snapshot forever; a look is one relaxed load, made at loop jumps
/// and at the end of each `step`, on app reads only.
const PROGRESS_STEPS: i32 = 1;

/// The running app reads of one store.
#[derive(Default)]
pub(crate) struct Leases {
    next: AtomicU64,
    active: Mutex<HashMap<u64, (Instant, Arc<AtomicBool>)>>,
}

/// One app read's lease; dropping it ends the lease and removes the progress handler.
pub(crate) struct Lease<'c> {
    leases: Arc<Leases>,
    id: u64,
    /// Set when the progress handler actually interrupted a statement.
    fired: Arc<AtomicBool>,
    conn: &'c Connection,
}

impl Leases {
    /// Starts a lease for a read about to run on `conn`.
    pub fn begin<'c>(self: &Arc<Self>, conn: &'c Connection) -> Lease<'c> {
        let id = self.next.fetch_add(1, Relaxed);
        let expired = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (flag, fire) = (expired.clone(), fired.clone());
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let stop = flag.load(Relaxed);
                if stop {
                    fire.store(true, Relaxed);
                }
                stop
            }),
        );
        self.active
            .lock()
            .insert(id, (Instant::now(), expired.clone()));
        Lease {
            leases: self.clone(),
            id,
            fired,
            conn,
        }
    }

    /// Expires every lease older than `limit`; returns how many it expired.
    pub fn expire_older_than(&self, limit: Duration) -> usize {
        let mut n = 0;
        for (started, flag) in self.active.lock().values() {
            if started.elapsed() >= limit && !flag.swap(true, Relaxed) {
                n += 1;
            }
        }
        n
    }
}

impl Lease<'_> {
    /// True if a statement of this read was interrupted because the lease expired (the
    /// read's result is then incomplete, whatever the closure made of the error).
    pub fn interrupted(&self) -> bool {
        self.fired.load(Relaxed)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.leases.active.lock().remove(&self.id);
        self.conn.progress_handler(0, None::<fn() -> bool>);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_lease_interrupts_its_reads_and_only_old_leases_expire() {
        let leases = Arc::new(Leases::default());
        let conn = Connection::open_in_memory().unwrap();
        let other = Connection::open_in_memory().unwrap();
        let old = leases.begin(&conn);
        std::thread::sleep(Duration::from_millis(20));
        let young = leases.begin(&other);
        assert_eq!(leases.expire_older_than(Duration::from_millis(10)), 1);
        let count = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) SELECT count(*) FROM n";
        let err = conn
            .query_row(count, [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted)
        );
        assert!(old.interrupted() && !young.interrupted());
        assert_eq!(
            other.query_row(count, [], |r| r.get::<_, i64>(0)).unwrap(),
            100_000
        );
        drop(old);
        // The handler is gone with the lease: the connection reads normally again.
        assert_eq!(
            conn.query_row(count, [], |r| r.get::<_, i64>(0)).unwrap(),
            100_000
        );
        assert_eq!(leases.active.lock().len(), 1);
    }
}
