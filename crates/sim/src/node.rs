//! An embedded node for simulations and tests: a [`seedbank::Node`] opened with small read
//! pools, with its index and haves cache at hand.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use seedbank::{Node, NodeOptions};
use seedbank_blobstore::{Blob, Config, Priority, Synchronous};
use seedbank_index::{Index, IndexPutOptions};

use seedbank_discovery::{
    Discovery, DiscoveryConfig, Error, HavesCache, Responder, ResponderConfig, Result,
};

/// A [`seedbank::Node`] as simulations and tests use it: the same door an application
/// opens, plus its index and haves cache as fields (tests read them often) and a
/// responder or discovery with a configuration per call.
#[derive(Clone, Debug)]
pub struct SimNode {
    node: Node,
    /// The node's index (and, through it, its store).
    pub index: Index,
    /// The node's haves cache, shared by its discovery and its responders.
    pub haves: HavesCache,
}

impl SimNode {
    /// Opens a node at `path` with small read pools and `synchronous = NORMAL` (many nodes
    /// share one machine in a simulation).
    ///
    /// # Errors
    /// [`Error::Index`] / [`Error::Blobstore`] if the store cannot be opened.
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
        let options = NodeOptions {
            store: config,
            ..NodeOptions::default()
        };
        let node = Node::open(path, options)
            .await
            .map_err(into_discovery_error)?;
        Ok(SimNode {
            index: node.index().clone(),
            haves: node.haves().clone(),
            node,
        })
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
        self.node
            .put_many(blobs, opts)
            .await
            .map_err(into_discovery_error)?;
        Ok(())
    }

    /// A responder named `id` over the node's haves cache, with its own configuration.
    pub fn responder(&self, id: &str, config: ResponderConfig) -> Responder {
        Responder::new(id, self.haves.clone(), config)
    }

    /// A discovery over the node's haves cache, with its own configuration.
    pub fn discovery(&self, config: DiscoveryConfig) -> Discovery {
        Discovery::new(self.haves.clone(), config)
    }
}

/// Everything else is the application's [`Node`]: `store()`, `get`, `add`, `cat`, `pin`, ...
impl Deref for SimNode {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

/// The simulator reports discovery's error; a node's open and put fail only in the layers
/// discovery already wraps.
fn into_discovery_error(e: seedbank::Error) -> Error {
    match e {
        seedbank::Error::Blobstore(e) => Error::Blobstore(Arc::new(e)),
        seedbank::Error::Index(e) => Error::Index(Arc::new(e)),
        seedbank::Error::Discovery(e) => e,
        // Not reachable from `open`/`put_many`; kept whole as the io error's source.
        other => Error::from(seedbank_blobstore::Error::Io(std::io::Error::other(other))),
    }
}
