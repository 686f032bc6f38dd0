//! Breadth-first DAG walks that report each block's depth and presence.
//!
//! A block's *depth* is the length of the shortest path to it from the root through blocks
//! whose links are known ([`Presence::Indexed`]); the root is at depth 0. Missing and
//! unindexed blocks are reached but not expanded. The walk goes level by level, looking up
//! each level in one batch, all inside one read snapshot, so a block's depth is final the
//! first time it is reached and the walk's answer matches its DAG generation.

use std::collections::HashSet;

use cid::Cid;

use crate::error::Result;
use crate::snapshot::{DagSnapshot, Presence};

/// One block reached by [`Index::walk_with_depths`](crate::Index::walk_with_depths).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalkedBlock {
    /// The CID as the walk first met it (the root as given, then as its parent links it).
    pub cid: Cid,
    /// Shortest path from the root through indexed blocks, in links.
    pub depth: u32,
    /// Whether it is stored and indexed. Only [`Presence::Indexed`] blocks were expanded.
    pub presence: Presence,
}

/// The outcome of [`Index::walk_with_depths`](crate::Index::walk_with_depths), read in one snapshot.
///
/// A block's links never change once indexed, so between two walks with no deletion in
/// between (see [`DagSnapshot::indexed_after`](crate::DagSnapshot::indexed_after)) the
/// present set only grows: only blocks that were missing or unindexed can change, and a
/// block's depth can only shrink.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DagWalk {
    /// The DAG generation of the snapshot the walk read
    /// ([`Index::dag_generation`](crate::Index::dag_generation)).
    pub generation: u64,
    /// Every block reached, each once (CIDv0 and CIDv1 of one block are one block), in
    /// breadth-first order: by depth, then in the order the walk met them.
    pub blocks: Vec<WalkedBlock>,
    /// False when the walk reached its limit: `blocks` then holds the first `limit` blocks
    /// in breadth-first order, with their final depths, and some links were not followed.
    pub complete: bool,
}

/// The identity of a block in a walk: codec and multihash, whatever the CID version.
fn key(cid: &Cid) -> Cid {
    Cid::new_v1(cid.codec(), *cid.hash())
}

impl DagSnapshot<'_> {
    /// Walks the DAG under `root` breadth-first in this snapshot, reaching at most `limit`
    /// blocks, present and missing together. See [`Index::walk_with_depths`](crate::Index::walk_with_depths).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if a read failed or a row does not hold a
    /// valid CID.
    pub fn walk_with_depths(&self, root: &Cid, limit: usize) -> Result<DagWalk> {
        let mut walk = DagWalk {
            generation: self.generation()?,
            blocks: Vec::new(),
            complete: limit > 0,
        };
        if limit == 0 {
            return Ok(walk);
        }
        let mut seen = HashSet::from([key(root)]);
        let mut level = vec![*root];
        let mut depth = 0u32;
        while !level.is_empty() {
            let found = self.links_many(&level)?;
            let mut next = Vec::new();
            for (cid, block) in level.into_iter().zip(found) {
                for link in block.links {
                    let k = key(&link);
                    if seen.contains(&k) {
                        continue;
                    }
                    if seen.len() >= limit {
                        walk.complete = false;
                        continue;
                    }
                    seen.insert(k);
                    next.push(link);
                }
                walk.blocks.push(WalkedBlock {
                    cid,
                    depth,
                    presence: block.presence,
                });
            }
            level = next;
            depth += 1;
        }
        Ok(walk)
    }
}
