//! seedbank: content-addressed blobs in SQLite for sync engines, without write storms.
//!
//! One writer lane batches every write fairly and acknowledges after `COMMIT`, so nothing
//! ever waits in SQLite's busy handler; reads have pools of their own; discovery computes a
//! scope's "haves" once per snapshot and shares it across peers. The design is in
//! `docs/design.md` of the repository.
//!
//! This facade re-exports the workspace crates:
//! - [`blobstore`]: CIDs, the SQLite schema, the single fair writer lane, read pools.
//! - [`index`]: link extraction, link and scope tables, DAG queries, CAR import/export.
//! - [`files`]: UnixFS files and directories of any size (add, cat with ranges, ls) with the
//!   CIDs of the reference importers (IPIP-499 profiles, `ipfs add --cid-version=1`).
//! - [`discovery`]: haves snapshots, set reconciliation, fanout-capped discovery of missing
//!   blobs from peers.
//! - `net` (feature `net`): serving and syncing between nodes over iroh (QUIC), offline
//!   first.
//!
//! ```
//! use seedbank::blobstore::{codec, Blob, Config, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), seedbank::blobstore::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("seedbank.db"), Config::default())?;
//! let cid: seedbank::Cid = store.put(Blob::new(codec::RAW, &b"hello"[..])).await?;
//! let info = store.info(&cid).await?.expect("just stored");
//! assert_eq!(info.size, 5);
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use cid::Cid;
pub use seedbank_blobstore as blobstore;
pub use seedbank_discovery as discovery;
pub use seedbank_files as files;
pub use seedbank_index as index;
#[cfg(feature = "net")]
pub use seedbank_net as net;
