//! Builds a DAG scope's snapshot: a breadth-first walk from the root over the index's links,
//! recording each block's depth (shortest path from the root through present blocks), which
//! becomes its reconciliation timestamp.
//!
//! A full build is the index's walk ([`DagSnapshot::walk_with_depths`]). Blocks are visited
//! in increasing depth, so a visited block's depth is final. That makes an incremental walk
//! possible. Between deletions the present set only grows, and only through *open*
//! blocks: missing blocks that got stored and unindexed leaves that got indexed. Re-walking
//! from the open blocks that were indexed since the previous snapshot (seeded at their
//! recorded depths, in increasing depth, like the full walk) gives exactly the full walk's
//! answer, unless a new block offers a shorter path to a block that was already an item; then
//! its depth (timestamp) would change, and we fall back to a full walk rather than patch it.
//! A deletion since the previous snapshot also forces a full walk (`indexed_after` is `None`).
//!
//! A build reads everything (the generation, the blocks indexed since the previous snapshot,
//! the walk) from one [`DagSnapshot`], so it is exactly the DAG at the generation it records,
//! and it costs one pool hop. The resumed walk looks up one depth level per batch.
//!
//! A block stored by a plain `Store::put` does not bump the DAG generation, so a snapshot
//! may miss it until the next indexed write; that costs a redundant fetch (which finds the
//! blob stored and skips it), never a wrong answer about what is stored.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use cid::Cid;
use seedbank_index::{DagSnapshot, Index, Presence};

use super::{BuildKind, Haves, Node, NodeState, Sealed};
use crate::error::Result;
use crate::item::ItemId;
use crate::scope::Scope;

/// Builds the snapshot of the DAG under `root`, from `prev` when that is provably correct.
/// `limit` bounds the blocks visited (present and missing), as the index's walks do.
pub(crate) async fn build(
    index: &Index,
    root: Cid,
    prev: Option<Arc<Haves>>,
    limit: usize,
) -> Result<Haves> {
    let haves = index
        .read_dag(move |dag| build_in(dag, root, prev.as_deref(), limit))
        .await?;
    Ok(haves)
}

/// [`build`] inside one read snapshot.
fn build_in(
    dag: &DagSnapshot<'_>,
    root: Cid,
    prev: Option<&Haves>,
    limit: usize,
) -> seedbank_index::Result<Haves> {
    let generation = dag.generation()?;
    let scope = Scope::dag(root);
    if let Some(prev) = prev {
        if let Some((kind, sealed)) = extend(dag, root, prev, generation, limit)? {
            return Ok(Haves::new(scope, generation, kind, sealed, None));
        }
    }
    let walk = dag.walk_with_depths(&root, limit)?;
    if !walk.complete {
        return Err(seedbank_index::Error::LimitExceeded { root, limit });
    }
    let nodes: HashMap<ItemId, Node> = walk
        .blocks
        .into_iter()
        .map(|b| {
            let node = Node {
                cid: b.cid,
                depth: b.depth,
                state: state_of(b.presence),
            };
            (ItemId::of(&b.cid), node)
        })
        .collect();
    let sealed = Arc::new(Sealed::new(nodes));
    Ok(Haves::new(scope, generation, BuildKind::Full, sealed, None))
}

/// What a walk records for a block the index looked up.
fn state_of(presence: Presence) -> NodeState {
    match presence {
        Presence::Indexed => NodeState::Present,
        Presence::Unindexed => NodeState::Leaf,
        Presence::Missing => NodeState::Missing,
    }
}

/// Extends `prev` to `generation`; `None` when only a full walk is correct.
fn extend(
    dag: &DagSnapshot<'_>,
    root: Cid,
    prev: &Haves,
    generation: u64,
    limit: usize,
) -> seedbank_index::Result<Option<(BuildKind, Arc<Sealed>)>> {
    if generation < prev.generation() {
        return Ok(None);
    }
    // Scanning more new rows than the snapshot has blocks costs about as much as a walk.
    let cap = prev.sealed().nodes.len().max(10_000);
    let Some(new) = dag.indexed_after(prev.generation(), cap)? else {
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
    match Walk::resume(dag, root, nodes.clone(), &opened, limit)? {
        Some(nodes) => Ok(Some((BuildKind::Incremental, Arc::new(Sealed::new(nodes))))),
        None => Ok(None),
    }
}

/// A resumed walk in progress.
struct Walk<'d, 'c> {
    dag: &'d DagSnapshot<'c>,
    root: Cid,
    limit: usize,
    nodes: HashMap<ItemId, Node>,
    queue: BinaryHeap<Reverse<(u32, ItemId)>>,
}

/// A shorter path to a block that was already an item: only a full walk is correct.
struct Reshaped;

impl<'d, 'c> Walk<'d, 'c> {
    /// Re-walks from `opened` blocks of a previous walk; `None` if it must be redone in full.
    fn resume(
        dag: &'d DagSnapshot<'c>,
        root: Cid,
        mut nodes: HashMap<ItemId, Node>,
        opened: &[ItemId],
        limit: usize,
    ) -> seedbank_index::Result<Option<HashMap<ItemId, Node>>> {
        let mut queue = BinaryHeap::with_capacity(opened.len());
        for id in opened {
            let node = nodes.get_mut(id).expect("opened blocks are known");
            node.state = NodeState::Pending;
            queue.push(Reverse((node.depth, *id)));
        }
        let mut walk = Walk {
            dag,
            root,
            limit,
            nodes,
            queue,
        };
        Ok(walk.run()?.ok().map(|()| walk.nodes))
    }

    /// Visits queued blocks one depth level at a time, each level looked up in one batch.
    /// Links found at depth `d` are offered at `d + 1`, so they never join the level being
    /// visited, and a block's depth is final when its level is.
    fn run(&mut self) -> seedbank_index::Result<Result<(), Reshaped>> {
        while let Some(&Reverse((depth, _))) = self.queue.peek() {
            let level = self.pop_level(depth);
            let cids: Vec<Cid> = level.iter().map(|id| self.nodes[id].cid).collect();
            let found = self.dag.links_many(&cids)?;
            for (id, block) in level.iter().zip(found) {
                self.nodes.get_mut(id).expect("known").state = state_of(block.presence);
                for child in block.links {
                    if let Err(reshaped) = self.offer(child, depth + 1)? {
                        return Ok(Err(reshaped));
                    }
                }
            }
        }
        Ok(Ok(()))
    }

    /// Takes every queued block at `depth` (the smallest queued) that still waits there.
    fn pop_level(&mut self, depth: u32) -> Vec<ItemId> {
        let mut level = Vec::new();
        while let Some(&Reverse((d, id))) = self.queue.peek() {
            if d != depth {
                break;
            }
            self.queue.pop();
            let node = &self.nodes[&id];
            // Otherwise visited already, or queued again at a smaller depth.
            if node.state == NodeState::Pending && node.depth == depth {
                level.push(id);
            }
        }
        level
    }

    /// Queues `cid` at `depth` unless it is known at a depth no larger.
    fn offer(&mut self, cid: Cid, depth: u32) -> seedbank_index::Result<Result<(), Reshaped>> {
        let id = ItemId::of(&cid);
        match self.nodes.get_mut(&id) {
            None => {
                if self.nodes.len() >= self.limit {
                    return Err(seedbank_index::Error::LimitExceeded {
                        root: self.root,
                        limit: self.limit,
                    });
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
