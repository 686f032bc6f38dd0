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
//! - [`rows`]: the row reads and helpers sibling crates use inside a lane write or a read
//!   snapshot; the store owns its tables, and nothing outside this crate runs SQL on them.
//! - `checkpoint`: keeps the WAL bounded without ever running on the lane.
//! - `stats`: counters and histograms behind [`Store::stats`].
//! - `owner`: the lock that makes one read-write store the only owner of a file.
//! - `paths`: the files beside a database (`-wal`, `-shm`, `.lock`), named in one place.
//!
//! The design, and the measurements behind its refinements, are in `docs/design.md` of the
//! repository.
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
mod lease;
pub mod lifecycle;
#[cfg(feature = "metrics")]
mod metrics;
mod owner;
mod paths;
mod read;
pub mod rows;
mod schema;
mod stats;
mod store;
#[doc(hidden)]
pub mod testing;
mod verify;

pub use crate::cid::{codec, Blob};
pub use config::{BatchBudget, Config, Priority, PutOptions, QueueBounds, Synchronous};
pub use error::{AppError, Cause, Error, Result};
pub use lane::{StagedBlob, StagedOp};
pub use paths::{lock_path, shm_path, wal_path};
pub use read::PoolKind;
pub use rows::BlobInfo;
pub use rusqlite;
pub use schema::{sql, APPLICATION_ID, SCHEMA_VERSION};
pub use stats::{GroupStats, Percentiles, PoolStats, Stats, WalStats};
pub use store::{Contents, Store};
pub use verify::VerifyReport;
