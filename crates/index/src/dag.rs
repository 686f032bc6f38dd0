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
//! The DAG generation ([`Index::dag_generation`](crate::Index::dag_generation)) stands in for a per-root generation: it
//! grows whenever a blob is indexed. While blobs are written through the index (as imports
//! and discovery do), that is the only way a walk's answer can change.

use std::collections::HashSet;

use cid::Cid;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{PoolKind, Store};

use crate::access;
use crate::error::{Error, Result, SqlContext};
use crate::row::CidRow;
use crate::snapshot::{DagSnapshot, Presence};

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
fn walk(conn: &Connection, root: Cid, limit: usize) -> Result<Dag> {
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

/// Walks the whole DAG under `root`, failing with [`Error::LimitExceeded`] past `limit`
/// blocks.
fn walk_whole(conn: &Connection, root: Cid, limit: usize) -> Result<Dag> {
    let dag = walk(conn, root, limit)?;
    if !dag.complete {
        return Err(Error::LimitExceeded { root, limit });
    }
    Ok(dag)
}

/// [`Index::walk`](crate::Index::walk), on the data pool.
pub(crate) async fn walk_dag(store: &Store, root: &Cid, limit: usize) -> Result<Dag> {
    let root = *root;
    access::read(store, PoolKind::Data, move |c| walk(c, root, limit)).await
}

/// The whole DAG under `root` on the data pool, failing with [`Error::LimitExceeded`] past
/// `limit` blocks ([`Index::reachable`](crate::Index::reachable),
/// [`Index::missing`](crate::Index::missing)).
pub(crate) async fn walk_all(store: &Store, root: &Cid, limit: usize) -> Result<Dag> {
    let root = *root;
    access::read(store, PoolKind::Data, move |c| walk_whole(c, root, limit)).await
}
