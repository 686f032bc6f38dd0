//! DAG walks: everything reachable from a root, what of it is stored and what is missing.
//!
//! A walk is depth-first, pre-order, following each block's links in the order they appear
//! in its bytes, and visits every block once: the order a CAR export writes. It runs in one
//! read transaction, so it sees one snapshot.
//!
//! *Present* means stored under the exact CID key `(multihash, codec)`, as
//! [`Store::get`](seedbank_blobstore::Store::get) finds it; a block stored under the same
//! multihash with another codec does not count. Identity CIDs are never missing: their bytes
//! are their digest. A present blob written without the index has unknown links and is
//! walked as a leaf.
//!
//! The DAG generation ([`Index::dag_generation`]) stands in for a per-root generation: it
//! grows whenever a blob is indexed. While blobs are written through the index (as imports
//! and discovery do), that is the only way a walk's answer can change.

use std::collections::HashSet;

use cid::Cid;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::PoolKind;

use crate::error::{Error, Result, SqlContext};
use crate::row::CidRow;
use crate::snapshot::{generation_of, DagSnapshot, Presence};
use crate::Index;

/// The outcome of one DAG walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dag {
    /// Blocks available locally, in traversal order (the root first when it is present).
    pub present: Vec<Cid>,
    /// Blocks referenced from present ones (or the root itself) that are not stored, in the
    /// order the walk met them.
    pub missing: Vec<Cid>,
    /// False when the walk stopped at its limit: both lists are then partial.
    pub complete: bool,
}

/// Walks the DAG under `root`, visiting at most `limit` blocks.
pub(crate) fn walk(conn: &Connection, root: Cid, limit: usize) -> Result<Dag> {
    let tx = conn.unchecked_transaction().during("begin walk")?;
    let snapshot = DagSnapshot::new(&tx);
    let mut dag = Dag {
        complete: true,
        ..Dag::default()
    };
    let mut seen: HashSet<CidRow> = HashSet::new();
    let mut stack = vec![root];
    while let Some(cid) = stack.pop() {
        let key = CidRow {
            version: 0,
            ..CidRow::of(&cid)
        };
        if seen.contains(&key) {
            continue;
        }
        if seen.len() >= limit {
            dag.complete = false;
            break;
        }
        seen.insert(key);
        let block = snapshot.block(&cid)?;
        if block.presence == Presence::Missing {
            dag.missing.push(cid);
            continue;
        }
        dag.present.push(cid);
        // Reversed so the first link is popped, and so walked, first.
        stack.extend(block.links.into_iter().rev());
    }
    tx.finish().during("end walk")?;
    Ok(dag)
}

impl Index {
    /// Walks the DAG under `root` visiting at most `limit` blocks, present and missing
    /// together; [`Dag::complete`] says whether the limit cut it short.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn walk(&self, root: &Cid, limit: usize) -> Result<Dag> {
        let root = *root;
        self.read(PoolKind::Data, move |conn| walk(conn, root, limit))
            .await
    }

    /// Walks the whole DAG under `root`, failing past the configured limit.
    async fn walk_all(&self, root: &Cid) -> Result<Dag> {
        let limit = self.config().reachable_limit;
        let dag = self.walk(root, limit).await?;
        if !dag.complete {
            return Err(Error::LimitExceeded { root: *root, limit });
        }
        Ok(dag)
    }

    /// The blocks reachable from `root` that are available locally, in traversal order
    /// (depth-first, links in order; the root first when present).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`IndexConfig::reachable_limit`](crate::IndexConfig)
    /// blocks, [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn reachable(&self, root: &Cid) -> Result<Vec<Cid>> {
        Ok(self.walk_all(root).await?.present)
    }

    /// The blocks referenced from the reachable set (or the root itself) that are not
    /// stored, in the order a walk meets them. Empty when the DAG is complete locally.
    ///
    /// # Errors
    /// As [`Index::reachable`].
    pub async fn missing(&self, root: &Cid) -> Result<Vec<Cid>> {
        Ok(self.walk_all(root).await?.missing)
    }

    /// A counter that grows in the same transaction as every blob newly indexed and every
    /// deletion (the largest `blob_index.seq`, deletion marker included). While blobs are written through the
    /// index, a DAG walk's answer can only change when it changes, so discovery may key a DAG
    /// scope's haves on `(root, dag_generation)`. A blob written with a plain
    /// [`Store::put`](seedbank_blobstore::Store::put) does not move it. Served by the `info`
    /// pool.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn dag_generation(&self) -> Result<u64> {
        self.read(PoolKind::Info, generation_of).await
    }
}
