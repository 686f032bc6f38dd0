//! Shared setup for the discovery simulation tests: nodes in a temporary directory, a seeded
//! RNG, generated DAGs and in-process peers over real embedded stores.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::{DiscoveryConfig, Peer, ResponderConfig};
use seedbank_sim::{Behavior, SimDag, SimNode, SimPeer};

/// Nodes created by one test, all under one temporary directory removed on drop.
pub struct Net {
    pub dir: tempfile::TempDir,
    nodes: usize,
}

impl Net {
    pub fn new() -> Self {
        Net {
            dir: tempfile::tempdir().unwrap(),
            nodes: 0,
        }
    }

    /// A fresh node.
    pub async fn node(&mut self) -> SimNode {
        self.nodes += 1;
        SimNode::open(&self.dir.path().join(format!("node-{}.db", self.nodes)))
            .await
            .unwrap()
    }

    /// A peer with its own node holding `blobs`, joined to `scope` if given.
    pub async fn peer(
        &mut self,
        id: &str,
        behavior: Behavior,
        latency: Duration,
        blobs: Vec<Blob>,
        scope: Option<&str>,
    ) -> Arc<SimPeer> {
        let node = self.node().await;
        node.put(blobs, scope).await.unwrap();
        let responder = node.responder(id, ResponderConfig::default());
        Arc::new(SimPeer::new(id, behavior, latency, Some(responder)))
    }
}

/// A peer that never reaches a store (failing or hanging).
pub fn storeless(id: &str, behavior: Behavior, latency: Duration) -> Arc<SimPeer> {
    Arc::new(SimPeer::new(id, behavior, latency, None))
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A DAG of `branches × leaves` 64-byte leaves.
pub fn dag(seed: u64, branches: usize, leaves: usize) -> SimDag {
    SimDag::generate(&mut rng(seed), "dag", branches, leaves, 64, None)
}

/// `n` distinct small raw blobs, numbered from `from`.
pub fn raw_blobs(tag: &str, from: usize, n: usize) -> Vec<Blob> {
    (from..from + n)
        .map(|i| Blob::new(codec::RAW, format!("{tag}:{i}").into_bytes()))
        .collect()
}

pub fn dyn_peers(peers: &[Arc<SimPeer>]) -> Vec<Arc<dyn Peer>> {
    peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect()
}

/// Messages received by all `peers`.
pub fn messages(peers: &[Arc<SimPeer>]) -> u64 {
    peers.iter().map(|p| p.messages()).sum()
}

/// Peers that received at least one message.
pub fn contacted(peers: &[Arc<SimPeer>]) -> usize {
    peers.iter().filter(|p| p.messages() > 0).count()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The library defaults with short timeouts, as simulations use.
pub fn config() -> DiscoveryConfig {
    DiscoveryConfig {
        round_timeout: Duration::from_secs(1),
        peer_timeout: Duration::from_secs(5),
        ..DiscoveryConfig::default()
    }
}

/// Asserts the client now holds the whole DAG: nothing under its root is missing.
pub async fn assert_dag_complete(client: &SimNode, dag: &SimDag) {
    assert_complete(client, &dag.root_cid()).await;
}

/// Asserts nothing under `root` is missing at the client.
pub async fn assert_complete(client: &SimNode, root: &cid::Cid) {
    let missing = client.index.missing(root).await.unwrap();
    assert!(missing.is_empty(), "{} blocks still missing", missing.len());
}
