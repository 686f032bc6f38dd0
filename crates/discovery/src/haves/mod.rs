//! Haves snapshots: the local blobs of one scope at one generation, sorted and sealed for set
//! reconciliation, built once and shared read-only by every session that needs them.
//!
//! Items are `(timestamp, id)` pairs ordered by timestamp, then id. The id is
//! [`ItemId::of`] the CID. The timestamp must mean the same thing on every peer, or the same
//! blob would sit in different ranges on the two sides and be exchanged for nothing:
//!
//! - DAG scopes use the block's depth (shortest path from the root through present blocks),
//!   so a DAG's layers cluster and blocks missing below a frontier fall in a few ranges;
//! - named scopes use 0 (pure id order). Insertion sequence numbers are local to each store,
//!   so two peers holding the same members would disagree on every timestamp.
//!
//! Both are read through the index's public queries, each build in one index snapshot: named
//! scopes through [`Index::scope_delta`](seedbank_index::Index::scope_delta), DAG scopes
//! through [`Index::read_dag`](seedbank_index::Index::read_dag) (a breadth-first walk with
//! depths, or a walk resumed from the blocks that changed). Discovery reads no table itself.

mod cache;
mod dag;
mod named;

use std::collections::HashMap;
use std::sync::Arc;

use cid::Cid;
use negentropy::{NegentropyStorageBase, NegentropyStorageVector};

pub(crate) use cache::serving;
pub use cache::{HavesCache, HavesConfig, HavesStats};

use crate::item::ItemId;
use crate::scope::Scope;

/// How a snapshot was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum BuildKind {
    /// A full scan of the scope.
    Full,
    /// The previous snapshot plus what was added since (provably nothing was removed).
    Incremental,
    /// The previous snapshot's items, unchanged: nothing written since touched the scope.
    Reused,
}

/// What a DAG walk knows about one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// Stored and indexed: its links were followed.
    Present,
    /// Stored without the index: links unknown, walked as a leaf (it may gain links later).
    Leaf,
    /// Referenced but not stored.
    Missing,
    /// Discovered by a walk in progress, not visited yet.
    Pending,
}

/// One block of a snapshot.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub cid: Cid,
    /// Depth from the root (0 for named scopes).
    pub depth: u32,
    pub state: NodeState,
}

impl Node {
    fn is_item(&self) -> bool {
        matches!(self.state, NodeState::Present | NodeState::Leaf)
    }
}

/// The part of a snapshot that a reused snapshot shares with its predecessor.
#[derive(Debug)]
pub(crate) struct Sealed {
    storage: NegentropyStorageVector,
    /// Every item (and, for DAG scopes, every missing block met by the walk), by id.
    nodes: HashMap<ItemId, Node>,
    /// Missing blocks (DAG scopes), by depth then id.
    missing: Vec<Cid>,
    items: usize,
}

impl Sealed {
    pub(crate) fn new(nodes: HashMap<ItemId, Node>) -> Self {
        let items: Vec<(&ItemId, &Node)> = nodes.iter().filter(|(_, n)| n.is_item()).collect();
        let mut storage = NegentropyStorageVector::with_capacity(items.len());
        for (id, node) in &items {
            storage
                .insert(u64::from(node.depth), id.to_negentropy())
                .expect("storage is not sealed yet");
        }
        storage.seal().expect("sealed once");
        let mut missing: Vec<(u32, ItemId, Cid)> = nodes
            .iter()
            .filter(|(_, n)| n.state == NodeState::Missing)
            .map(|(id, n)| (n.depth, *id, n.cid))
            .collect();
        missing.sort_unstable_by_key(|(depth, id, _)| (*depth, *id));
        Sealed {
            items: items.len(),
            storage,
            nodes,
            missing: missing.into_iter().map(|(_, _, cid)| cid).collect(),
        }
    }
}

/// Where a named scope's snapshot stands, to extend it incrementally: the scope's counters
/// read in the same index snapshot as its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NamedCursor {
    /// The last member sequence number the scope had handed out (0 before any member).
    pub last_seq: u64,
    /// Members ever removed from the scope.
    pub removals: u64,
}

impl NamedCursor {
    pub(crate) fn of(delta: &seedbank_index::ScopeDelta) -> Self {
        NamedCursor {
            last_seq: delta.last_seq,
            removals: delta.removals,
        }
    }
}

/// The local blobs of one scope at one generation, sealed for reconciliation.
///
/// Built by [`HavesCache`] once per `(scope, generation)` and shared (`Arc`) by every
/// discovery session and every responder answer for that snapshot.
#[derive(Debug)]
pub struct Haves {
    scope: Scope,
    generation: u64,
    kind: BuildKind,
    sealed: Arc<Sealed>,
    named: Option<NamedCursor>,
}

impl Haves {
    pub(crate) fn new(
        scope: Scope,
        generation: u64,
        kind: BuildKind,
        sealed: Arc<Sealed>,
        named: Option<NamedCursor>,
    ) -> Self {
        Haves {
            scope,
            generation,
            kind,
            sealed,
            named,
        }
    }

    /// The scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The generation the snapshot was read at (the scope's generation for named scopes, the
    /// index's DAG generation for DAG scopes). It may be newer than the generation the
    /// snapshot was asked for, never older.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How the snapshot was produced.
    pub fn build_kind(&self) -> BuildKind {
        self.kind
    }

    /// Number of local blobs in the scope.
    pub fn len(&self) -> usize {
        self.sealed.items
    }

    /// True when the scope holds no local blob.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the snapshot holds `cid` (compared by multihash and codec).
    pub fn contains(&self, cid: &Cid) -> bool {
        self.contains_id(&ItemId::of(cid))
    }

    /// True if the snapshot holds the blob with this id.
    pub fn contains_id(&self, id: &ItemId) -> bool {
        self.sealed.nodes.get(id).is_some_and(Node::is_item)
    }

    /// The CID of a local blob of the scope, from its reconciliation id.
    pub fn cid_of(&self, id: &ItemId) -> Option<Cid> {
        self.sealed
            .nodes
            .get(id)
            .filter(|n| n.is_item())
            .map(|n| n.cid)
    }

    /// Blocks referenced from the DAG's present blocks (or the root itself) that are not
    /// stored, by depth: what a DAG discovery must fetch first. Empty for named scopes.
    pub fn missing(&self) -> &[Cid] {
        &self.sealed.missing
    }

    /// Every local blob of the scope with its timestamp (depth for DAG scopes, 0 for named),
    /// in reconciliation order.
    pub fn items(&self) -> Vec<(u64, Cid)> {
        let storage = &self.sealed.storage;
        let len = storage.size().expect("sealed");
        let mut out = Vec::with_capacity(len);
        storage
            .iterate(0, len, &mut |item, _| {
                let id = ItemId::from_negentropy(&item.id);
                out.push((item.timestamp, self.sealed.nodes[&id].cid));
                Ok(true)
            })
            .expect("in bounds");
        out
    }

    pub(crate) fn storage(&self) -> &NegentropyStorageVector {
        &self.sealed.storage
    }

    pub(crate) fn sealed(&self) -> &Arc<Sealed> {
        &self.sealed
    }

    pub(crate) fn named_cursor(&self) -> Option<NamedCursor> {
        self.named
    }
}
