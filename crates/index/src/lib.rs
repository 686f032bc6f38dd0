//! seedbank's index: what a blob links to, what links to it, which blobs a DAG or a named
//! scope holds, and which referenced blobs are still missing, all answered without loading
//! blob bytes.
//!
//! The design is in `docs/design.md` of the repository.
//!
//! - `handle`: [`Index`] and its whole public API, in one `impl Index`, read as the index's
//!   table of contents: each method hands off to a free function of its subject's module
//!   below, which takes the store (or a connection, a transaction, a `Deleter`) and plain
//!   arguments, reaches the store through `access`, and never names `Index` (no module
//!   cycles).
//! - `config`, `put`: [`IndexConfig`]; [`IndexPutOptions`], the hard size limit checked
//!   before a put and the size targets that start a background collection after one.
//! - `extract`: link extraction ([`extract_links`]) for DAG-CBOR, DAG-PB and raw, run at
//!   staging time on the caller's task, never on the writer lane.
//! - `stage`: a blob's index rows, written by the lane in the blob's own transaction, so the
//!   lane only executes prepared SQL.
//! - `schema`: the index's own tables, versioned in `index_meta`, checked and migrated when
//!   the index opens.
//! - `query`, `dag`, `depths`, `scope`: queries on the store's read pools ([`Index::info`]
//!   on the metadata-only `info` pool). `dag` walks depth-first in export order; `depths`
//!   walks breadth-first and reports each block's depth and presence.
//! - `snapshot`: [`Index::read_dag`], one read snapshot of the DAG tables lent to a closure,
//!   for callers that walk a DAG their own way.
//! - [`car`]: streaming CARv1/CARv2 import and CARv1 export.
//! - `pin`, `delete`, `gc`, `repair`: the blob lifecycle — named pins and temp pins,
//!   deletion with every index row in one transaction, incremental garbage collection, and
//!   removal of corrupt blobs so they read as missing and can be fetched again.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use ipld_core::ipld::Ipld;
//! use seedbank_blobstore::{codec, Blob, Config, Store};
//! use seedbank_index::{car, Index, IndexConfig, IndexPutOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), seedbank_index::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("blobs.db"), Config::default())?;
//! let index = Index::open(store, IndexConfig::default()).await?;
//!
//! let leaf = Blob::new(codec::RAW, &b"hello"[..]);
//! let absent = Blob::new(codec::RAW, &b"not here"[..]);
//! let node = Ipld::Map(BTreeMap::from([
//!     ("a".to_string(), Ipld::Link(*leaf.cid())),
//!     ("b".to_string(), Ipld::Link(*absent.cid())),
//! ]));
//! let node = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&node).unwrap());
//! let root = *node.cid();
//! index.put_many(vec![node, leaf.clone()], IndexPutOptions::default().scope("doc:1")).await?;
//!
//! assert_eq!(index.links(&root).await?, Some(vec![*leaf.cid(), *absent.cid()]));
//! assert_eq!(index.backlinks(leaf.cid()).await?, vec![root]);
//! assert_eq!(index.reachable(&root).await?, vec![root, *leaf.cid()]);
//! assert_eq!(index.missing(&root).await?, vec![*absent.cid()]);
//! assert_eq!(index.scope_members("doc:1").await?.len(), 2);
//! assert_eq!(index.info(&root).await?.map(|i| i.links), Some(2));
//!
//! let mut file = Vec::new();
//! let written = car::export_dag(&index, &root, &mut file).await?;
//! assert_eq!((written.blocks, written.missing), (2, 1));
//! let read = car::import(&index, &file[..], car::ImportOptions::default()).await?;
//! assert_eq!((read.blocks, read.missing), (2, 1));
//! index.store().close().await?;
//! # Ok(())
//! # }
//! ```

mod access;
pub mod car;
mod config;
mod dag;
mod delete;
mod depths;
mod error;
mod extract;
mod gc;
mod handle;
mod indexer;
mod pin;
mod put;
mod query;
mod repair;
mod row;
mod schema;
mod scope;
mod snapshot;
mod stage;
mod tables;
#[doc(hidden)]
pub mod testing;

pub use config::IndexConfig;
pub use dag::Dag;
pub use delete::{DeleteOptions, Freed};
pub use depths::{DagWalk, WalkedBlock};
pub use error::{Error, Result};
pub use extract::{extract_links, Extracted};
#[doc(hidden)]
pub use gc::Collection;
pub use gc::{GcOptions, GcReport, KeptLate};
pub use handle::Index;
pub use indexer::{Annotations, Indexer};
pub use pin::{Pin, PinTarget, TempPin};
pub use put::IndexPutOptions;
pub use query::IndexedInfo;
pub use repair::RepairReport;
pub use schema::INDEX_SCHEMA_VERSION;
pub use scope::{ScopeDelta, ScopeInfo, ScopeSnapshot};
pub use snapshot::{BlockLinks, DagSnapshot, Presence};
