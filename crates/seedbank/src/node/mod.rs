//! [`Node`]: a store with its index, haves cache and discovery, opened in one call.

#[cfg(feature = "control")]
pub mod control;
#[cfg(feature = "test-hooks")]
pub mod hooks;
#[cfg(feature = "net")]
mod key;
#[cfg(feature = "net")]
mod net;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::lifecycle::BackupReport;
use seedbank_blobstore::{Blob, Config, Store};
use seedbank_discovery::{
    Discovery, DiscoveryConfig, HavesCache, HavesConfig, Peer, Report, Responder, ResponderConfig,
    Scope,
};
use seedbank_files::{AddOptions, Added, Entry, FileReader, Files};
use seedbank_index::car::ImportReport;
use seedbank_index::{
    DeleteOptions, Freed, GcOptions, GcReport, Index, IndexConfig, IndexPutOptions,
};

use crate::error::Result;

#[cfg(feature = "net")]
pub use key::load_or_create_key;
#[cfg(feature = "net")]
pub use net::{ServeConfig, Server, SyncConfig};

/// How a [`Node`] opens its parts. Start from [`NodeOptions::default`] and change fields.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// The blob store's configuration.
    pub store: Config,
    /// The index's configuration.
    pub index: IndexConfig,
    /// The haves cache's configuration (shared by discovery and the responder).
    pub haves: HavesConfig,
    /// Discovery's configuration.
    pub discovery: DiscoveryConfig,
    /// The responder's configuration (what this node answers peers).
    pub responder: ResponderConfig,
}

/// One seedbank node: a blob store, its link index, the haves cache and discovery, opened
/// together. Cheap to clone; clones share everything.
///
/// Writes go through the index, so links are always indexed (a DAG stored with
/// [`Node::put_many`] walks, pins and syncs as a DAG). The parts stay reachable
/// ([`Node::store`], [`Node::index`], [`Node::discovery`]) for what this door does not
/// cover.
#[derive(Clone, Debug)]
pub struct Node {
    index: Index,
    haves: HavesCache,
    discovery: Discovery,
    responder_config: ResponderConfig,
}

impl Node {
    /// Opens (or creates) the database at `path` for writing, with its index.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store cannot be opened (another
    /// process owns it, a foreign or damaged file, ...), [`Error::Index`](crate::Error::Index)
    /// if the index tables cannot be created or migrated.
    pub async fn open(path: impl AsRef<Path>, options: NodeOptions) -> Result<Node> {
        let store = Store::open(path, options.store.clone())?;
        Node::over(store, options).await
    }

    /// Opens the database at `path` read-only: it never writes, and works beside the
    /// process that owns it. Writes fail with the store's read-only error.
    ///
    /// # Errors
    /// As [`Node::open`]; an index older than this build is refused rather than migrated.
    pub async fn open_read_only(path: impl AsRef<Path>, options: NodeOptions) -> Result<Node> {
        let store = Store::open_read_only(path, options.store.clone())?;
        Node::over(store, options).await
    }

    async fn over(store: Store, options: NodeOptions) -> Result<Node> {
        let index = match Index::open(store.clone(), options.index).await {
            Ok(index) => index,
            Err(e) => {
                let _ = store.close().await;
                return Err(e.into());
            }
        };
        let haves = HavesCache::new(index.clone(), options.haves);
        let discovery = Discovery::new(haves.clone(), options.discovery);
        Ok(Node {
            index,
            haves,
            discovery,
            responder_config: options.responder,
        })
    }

    /// The blob store.
    pub fn store(&self) -> &Store {
        self.index.store()
    }

    /// The link index (pins, collection, DAG queries, CAR import and export).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Discovery (its progress events, peer scores, stats).
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The haves cache discovery and the responder share.
    pub fn haves(&self) -> &HavesCache {
        &self.haves
    }

    /// UnixFS files over this node's index.
    pub fn files(&self) -> Files {
        Files::new(self.index.clone())
    }

    /// What this node answers peers, as a [`Peer`] (in-process peers, tests) and for
    /// transports of your own.
    pub fn responder(&self, id: &str) -> Responder {
        Responder::new(id, self.haves.clone(), self.responder_config.clone())
    }

    /// A peer answering as [`Node::responder`] but lying in every fetch answer, for tests
    /// of liar detection; `None` unless built with the `test-hooks` feature (shipped builds
    /// do not contain it).
    #[doc(hidden)]
    pub fn liar(&self) -> Option<Arc<dyn Peer>> {
        #[cfg(feature = "test-hooks")]
        return Some(hooks::Liar::new(self.responder("local")));
        #[cfg(not(feature = "test-hooks"))]
        None
    }

    /// Stores one blob with its links indexed, at `Normal` priority; returns its CID once
    /// committed.
    ///
    /// # Errors
    /// [`Error::Index`](crate::Error::Index) with the store's error inside (too large,
    /// overloaded, closed, commit failed).
    pub async fn put(&self, blob: Blob) -> Result<Cid> {
        Ok(self.index.put(blob).await?)
    }

    /// Stores blobs with their links indexed (and the scopes and temp pin of `opts`);
    /// returns their CIDs in input order once every one is committed.
    ///
    /// # Errors
    /// As [`Node::put`].
    pub async fn put_many(&self, blobs: Vec<Blob>, opts: IndexPutOptions) -> Result<Vec<Cid>> {
        Ok(self.index.put_many(blobs, opts).await?)
    }

    /// A blob's bytes, verified against its CID, or `None` if it is not stored.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) (`Corrupt`, closed, ...).
    pub async fn get(&self, cid: &Cid) -> Result<Option<Bytes>> {
        Ok(self.store().get(cid).await?)
    }

    /// Adds a file or a directory (recursively) as UnixFS; see [`Files::add_path`].
    ///
    /// # Errors
    /// [`Error::Files`](crate::Error::Files).
    pub async fn add(&self, path: impl AsRef<Path>, opts: &AddOptions) -> Result<Added> {
        Ok(self.files().add_path(path.as_ref(), opts).await?)
    }

    /// Adds the bytes of `reader` as one UnixFS file; see [`Files::add_reader`].
    ///
    /// # Errors
    /// [`Error::Files`](crate::Error::Files).
    pub async fn add_reader<R: tokio::io::AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        opts: &AddOptions,
    ) -> Result<Added> {
        Ok(self.files().add_reader(reader, opts).await?)
    }

    /// Imports a CARv1 or CARv2 stream (blocks verified, links indexed); see
    /// [`car::import`](seedbank_index::car::import).
    ///
    /// # Errors
    /// [`Error::Index`](crate::Error::Index) for a corrupt file (blocks verified before the
    /// bad section stay stored) or a failed write.
    pub async fn import_car<R: tokio::io::AsyncRead + Unpin>(
        &self,
        reader: R,
    ) -> Result<ImportReport> {
        Ok(seedbank_index::car::import(&self.index, reader, Default::default()).await?)
    }

    /// A file's bytes from `offset`, `length` of them (or to the end); see [`Files::cat`].
    ///
    /// # Errors
    /// [`Error::Files`](crate::Error::Files).
    pub async fn cat(&self, cid: &Cid, offset: u64, length: Option<u64>) -> Result<FileReader> {
        Ok(self.files().cat(cid, offset, length).await?)
    }

    /// A directory's entries; see [`Files::ls`].
    ///
    /// # Errors
    /// [`Error::Files`](crate::Error::Files).
    pub async fn ls(&self, cid: &Cid) -> Result<Vec<Entry>> {
        Ok(self.files().ls(cid).await?)
    }

    /// Pins `root` and what it reaches under `name`; see [`Index::pin`].
    ///
    /// # Errors
    /// [`Error::Index`](crate::Error::Index).
    pub async fn pin(&self, name: &str, root: &Cid) -> Result<()> {
        Ok(self.index.pin(name, root).await?)
    }

    /// Removes the pin `name`; `false` if there was none. See [`Index::unpin`].
    ///
    /// # Errors
    /// [`Error::Index`](crate::Error::Index).
    pub async fn unpin(&self, name: &str) -> Result<bool> {
        Ok(self.index.unpin(name).await?)
    }

    /// Deletes blobs (a pinned one is refused unless `opts` forces); see [`Index::delete`].
    ///
    /// # Errors
    /// [`Error::Index`](crate::Error::Index).
    pub async fn delete(&self, cids: &[Cid], opts: DeleteOptions) -> Result<Freed> {
        Ok(self.index.delete(cids, opts).await?)
    }

    /// Writes a consistent copy of the database to `dest` (which must not exist) and
    /// checks it; see [`Store::backup`].
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore).
    pub async fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        Ok(self.store().backup(dest).await?)
    }

    /// Collects what no pin reaches; see [`Index::gc`].
    ///
    /// # Errors
    /// [`Error::Index`](crate::Error::Index).
    pub async fn gc(&self, opts: GcOptions) -> Result<GcReport> {
        Ok(self.index.gc(opts).await?)
    }

    /// Fetches what `scope` is missing from `peers`; see [`Discovery::discover`].
    ///
    /// # Errors
    /// [`Error::Discovery`](crate::Error::Discovery).
    pub async fn discover(&self, scope: &Scope, peers: &[Arc<dyn Peer>]) -> Result<Report> {
        Ok(self.discovery.discover(scope, peers).await?)
    }

    /// Drains the lane, commits, checkpoints and closes the store.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the last commit or checkpoint failed.
    pub async fn close(&self) -> Result<()> {
        Ok(self.store().close().await?)
    }
}
