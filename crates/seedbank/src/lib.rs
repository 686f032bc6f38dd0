//! seedbank: content-addressed blobs in SQLite for sync engines, without write storms.
//!
//! One writer lane batches every write fairly and acknowledges after `COMMIT`, so nothing
//! ever waits in SQLite's busy handler; reads have pools of their own; discovery computes a
//! scope's "haves" once per snapshot and shares it across peers. The design is in
//! `docs/design.md` of the repository.
//!
//! Start with [`Node`]: one call opens a store with its link index, haves cache and
//! discovery; its writes always index links, so DAGs walk, pin, collect and sync as DAGs.
//! With the `net` feature it serves and syncs over QUIC (`Node::serve`, `Node::sync`).
//! Errors are one [`Error`] whose variants keep each layer's error as their source.
//!
//! ```
//! use seedbank::blobstore::{codec, Blob};
//! use seedbank::files::{AddOptions, Profile};
//! use seedbank::index::GcOptions;
//! use seedbank::{Node, NodeOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let node = Node::open(dir.path().join("seedbank.db"), NodeOptions::default()).await?;
//!
//! // Blobs by CID, links indexed; acknowledged after COMMIT.
//! let cid = node.put(Blob::new(codec::RAW, &b"hello"[..])).await?;
//! assert_eq!(node.get(&cid).await?.as_deref(), Some(&b"hello"[..]));
//!
//! // Files of any size as UnixFS, with the CIDs other IPFS tools compute.
//! std::fs::write(dir.path().join("note.txt"), b"hello world")?;
//! let opts = AddOptions::new(Profile::UnixfsV1_2025).pin("note");
//! let added = node.add(dir.path().join("note.txt"), &opts).await?;
//! let mut reader = node.cat(&added.root, 6, None).await?;
//! assert_eq!(reader.next_chunk().await?.as_deref(), Some(&b"world"[..]));
//!
//! // What no pin reaches is collected; the pinned file stays.
//! let report = node.gc(GcOptions::default()).await?;
//! assert_eq!(report.blobs_freed, 1);
//! node.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The workspace crates stay reachable for what the door does not cover:
//! - [`blobstore`]: CIDs, the SQLite schema, the single fair writer lane, read pools.
//! - [`index`]: link extraction, link and scope tables, DAG queries, pins, collection, CAR
//!   import/export.
//! - [`files`]: UnixFS files and directories of any size (add, cat with ranges, ls) with the
//!   CIDs of the reference importers (IPIP-499 profiles, `ipfs add --cid-version=1`).
//! - [`discovery`]: haves snapshots, set reconciliation, fanout-capped discovery of missing
//!   blobs from peers, progress events.
//! - `net` (feature `net`): the QUIC transport under `Node::serve` and `Node::sync`,
//!   offline first.
//!
//! The design is in `docs/design.md` of the repository.

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod error;
mod node;

pub use cid::Cid;
#[cfg(feature = "control")]
pub use node::control;
#[cfg(feature = "test-hooks")]
pub use node::hooks;

/// True in builds with the `test-hooks` feature (a lying node for tests, `Node::liar`).
#[doc(hidden)]
pub const TEST_HOOKS: bool = cfg!(feature = "test-hooks");
pub use error::{Error, Result};
#[cfg(feature = "net")]
pub use node::{load_or_create_key, ServeConfig, Server, SyncConfig};
pub use node::{Node, NodeOptions};
pub use seedbank_blobstore as blobstore;
pub use seedbank_discovery as discovery;
pub use seedbank_files as files;
pub use seedbank_index as index;
#[cfg(feature = "net")]
pub use seedbank_net as net;
