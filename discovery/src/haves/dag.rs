//! Builds a DAG scope's snapshot: a breadth-first walk from the root over the index's
//! `links` table, recording each block's depth (shortest path from the root through present
//! blocks), which becomes its reconciliation timestamp.
//!
//! The walk is Dijkstra with unit weights: blocks are visited in increasing depth, so a
//! visited block's depth is final. That makes an incremental walk possible. Blocks are never
//! deleted, so the present set only grows, and only through *open* blocks: missing blocks
//! that got stored and unindexed leaves that got indexed. Re-walking from the open blocks
//! that were indexed since the previous snapshot (seeded at their recorded depths) gives
//! exactly the full walk's answer, unless a new block offers a shorter path to a block that
//! was already an item; then its depth (timestamp) would change, and we fall back to a full
//! walk rather than patch it.
//!
//! A block stored by a plain `Store::put` does not bump the DAG generation, so a snapshot
//! may miss it until the next indexed write; that costs a redundant fetch (which finds the
//! blob stored and skips it), never a wrong answer about what is stored.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_index::extract_links;

use super::sql::{dag_generation, indexed_since, is_stored, links_of, During};
use super::{BuildKind, Haves, Node, NodeState, Sealed};
use crate::error::{Error, Result};
use crate::item::ItemId;
use crate::scope::Scope;

/// Multihash code of the identity "hash": its digest is the block itself.
const IDENTITY: u64 = 0x00;

/// Builds the snapshot of the DAG under `root`, from `prev` when that is provably correct.
/// `limit` bounds the blocks visited (present and missing), as the index's walks do.
pub(crate) fn build(
    conn: &Connection,
    root: Cid,
    prev: Option<&Haves>,
    limit: usize,
) -> Result<Haves> {
    let tx = conn.unchecked_transaction().during("begin haves walk")?;
    let generation = dag_generation(&tx)?;
    let scope = Scope::dag(root);
    let incremental = match prev {
        Some(prev) => extend(&tx, root, prev, generation, limit)?,
        None => None,
    };
    let haves = match incremental {
        Some((kind, sealed)) => Haves::new(scope, generation, kind, sealed, None),
        None => {
            let nodes = Walk::full(&tx, root, limit)?;
            Haves::new(
                scope,
                generation,
                BuildKind::Full,
                Arc::new(Sealed::new(nodes)),
                None,
            )
        }
    };
    tx.finish().during("end haves walk")?;
    Ok(haves)
}

/// Extends `prev` to `generation`; `None` when only a full walk is correct.
fn extend(
    conn: &Connection,
    root: Cid,
    prev: &Haves,
    generation: u64,
    limit: usize,
) -> Result<Option<(BuildKind, Arc<Sealed>)>> {
    if generation < prev.generation() {
        return Ok(None);
    }
    // Scanning more new rows than the snapshot has blocks costs about as much as a walk.
    let cap = prev.sealed().nodes.len().max(10_000);
    let Some(new) = indexed_since(conn, prev.generation(), cap)? else {
        return Ok(None);
    };
    let new: HashSet<ItemId> = new.iter().map(ItemId::of).collect();
    let nodes = &prev.sealed().nodes;
    let opened: Vec<ItemId> = nodes
        .iter()
        .filter(|(id, n)| {
            matches!(n.state, NodeState::Missing | NodeState::Leaf) && new.contains(id)
        })
        .map(|(id, _)| *id)
        .collect();
    if opened.is_empty() {
        return Ok(Some((BuildKind::Reused, prev.sealed().clone())));
    }
    match Walk::resume(conn, root, nodes.clone(), &opened, limit)? {
        Some(nodes) => Ok(Some((BuildKind::Incremental, Arc::new(Sealed::new(nodes))))),
        None => Ok(None),
    }
}

/// A walk in progress.
struct Walk<'c> {
    conn: &'c Connection,
    root: Cid,
    limit: usize,
    nodes: HashMap<ItemId, Node>,
    queue: BinaryHeap<Reverse<(u32, ItemId)>>,
}

/// A shorter path to a block that was already an item: only a full walk is correct.
struct Reshaped;

impl<'c> Walk<'c> {
    fn new(conn: &'c Connection, root: Cid, limit: usize, nodes: HashMap<ItemId, Node>) -> Self {
        Walk {
            conn,
            root,
            limit,
            nodes,
            queue: BinaryHeap::new(),
        }
    }

    fn full(conn: &Connection, root: Cid, limit: usize) -> Result<HashMap<ItemId, Node>> {
        let mut walk = Walk::new(conn, root, limit, HashMap::new());
        let offered = walk.offer(root, 0)?;
        debug_assert!(offered.is_ok(), "an empty walk has no items to reshape");
        match walk.run()? {
            Ok(()) => Ok(walk.nodes),
            Err(Reshaped) => unreachable!("a full walk visits blocks in final depth order"),
        }
    }

    /// Re-walks from `opened` blocks of a previous walk; `None` if it must be redone in full.
    fn resume(
        conn: &Connection,
        root: Cid,
        nodes: HashMap<ItemId, Node>,
        opened: &[ItemId],
        limit: usize,
    ) -> Result<Option<HashMap<ItemId, Node>>> {
        let mut walk = Walk::new(conn, root, limit, nodes);
        for id in opened {
            let node = walk.nodes.get_mut(id).expect("opened blocks are known");
            node.state = NodeState::Pending;
            walk.queue.push(Reverse((node.depth, *id)));
        }
        Ok(walk.run()?.ok().map(|()| walk.nodes))
    }

    fn run(&mut self) -> Result<Result<(), Reshaped>> {
        while let Some(Reverse((depth, id))) = self.queue.pop() {
            let node = &self.nodes[&id];
            if node.state != NodeState::Pending || node.depth != depth {
                continue; // Visited already, or queued again at a smaller depth.
            }
            let cid = node.cid;
            let (state, children) = self.inspect(&cid)?;
            self.nodes.get_mut(&id).expect("known").state = state;
            for child in children {
                if let Err(reshaped) = self.offer(child, depth + 1)? {
                    return Ok(Err(reshaped));
                }
            }
        }
        Ok(Ok(()))
    }

    /// Whether a block is stored, and its links.
    fn inspect(&self, cid: &Cid) -> Result<(NodeState, Vec<Cid>)> {
        if cid.hash().code() == IDENTITY {
            let digest = Bytes::copy_from_slice(cid.hash().digest());
            return Ok((
                NodeState::Present,
                extract_links(cid.codec(), &digest).links,
            ));
        }
        if !is_stored(self.conn, cid)? {
            return Ok((NodeState::Missing, Vec::new()));
        }
        Ok(match links_of(self.conn, cid)? {
            Some(links) => (NodeState::Present, links),
            None => (NodeState::Leaf, Vec::new()),
        })
    }

    /// Queues `cid` at `depth` unless it is known at a depth no larger.
    fn offer(&mut self, cid: Cid, depth: u32) -> Result<Result<(), Reshaped>> {
        let id = ItemId::of(&cid);
        match self.nodes.get_mut(&id) {
            None => {
                if self.nodes.len() >= self.limit {
                    return Err(Error::from(seedbank_index::Error::LimitExceeded {
                        root: self.root,
                        limit: self.limit,
                    }));
                }
                let state = NodeState::Pending;
                self.nodes.insert(id, Node { cid, depth, state });
            }
            Some(node) if node.depth > depth => {
                if node.is_item() {
                    return Ok(Err(Reshaped));
                }
                node.depth = depth;
                node.state = NodeState::Pending;
            }
            Some(_) => return Ok(Ok(())),
        }
        self.queue.push(Reverse((depth, id)));
        Ok(Ok(()))
    }
}
