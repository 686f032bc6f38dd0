//! A discovery simulation on embedded stores, behind `seedbank sim`.
//!
//! One client node holds a DAG that overlaps the target DAG (they share subtrees); `peers`
//! peers hold random parts of the target, some failing, some hanging, one lying; several
//! callers discover the target's root at once. Latency is tokio time: real in the CLI,
//! paused (and so instant and deterministic) in tests. Building blocks ([`SimDag`],
//! [`SimNode`], [`SimPeer`]) are public for the crate's tests.
//!
//! ```no_run
//! # async fn cli(json: bool) -> Result<(), Box<dyn std::error::Error>> {
//! use seedbank_sim::{self as sim, SimConfig};
//!
//! let report = sim::run(SimConfig::default()).await?;
//! if json {
//!     println!("{}", serde_json::to_string_pretty(&report)?);
//! } else {
//!     print!("{report}");
//! }
//! # Ok(())
//! # }
//! ```

mod dag;
mod node;
mod peer;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use dag::{log_uniform, Part, SimDag, SimTree};
pub use node::SimNode;
pub use peer::{Behavior, SimPeer};

use seedbank_blobstore::Blob;
use seedbank_discovery::{DiscoveryConfig, Error, Peer, Report, ResponderConfig, Result, Scope};

/// Parameters of a simulation. `SimConfig::default()` is what `seedbank sim` runs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Peers offered to discovery (default 50).
    pub peers: usize,
    /// Seed of every random choice (default 42).
    pub seed: u64,
    /// Branches of the target DAG (default 16).
    pub branches: usize,
    /// Leaves per branch (default 32).
    pub leaves_per_branch: usize,
    /// Bytes per leaf (default 1024).
    pub leaf_size: usize,
    /// Branches (with their leaves) the client's own DAG shares with the target (default 8).
    pub shared_branches: usize,
    /// Chance that an honest peer holds a given leaf of the target (default 0.8).
    pub peer_leaf_share: f64,
    /// Chance that an honest peer holds the target's root (default 0.5) and each branch
    /// (default 0.7): peers are partial replicas, holding blocks without their ancestors.
    pub peer_root_share: f64,
    /// See `peer_root_share`.
    pub peer_branch_share: f64,
    /// Share of peers that fail or hang, half each (default 0.2).
    pub failing: f64,
    /// Peers sending corrupted bytes (default 1).
    pub liars: usize,
    /// Put the liars first in the peer list, with the lowest latency (default true): the
    /// worst case, as they are then contacted first and answer fastest.
    pub liars_first: bool,
    /// Round-trip latency of each peer, drawn uniformly in this range (default 10–80 ms).
    pub latency: (Duration, Duration),
    /// Concurrent `discover` calls for the target (default 8; they share one run).
    pub callers: usize,
    /// Discovery settings (default: the library defaults with a 1 s round timeout and a
    /// 5 s reconciliation budget, so hanging peers cost seconds, not minutes).
    pub discovery: DiscoveryConfig,
    /// Where the stores go (default: a temporary directory, removed afterwards).
    pub dir: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            peers: 50,
            seed: 42,
            branches: 16,
            leaves_per_branch: 32,
            leaf_size: 1024,
            shared_branches: 8,
            peer_leaf_share: 0.8,
            peer_root_share: 0.5,
            peer_branch_share: 0.7,
            failing: 0.2,
            liars: 1,
            liars_first: true,
            latency: (Duration::from_millis(10), Duration::from_millis(80)),
            callers: 8,
            discovery: DiscoveryConfig {
                round_timeout: Duration::from_secs(1),
                peer_timeout: Duration::from_secs(5),
                ..DiscoveryConfig::default()
            },
            dir: None,
        }
    }
}

/// One peer of a simulation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimPeerRow {
    /// Its id.
    pub id: String,
    /// Its behaviour.
    pub behavior: Behavior,
    /// Its latency, ms.
    pub latency_ms: u64,
    /// Requests it received.
    pub messages: u64,
    /// Blobs it sent.
    pub blobs_sent: u64,
    /// Haves snapshots its responder built.
    pub haves_builds: u64,
}

/// What a simulation did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SimReport {
    /// The seed used.
    pub seed: u64,
    /// Peers offered, by behaviour: honest, failing, hanging, liars.
    pub peers: [usize; 4],
    /// Blocks of the target DAG.
    pub dag_blocks: usize,
    /// Blocks of the target the client stored before discovery (through the overlapping
    /// DAG; unreachable until the target's root is fetched).
    pub client_had: usize,
    /// `discover` calls made at once.
    pub callers: usize,
    /// Calls that returned the report (all of them, in a sound run).
    pub callers_ok: usize,
    /// Discovery runs: 1 when every caller shared one.
    pub runs: u64,
    /// True when the client's index finds nothing missing under the root afterwards.
    pub complete: bool,
    /// Problems `Store::verify` found in the client's store afterwards.
    pub verify_problems: usize,
    /// Corrupted blobs the liars sent, and how many blobs of the liars' answers (good or
    /// bad) the client stores that no honest peer sent (0).
    pub lies: (usize, usize),
    /// Haves snapshots the client built.
    pub client_haves_builds: u64,
    /// The report of the run (every caller got the same one).
    pub report: Report,
    /// Every peer offered, in the order given to discovery.
    pub peer_table: Vec<SimPeerRow>,
    /// Wall time spent creating the stores, ms.
    pub setup_ms: u64,
}

/// Runs a simulation.
///
/// # Errors
/// [`Error::Index`] / [`Error::Blobstore`] if a store could not be created or written,
/// or whatever the first discovery caller got if every caller failed.
pub async fn run(config: SimConfig) -> Result<SimReport> {
    let setup = std::time::Instant::now();
    let tmp;
    let dir = match &config.dir {
        Some(dir) => dir.clone(),
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::transport(format!("temp dir: {e}")))?;
            tmp.path().to_path_buf()
        }
    };
    let mut rng = StdRng::seed_from_u64(config.seed);
    let c = &config;
    let target = SimDag::generate(
        &mut rng,
        "target",
        c.branches,
        c.leaves_per_branch,
        c.leaf_size,
        None,
    );
    let overlap = SimDag::generate(
        &mut rng,
        "overlap",
        c.branches,
        c.leaves_per_branch,
        c.leaf_size,
        Some((&target, c.shared_branches)),
    );
    let client = SimNode::open(&dir.join("client.db")).await?;
    client.put(overlap.blocks(), None).await?;
    let target_cids: Vec<_> = target.blocks().iter().map(|b| *b.cid()).collect();
    let client_had = client
        .store()
        .has_many(&target_cids)
        .await?
        .into_iter()
        .filter(|h| *h)
        .count();
    let peers = make_peers(c, &mut rng, &dir, &target).await?;
    let setup_ms = setup.elapsed().as_millis() as u64;

    let discovery = client.discovery(c.discovery.clone());
    let offered: Vec<Arc<dyn Peer>> = peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect();
    let scope = Scope::dag(target.root_cid());
    let calls = (0..c.callers.max(1)).map(|_| discovery.discover(&scope, &offered));
    let results = futures_util::future::join_all(calls).await;
    let callers_ok = results.iter().filter(|r| r.is_ok()).count();
    let (mut report, mut error) = (None, None);
    for result in results {
        match result {
            Ok(r) => report = report.or(Some(r)),
            Err(e) => error = error.or(Some(e)),
        }
    }
    let Some(report) = report else {
        return Err(error.expect("no report means some caller failed"));
    };
    let lies = count_lies(&client, &peers).await?;
    Ok(SimReport {
        seed: c.seed,
        peers: count_behaviors(&peers),
        dag_blocks: target.len(),
        client_had,
        callers: c.callers.max(1),
        callers_ok,
        runs: discovery.stats().runs,
        complete: client.index.missing(&target.root_cid()).await?.is_empty(),
        verify_problems: client.store().verify().await?.problems.len(),
        lies,
        client_haves_builds: client.haves.stats().builds,
        report,
        peer_table: peers.iter().map(|p| row(p)).collect(),
        setup_ms,
    })
}

/// Creates the peers: behaviours at random, a store holding part of `target` for those
/// that answer.
async fn make_peers(
    c: &SimConfig,
    rng: &mut StdRng,
    dir: &std::path::Path,
    target: &SimDag,
) -> Result<Vec<Arc<SimPeer>>> {
    let failing = ((c.peers as f64) * c.failing).round() as usize;
    let mut behaviors: Vec<Behavior> = (0..c.peers)
        .map(|i| match i {
            i if i < failing / 2 => Behavior::Failing,
            i if i < failing => Behavior::Hanging,
            i if i < failing + c.liars => Behavior::Liar,
            _ => Behavior::Honest,
        })
        .collect();
    behaviors.shuffle(rng);
    if c.liars_first {
        behaviors.sort_by_key(|b| *b != Behavior::Liar);
    }
    let mut holdings: Vec<Vec<Blob>> = behaviors
        .iter()
        .map(|b| match b {
            // A liar holds everything, so that it is met (and caught) early.
            Behavior::Liar => target.blocks(),
            Behavior::Honest => target.pick(|part| {
                rng.gen_bool(match part {
                    Part::Root => c.peer_root_share,
                    Part::Branch(_) => c.peer_branch_share,
                    Part::Leaf(..) => c.peer_leaf_share,
                })
            }),
            _ => Vec::new(),
        })
        .collect();
    cover(rng, target, &behaviors, &mut holdings);
    let mut peers = Vec::with_capacity(c.peers);
    for (i, (behavior, blocks)) in behaviors.into_iter().zip(holdings).enumerate() {
        let id = format!("peer-{i:02}");
        let latency = match behavior {
            Behavior::Liar if c.liars_first => c.latency.0,
            _ => rng.gen_range(c.latency.0..=c.latency.1),
        };
        let responder = match behavior {
            Behavior::Failing | Behavior::Hanging | Behavior::Busy => None,
            Behavior::Honest | Behavior::Liar => {
                let node = SimNode::open(&dir.join(format!("{id}.db"))).await?;
                node.put(blocks, None).await?;
                Some(node.responder(&id, ResponderConfig::default()))
            }
        };
        peers.push(Arc::new(SimPeer::new(id, behavior, latency, responder)));
    }
    Ok(peers)
}

/// Honest peers, among the first in the list, that together hold the whole target.
const COVERING_PEERS: usize = 3;

/// Gives each block of `target` that none of the first [`COVERING_PEERS`] honest peers
/// drew to one of them at random, so discovery can complete from peers it contacts early.
fn cover(rng: &mut StdRng, target: &SimDag, behaviors: &[Behavior], holdings: &mut [Vec<Blob>]) {
    let first: Vec<usize> = (0..behaviors.len())
        .filter(|i| behaviors[*i] == Behavior::Honest)
        .take(COVERING_PEERS)
        .collect();
    if first.is_empty() {
        return;
    }
    let held: std::collections::HashSet<cid::Cid> = first
        .iter()
        .flat_map(|i| holdings[*i].iter().map(|b| *b.cid()))
        .collect();
    for block in target.blocks() {
        if !held.contains(block.cid()) {
            let i = first[rng.gen_range(0..first.len())];
            holdings[i].push(block);
        }
    }
}

fn count_behaviors(peers: &[Arc<SimPeer>]) -> [usize; 4] {
    let count = |b: Behavior| peers.iter().filter(|p| p.behavior() == b).count();
    [
        count(Behavior::Honest),
        count(Behavior::Failing),
        count(Behavior::Hanging),
        count(Behavior::Liar),
    ]
}

/// Corrupted blobs sent, and how many blobs of liars' answers the client stores although
/// no honest peer sent them (0: one bad blob condemns its whole answer).
async fn count_lies(client: &SimNode, peers: &[Arc<SimPeer>]) -> Result<(usize, usize)> {
    let liars = peers.iter().filter(|p| p.behavior() == Behavior::Liar);
    let sent = liars.clone().map(|p| p.lies().len()).sum();
    let honest: std::collections::HashSet<cid::Cid> = peers
        .iter()
        .filter(|p| p.behavior() != Behavior::Liar)
        .flat_map(|p| p.sent())
        .collect();
    let only_liars: Vec<cid::Cid> = liars
        .flat_map(|p| {
            p.sent()
                .into_iter()
                .chain(p.lies().into_iter().map(|(c, _)| c))
        })
        .filter(|c| !honest.contains(c))
        .collect();
    let stored = client.store().has_many(&only_liars).await?;
    Ok((sent, stored.into_iter().filter(|s| *s).count()))
}

fn row(peer: &SimPeer) -> SimPeerRow {
    SimPeerRow {
        id: seedbank_discovery::Peer::id(peer).to_string(),
        behavior: peer.behavior(),
        latency_ms: peer.latency().as_millis() as u64,
        messages: peer.messages(),
        blobs_sent: peer.blobs_sent(),
        haves_builds: peer.responder().map_or(0, |r| r.haves().stats().builds),
    }
}

/// The run's summary, the discovery report, then the peers that were contacted.
impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [honest, failing, hanging, liars] = self.peers;
        writeln!(f, "seedbank discovery simulation (seed {})", self.seed)?;
        writeln!(
            f,
            "peers: {} ({honest} honest, {failing} failing, {hanging} hanging, {liars} liar)",
            honest + failing + hanging + liars
        )?;
        writeln!(
            f,
            "target DAG: {} blocks, client had {} through an overlapping DAG",
            self.dag_blocks, self.client_had
        )?;
        writeln!(
            f,
            "callers: {} concurrent, {} ok, {} run(s); complete: {}; verify problems: {}",
            self.callers, self.callers_ok, self.runs, self.complete, self.verify_problems
        )?;
        writeln!(
            f,
            "lies: {} corrupted blobs received, {} stored; client haves builds: {}; setup {} ms\n",
            self.lies.0, self.lies.1, self.client_haves_builds, self.setup_ms
        )?;
        write!(f, "{}", self.report)?;
        writeln!(
            f,
            "\n{:<10} {:<8} {:>7} {:>8} {:>6} {:>6}",
            "peer", "kind", "rtt ms", "messages", "blobs", "builds"
        )?;
        for p in self.peer_table.iter().filter(|p| p.messages > 0) {
            writeln!(
                f,
                "{:<10} {:<8} {:>7} {:>8} {:>6} {:>6}",
                p.id, p.behavior, p.latency_ms, p.messages, p.blobs_sent, p.haves_builds
            )?;
        }
        let silent = self.peer_table.iter().filter(|p| p.messages == 0).count();
        writeln!(f, "({silent} peers never contacted)")
    }
}
