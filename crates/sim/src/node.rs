//! An embedded node for simulations and tests: a store, its index and its haves cache.

use std::path::Path;

use seedbank_blobstore::{Blob, Config, Priority, Store, Synchronous};
use seedbank_index::{Index, IndexConfig, IndexPutOptions};

use seedbank_discovery::{
    Discovery, DiscoveryConfig, HavesCache, HavesConfig, Responder, ResponderConfig, Result,
};

/// A store with its index and haves cache, opened at a path.
#[derive(Clone, Debug)]
pub struct SimNode {
    /// The node's index (and, through it, its store).
    pub index: Index,
    /// The node's haves cache, shared by its discovery and its responder.
    pub haves: HavesCache,
}

impl SimNode {
    /// Opens a node at `path` with small read pools and `synchronous = NORMAL` (many nodes
    /// share one machine in a simulation).
    ///
    /// # Errors
    /// [`Error::Index`](seedbank_discovery::Error::Index) / [`Error::Blobstore`](seedbank_discovery::Error::Blobstore)
    /// if the store cannot be opened.
    pub async fn open(path: &Path) -> Result<SimNode> {
        let config = Config {
            info_pool_size: 1,
            data_pool_size: 2,
            synchronous: Synchronous::Normal,
            ..Config::default()
        };
        Self::open_with(path, config).await
    }

    /// Opens a node at `path` with the given store configuration.
    ///
    /// # Errors
    /// As [`SimNode::open`].
    pub async fn open_with(path: &Path, config: Config) -> Result<SimNode> {
        let store = Store::open(path, config)?;
        let index = Index::open(store, IndexConfig::default()).await?;
        let haves = HavesCache::new(index.clone(), HavesConfig::default());
        Ok(SimNode { index, haves })
    }

    /// The node's store.
    pub fn store(&self) -> &Store {
        self.index.store()
    }

    /// Stores blobs through the index (links indexed), joining `scope` if given.
    ///
    /// # Errors
    /// As [`Index::put_many`].
    pub async fn put(&self, blobs: Vec<Blob>, scope: Option<&str>) -> Result<()> {
        let mut opts = IndexPutOptions::new(Priority::Background, "sim");
        if let Some(scope) = scope {
            opts = opts.scope(scope);
        }
        self.index.put_many(blobs, opts).await?;
        Ok(())
    }

    /// A responder named `id` over the node's haves cache.
    pub fn responder(&self, id: &str, config: ResponderConfig) -> Responder {
        Responder::new(id, self.haves.clone(), config)
    }

    /// A discovery over the node's haves cache.
    pub fn discovery(&self, config: DiscoveryConfig) -> Discovery {
        Discovery::new(self.haves.clone(), config)
    }
}
