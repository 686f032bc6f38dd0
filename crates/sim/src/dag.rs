//! Generated test DAGs: a DAG-CBOR root over DAG-CBOR branches over raw leaves.

use std::collections::BTreeMap;

use cid::Cid;
use ipld_core::ipld::Ipld;
use rand::{Rng, RngCore};
use seedbank_blobstore::{codec, Blob};

/// A block's place in a [`SimDag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The root.
    Root,
    /// Branch `b`.
    Branch(usize),
    /// Leaf `l` of branch `b`.
    Leaf(usize, usize),
}

/// A three-level DAG: `root → branches → leaves`.
#[derive(Clone, Debug)]
pub struct SimDag {
    /// The root block.
    pub root: Blob,
    /// Branch blocks, each linking to its leaves.
    pub branches: Vec<Blob>,
    /// Leaves of each branch, in branch order.
    pub leaves: Vec<Vec<Blob>>,
}

impl SimDag {
    /// A DAG named `name` with `branches × leaves_per_branch` random leaves of
    /// `leaf_size` bytes. `shared` branches of `base` (its first ones, with their leaves)
    /// are reused, so the two DAGs overlap.
    pub fn generate(
        rng: &mut impl RngCore,
        name: &str,
        branches: usize,
        leaves_per_branch: usize,
        leaf_size: usize,
        base: Option<(&SimDag, usize)>,
    ) -> SimDag {
        Self::generate_sized(rng, name, branches, leaves_per_branch, |_| leaf_size, base)
    }

    /// As [`SimDag::generate`], with each leaf's size drawn by `leaf_size` (mixed sizes; see
    /// [`log_uniform`]).
    pub fn generate_sized<R: RngCore>(
        rng: &mut R,
        name: &str,
        branches: usize,
        leaves_per_branch: usize,
        mut leaf_size: impl FnMut(&mut R) -> usize,
        base: Option<(&SimDag, usize)>,
    ) -> SimDag {
        let (mut branch_blobs, mut leaves) = (Vec::new(), Vec::new());
        if let Some((base, shared)) = base {
            let shared = shared.min(base.branches.len()).min(branches);
            branch_blobs.extend_from_slice(&base.branches[..shared]);
            leaves.extend_from_slice(&base.leaves[..shared]);
        }
        while branch_blobs.len() < branches {
            let own: Vec<Blob> = (0..leaves_per_branch)
                .map(|_| {
                    let mut data = vec![0u8; leaf_size(rng)];
                    rng.fill_bytes(&mut data);
                    Blob::new(codec::RAW, data)
                })
                .collect();
            let tag = format!("{name}/{}/{}", branch_blobs.len(), rng.gen::<u64>());
            branch_blobs.push(node(&tag, own.iter().map(|b| *b.cid())));
            leaves.push(own);
        }
        let root = node(name, branch_blobs.iter().map(|b| *b.cid()));
        SimDag {
            root,
            branches: branch_blobs,
            leaves,
        }
    }

    /// The root's CID.
    pub fn root_cid(&self) -> Cid {
        *self.root.cid()
    }

    /// Every block: root, branches, leaves.
    pub fn blocks(&self) -> Vec<Blob> {
        let mut out = vec![self.root.clone()];
        out.extend(self.branches.iter().cloned());
        out.extend(self.leaves.iter().flatten().cloned());
        out
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        1 + self.branches.len() + self.leaves.iter().map(Vec::len).sum::<usize>()
    }

    /// True for a DAG of no block (never: there is always a root).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The blocks for which `keep` is true: any mix, so a peer may hold leaves without
    /// their branch, or branches without the root (a partial replica).
    pub fn pick(&self, mut keep: impl FnMut(Part) -> bool) -> Vec<Blob> {
        let mut out = Vec::new();
        if keep(Part::Root) {
            out.push(self.root.clone());
        }
        for (b, branch) in self.branches.iter().enumerate() {
            if keep(Part::Branch(b)) {
                out.push(branch.clone());
            }
        }
        for (b, leaves) in self.leaves.iter().enumerate() {
            for (l, leaf) in leaves.iter().enumerate() {
                if keep(Part::Leaf(b, l)) {
                    out.push(leaf.clone());
                }
            }
        }
        out
    }

    /// The root, every branch and each leaf for which `keep(branch, leaf)` is true (a
    /// rooted replica; see [`SimDag::pick`] for partial ones).
    pub fn subset(&self, mut keep: impl FnMut(usize, usize) -> bool) -> Vec<Blob> {
        let mut out = vec![self.root.clone()];
        out.extend(self.branches.iter().cloned());
        for (b, leaves) in self.leaves.iter().enumerate() {
            out.extend(
                leaves
                    .iter()
                    .enumerate()
                    .filter(|(l, _)| keep(b, *l))
                    .map(|(_, blob)| blob.clone()),
            );
        }
        out
    }
}

/// A size between `min` and `max` bytes (inclusive), log-uniformly distributed: as many
/// blobs of 100 B–1 KiB as of 1–10 KiB, like the mixed content of real stores.
pub fn log_uniform(rng: &mut impl RngCore, min: usize, max: usize) -> usize {
    let (lo, hi) = ((min.max(1) as f64).ln(), (max.max(min).max(1) as f64).ln());
    let size = rng.gen_range(lo..=hi).exp().round() as usize;
    size.clamp(min, max.max(min))
}

/// A DAG-CBOR block `{name, links}`.
fn node(name: &str, links: impl Iterator<Item = Cid>) -> Blob {
    let map = Ipld::Map(BTreeMap::from([
        ("name".to_string(), Ipld::String(name.to_string())),
        (
            "links".to_string(),
            Ipld::List(links.map(Ipld::Link).collect()),
        ),
    ]));
    let bytes = serde_ipld_dagcbor::to_vec(&map).expect("a map of strings and links encodes");
    Blob::new(codec::DAG_CBOR, bytes)
}

/// A tree of DAG-CBOR blocks of any depth: the root has `fanouts[0]` children, each of
/// those `fanouts[1]`, and so on; the last level are leaves without links.
#[derive(Clone, Debug)]
pub struct SimTree {
    /// Every block, parents before their children (the root first).
    pub blocks: Vec<Blob>,
    /// Depth of each block of `blocks` (the root is 0).
    pub depths: Vec<u32>,
}

impl SimTree {
    /// A tree named `name` with the given fanout per level.
    pub fn generate(rng: &mut impl RngCore, name: &str, fanouts: &[usize]) -> SimTree {
        let mut tree = SimTree {
            blocks: Vec::new(),
            depths: Vec::new(),
        };
        let root = tree.subtree(rng, name, fanouts, 0);
        // `subtree` pushes children first; parents first reads better.
        let order: Vec<usize> = (0..tree.blocks.len()).rev().collect();
        tree.blocks = order.iter().map(|&i| tree.blocks[i].clone()).collect();
        tree.depths = order.iter().map(|&i| tree.depths[i]).collect();
        debug_assert_eq!(tree.blocks[0].cid(), &root);
        tree
    }

    fn subtree(
        &mut self,
        rng: &mut impl RngCore,
        name: &str,
        fanouts: &[usize],
        depth: u32,
    ) -> Cid {
        let children: Vec<Cid> = match fanouts.split_first() {
            None => Vec::new(),
            Some((&n, rest)) => (0..n)
                .map(|i| self.subtree(rng, &format!("{name}/{i}"), rest, depth + 1))
                .collect(),
        };
        let tag = format!("{name}#{}", rng.gen::<u64>());
        let block = node(&tag, children.into_iter());
        let cid = *block.cid();
        self.blocks.push(block);
        self.depths.push(depth);
        cid
    }

    /// The root's CID.
    pub fn root_cid(&self) -> Cid {
        *self.blocks[0].cid()
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True for a tree of no block (never: there is always a root).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Partial replicas: deals every block to one of `peers` chosen at random, the root to
    /// `root_holder`. Most peers then hold blocks without their ancestors, at depths that
    /// differ from peer to peer.
    pub fn deal(&self, rng: &mut impl RngCore, peers: usize, root_holder: usize) -> Vec<Vec<Blob>> {
        let mut out = vec![Vec::new(); peers.max(1)];
        let holder = root_holder % out.len();
        out[holder].push(self.blocks[0].clone());
        for block in &self.blocks[1..] {
            let peer = rng.gen_range(0..out.len());
            out[peer].push(block.clone());
        }
        out
    }
}
