//! The index's configuration: walk limit, application indexers, size targets and the hard
//! size limit, fixed when the index is opened.

use std::sync::Arc;

use crate::indexer::Indexer;

/// Index configuration. Start from [`IndexConfig::default`] and change fields.
#[derive(Clone)]
pub struct IndexConfig {
    /// Most blocks one DAG walk visits ([`Index::reachable`](crate::Index::reachable), [`Index::missing`](crate::Index::missing), exports),
    /// present and missing together (default 1,000,000). Bounds the memory and the read
    /// transaction of a walk; past it those calls fail with
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded).
    pub reachable_limit: usize,
    /// Application hooks run at staging time, in order (default none).
    pub indexers: Vec<Arc<dyn Indexer>>,
    /// Size target in bytes (pages holding data): past it, a put starts a background
    /// [`Index::gc`](crate::Index::gc) (default none).
    pub gc_target_bytes: Option<u64>,
    /// Size target in stored CIDs: past it, a put starts a background [`Index::gc`](crate::Index::gc)
    /// (default none).
    pub gc_target_blobs: Option<u64>,
    /// Hard limit in bytes (pages holding data): a put that would pass it fails with
    /// [`Error::StoreFull`](crate::Error::StoreFull) and writes nothing (default none).
    pub max_bytes: Option<u64>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            reachable_limit: 1_000_000,
            indexers: Vec::new(),
            gc_target_bytes: None,
            gc_target_blobs: None,
            max_bytes: None,
        }
    }
}

impl std::fmt::Debug for IndexConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexConfig")
            .field("reachable_limit", &self.reachable_limit)
            .field("indexers", &self.indexers.len())
            .field("gc_target_bytes", &self.gc_target_bytes)
            .field("gc_target_blobs", &self.gc_target_blobs)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl IndexConfig {
    /// Adds an application [`Indexer`].
    pub fn with_indexer(mut self, indexer: impl Indexer) -> Self {
        self.indexers.push(Arc::new(indexer));
        self
    }
}
