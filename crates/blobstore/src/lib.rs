//! seedbank's blob store: content-addressed blobs in SQLite, written through one fair,
//! bounded writer lane and read through pools the writer never touches.
//!
//! - [`cid`](mod@cid): hashing and verification (BLAKE3 for new blobs; sha2-256,
//!   blake2b-256, blake3 and identity accepted).
//! - `schema`: versioned migrations; dense metadata kept apart from bytes.
//! - `lane`: admission queues bounded per priority class, the fair scheduler (priority
//!   classes with minimum shares, deficit round robin across sources), the writer thread that
//!   batches requests into transactions and acks after `COMMIT`.
//! - `read`: the `info` and `data` read pools (`query_only` connections).
//! - `checkpoint`: keeps the WAL bounded without ever running on the lane.
//! - `stats`: counters and histograms behind [`Store::stats`].
//!
//! Where this crate refines the design (measured with `seedbank bench`):
//! - **Atomicity per request without a savepoint per request.** App writes
//!   ([`Store::write`]) run under their own savepoint, so a failing closure rolls back only
//!   itself. Blob requests do not: a savepoint per request journals each touched page again
//!   and cost half the lane's CPU per blob. A blob request can only fail on a storage fault,
//!   so one that fails aborts its whole batch (nothing of the batch is committed; every
//!   request in it gets an error), which keeps "each request whole or not at all".
//! - **Batch budget by who waits.** A batch closes at `max_hold` (its `COMMIT` included)
//!   when an `Interactive` request waits or is in it, and may fill to `max_hold_bulk` when
//!   only bulk work is queued (fewer fsyncs). Interactive requests waiting when a batch
//!   closes ride along with it instead of paying a commit of their own.
//! - **`info` reads run inline** on the caller's task (a point lookup of microseconds);
//!   data reads hop to a blocking thread.
//! - **The checkpointer coordinates through gates, never SQLite's busy handler:** it takes
//!   the lane's gate between batches to finish a backfill (so the WAL rewinds) or to
//!   TRUNCATE past the cap, and the data pool's gate so long readers cannot starve TRUNCATE.
//!   The lane holds new batches while the WAL is over the cap.
//!
//! ```
//! use seedbank_blobstore::{codec, Blob, Config, PutOptions, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), seedbank_blobstore::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("blobs.db");
//! let store = Store::open(&path, Config::default())?;
//! let cid = store.put(Blob::new(codec::RAW, &b"hello"[..])).await?;
//! assert_eq!(store.get(&cid).await?.as_deref(), Some(&b"hello"[..]));
//! let cids = store.put_many(vec![Blob::new(codec::RAW, vec![1u8; 1024])], PutOptions::default()).await?;
//! assert_eq!(store.has_many(&cids).await?, vec![true]);
//! assert_eq!(store.stats().sqlite_busy, 0);
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

mod checkpoint;
pub mod cid;
mod config;
mod error;
mod lane;
mod owner;
mod read;
mod schema;
mod stats;
mod store;
mod verify;

pub use crate::cid::{codec, Blob};
pub use config::{BatchBudget, Config, Priority, PutOptions, QueueBounds, Synchronous};
pub use error::{AppError, Error, Result};
pub use lane::{StagedBlob, StagedOp};
pub use read::PoolKind;
pub use rusqlite;
pub use schema::{sql, SCHEMA_VERSION};
pub use stats::{GroupStats, Percentiles, PoolStats, Stats, WalStats};
pub use store::{BlobInfo, Contents, Store};
pub use verify::VerifyReport;
