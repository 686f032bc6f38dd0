//! Store configuration and per-write options.

use std::sync::Arc;
use std::time::Duration;

/// How hard SQLite syncs at commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Synchronous {
    /// `synchronous=FULL` (default): an acknowledged write survives power loss. With batched
    /// commits the extra fsync is paid once per batch, not per blob.
    Full,
    /// `synchronous=NORMAL`: the database stays consistent, but the last commits before a
    /// power loss (not a process crash) may roll back after being acknowledged.
    Normal,
}

/// Limits of one writer batch (one SQLite transaction on the lane).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct BatchBudget {
    /// At most this many blobs per transaction.
    pub max_blobs: usize,
    /// At most this many blob bytes per transaction.
    pub max_bytes: usize,
    /// Close the batch once the write lock has been held this long (its `COMMIT`
    /// included) while `Interactive` work waits or is in the batch. Bounds how long a user
    /// waits behind a batch they are not part of.
    pub max_hold: Duration,
    /// The same limit while only `Normal`/`Background` work is queued: longer batches mean
    /// fewer fsyncs for bulk ingest. An `Interactive` request arriving mid-batch shortens
    /// the batch back to `max_hold`.
    pub max_hold_bulk: Duration,
}

/// Bounds of one priority class's admission queue. A producer waits for room, so memory
/// held by queued writes stays under `max_bytes` per class.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct QueueBounds {
    /// Most requests queued at once.
    pub max_requests: usize,
    /// Most blob bytes queued at once.
    pub max_bytes: usize,
}

/// Store configuration. Start from [`Config::default`] and change fields.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Config {
    /// Largest blob accepted, in bytes (default 2 MiB, the Bitswap block limit).
    pub max_blob_size: usize,
    /// Read-only connections serving metadata-only `info` reads (default 2).
    pub info_pool_size: usize,
    /// Read-only connections serving `get`, `has_many` and scans (default 4).
    pub data_pool_size: usize,
    /// Limits of one writer transaction.
    pub batch: BatchBudget,
    /// Admission bounds, applied to each priority class separately.
    pub queue: QueueBounds,
    /// `put_many` splits its blobs into requests of at most this many blobs; each request is
    /// committed whole or not at all.
    pub request_max_blobs: usize,
    /// ... and at most this many bytes (a single larger blob forms a request of its own).
    pub request_max_bytes: usize,
    /// Commit durability (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// WAL size that makes the checkpointer escalate from PASSIVE to TRUNCATE (default 64 MiB).
    pub wal_cap_bytes: u64,
    /// How often the checkpointer runs a PASSIVE checkpoint when writes are flowing.
    pub checkpoint_interval: Duration,
    /// The reader transaction limit (default 500 ms): when the WAL is over its cap and a
    /// TRUNCATE cannot finish, app reads ([`Store::read`](crate::Store::read) on the data
    /// pool) holding a snapshot longer than this are ended with
    /// [`Error::ReadExpired`](crate::Error::ReadExpired). A TRUNCATE tries for at most
    /// twice this long before the lane writes on.
    pub checkpoint_max_wait: Duration,
    /// Lowest share of batches that `Normal` and `Background` each lead while higher classes
    /// keep the lane saturated, so bulk work always progresses (default 0.1).
    pub min_class_share: f64,
    /// Deficit round robin quantum in cost units (bytes plus a per-blob overhead).
    pub fairness_quantum: usize,
    /// Track per-class and per-source histograms (default on; cost measured by the bench).
    pub detailed_stats: bool,
}

impl Config {
    /// The largest WAL the store promises, in WAL bytes: `wal_cap_bytes` plus one batch.
    ///
    /// The lane measures the WAL after each commit and holds the next batch while it is over
    /// the cap, so at most one batch lands past it. A batch closes once its payload reaches
    /// `batch.max_bytes`, so it holds at most that plus the request that crossed it
    /// (`request_max_bytes`); its WAL frames add a quarter for page headers, b-tree and
    /// overflow-page slack. The benchmark's WAL target and the tests check this number.
    pub fn wal_bound_bytes(&self) -> u64 {
        let batch = (self.batch.max_bytes + self.request_max_bytes) as u64;
        self.wal_cap_bytes + batch + batch / 4
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_blob_size: 2 * 1024 * 1024,
            info_pool_size: 2,
            data_pool_size: 4,
            batch: BatchBudget {
                max_blobs: 4096,
                max_bytes: 4 * 1024 * 1024,
                max_hold: Duration::from_millis(10),
                max_hold_bulk: Duration::from_millis(50),
            },
            queue: QueueBounds {
                max_requests: 4096,
                max_bytes: 64 * 1024 * 1024,
            },
            request_max_blobs: 128,
            request_max_bytes: 1024 * 1024,
            synchronous: Synchronous::Full,
            wal_cap_bytes: 64 * 1024 * 1024,
            checkpoint_interval: Duration::from_millis(50),
            checkpoint_max_wait: Duration::from_millis(500),
            min_class_share: 0.1,
            fairness_quantum: 64 * 1024,
            detailed_stats: true,
        }
    }
}

/// Priority class of a write. Higher classes go first; lower ones keep a minimum share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Priority {
    /// A user is waiting for this write.
    Interactive,
    /// Sync of content being viewed.
    #[default]
    Normal,
    /// Bulk sync, imports, best-effort bookkeeping.
    Background,
}

impl Priority {
    /// All classes, highest first.
    pub const ALL: [Priority; 3] = [
        Priority::Interactive,
        Priority::Normal,
        Priority::Background,
    ];

    /// Index into per-class arrays (0 = highest).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name used in stats and logs.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Normal => "normal",
            Priority::Background => "background",
        }
    }
}

/// Options for one write (`put_many`, `write`).
#[derive(Clone, Debug)]
pub struct PutOptions {
    /// Priority class.
    pub priority: Priority,
    /// Who is writing (e.g. `"sync:peer-17"`, `"import"`); sources share a class fairly.
    pub source: Arc<str>,
    /// Give up with [`Error::Overloaded`](crate::Error::Overloaded) if the queue has no room
    /// by then. `None` waits for room.
    pub deadline: Option<tokio::time::Instant>,
    /// For [`Store::write`](crate::Store::write): a queued write with the same key in the same
    /// priority class is replaced by the newer one, which keeps the older one's place in the
    /// queue; the older caller gets [`Error::Superseded`](crate::Error::Superseded). For
    /// best-effort bookkeeping such as "peer last seen". Ignored by `put_many`.
    pub coalesce_key: Option<String>,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            priority: Priority::Normal,
            source: Arc::from("default"),
            deadline: None,
            coalesce_key: None,
        }
    }
}

impl PutOptions {
    /// Options with the given class and source.
    pub fn new(priority: Priority, source: &str) -> Self {
        PutOptions {
            priority,
            source: Arc::from(source),
            ..Default::default()
        }
    }

    /// Sets a deadline `after` from now.
    pub fn timeout(mut self, after: Duration) -> Self {
        self.deadline = Some(tokio::time::Instant::now() + after);
        self
    }

    /// Sets the coalescing key (see [`PutOptions::coalesce_key`]).
    pub fn coalesce(mut self, key: impl Into<String>) -> Self {
        self.coalesce_key = Some(key.into());
        self
    }
}
