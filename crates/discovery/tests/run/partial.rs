//! Partial replicas: a scope's blocks spread over peers so that no peer holds all of it and
//! most hold blocks without their ancestors.

use std::collections::HashSet;
use std::sync::Arc;

use crate::common::*;
use cid::Cid;
use seedbank_discovery::{DiscoveryConfig, Scope};
use seedbank_sim::{Behavior, SimNode, SimPeer, SimTree};

/// About 3,000 DAG-CBOR blocks (1 + 10 + 100 + 2,900).
fn tree(seed: u64) -> SimTree {
    SimTree::generate(&mut rng(seed), "split", &[10, 10, 29])
}

/// Three honest peers holding the tree's blocks dealt at random (only `p0` has the root),
/// each joined to `scope` if given, after two dead peers and a hanging one.
async fn split_peers(net: &mut Net, tree: &SimTree, scope: Option<&str>) -> Vec<Arc<SimPeer>> {
    let parts = tree.deal(&mut rng(99), 3, 0);
    let mut peers = vec![
        storeless("dead0", Behavior::Failing, ms(5)),
        storeless("dead1", Behavior::Failing, ms(5)),
        storeless("hang", Behavior::Hanging, ms(5)),
    ];
    for (i, part) in parts.into_iter().enumerate() {
        assert!(part.len() > 900, "each peer holds about a third");
        let id = format!("p{i}");
        peers.push(
            net.peer(&id, Behavior::Honest, ms(10 + 5 * i as u64), part, scope)
                .await,
        );
    }
    peers
}

/// Every blob a peer sent with good bytes, and whether the client stores it now.
async fn unstored_sent(client: &SimNode, peers: &[Arc<SimPeer>]) -> Vec<Cid> {
    let sent: Vec<Cid> = peers.iter().flat_map(|p| p.sent()).collect();
    let stored = client.store().has_many(&sent).await.unwrap();
    sent.into_iter()
        .zip(stored)
        .filter(|(_, s)| !s)
        .map(|(c, _)| c)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_dag_dealt_over_three_partial_peers_is_discovered_to_completion() {
    let mut net = Net::new();
    let tree = tree(1);
    let peers = split_peers(&mut net, &tree, None).await;
    let client = net.node().await;
    let config = config();
    let discovery = client.discovery(config.clone());
    let scope = Scope::dag(tree.root_cid());
    let report = discovery
        .discover(&scope, &dyn_peers(&peers))
        .await
        .unwrap();

    assert!(report.complete, "{report}");
    assert_complete(&client, &tree.root_cid()).await;
    assert_eq!(report.blobs_fetched, tree.len() as u64);
    assert_eq!(report.duplicates, 0);
    assert!(report.peers_contacted <= config.fanout as u64);
    assert_eq!(messages(&peers), report.messages());
    assert!(unstored_sent(&client, &peers).await.is_empty());
    assert!(client.store().verify().await.unwrap().problems.is_empty());
    let sent: usize = peers.iter().map(|p| p.sent().len()).sum();
    assert_eq!(sent, tree.len(), "each block sent once");

    // Nothing left to find: the next call is complete at once, never "not found".
    let again = discovery
        .discover(&scope, &dyn_peers(&peers))
        .await
        .unwrap();
    assert!(again.complete && again.blobs_fetched == 0);
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_partial_dag_discovery_resumes_and_is_never_cached_as_not_found() {
    let mut net = Net::new();
    let tree = tree(2);
    let peers = split_peers(&mut net, &tree, None).await;
    let client = net.node().await;
    // The client got the root and a few blocks elsewhere, the peers know nothing of it.
    let start: Vec<_> = tree.blocks.iter().step_by(7).cloned().collect();
    client.put(start, None).await.unwrap();
    let discovery = client.discovery(config());
    let scope = Scope::dag(tree.root_cid());
    let honest = dyn_peers(&peers[3..]);
    // Only the two rootless peers first: progress, not "not found".
    let first = discovery.discover(&scope, &honest[1..]).await.unwrap();
    assert!(!first.complete && first.blobs_fetched > 0, "{first}");
    let second = discovery.discover(&scope, &honest).await.unwrap();
    assert!(second.complete, "{second}");
    assert_complete(&client, &tree.root_cid()).await;
    assert_eq!(discovery.stats().negative_hits, 0);
}

// Real time on two threads: the lane commits on its own thread while sessions race to
// finish; only counts are asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_scope_over_partial_peers_is_complete_only_when_every_member_is_committed() {
    let mut net = Net::new();
    let tree = tree(3);
    let peers = split_peers(&mut net, &tree, Some("doc:split")).await;
    let all: HashSet<Cid> = tree.blocks.iter().map(|b| *b.cid()).collect();
    for round in 0..3 {
        let client = net.node().await;
        let discovery = client.discovery(DiscoveryConfig {
            concurrency: 6,
            fetch_batch: 64 + 32 * round,
            ..config()
        });
        let scope = Scope::named("doc:split");
        let report = discovery
            .discover(&scope, &dyn_peers(&peers))
            .await
            .unwrap();
        // At the moment discover returns: every good blob a peer sent is stored.
        let lost = unstored_sent(&client, &peers).await;
        assert!(lost.is_empty(), "{} fetched blobs not stored", lost.len());
        let members: HashSet<Cid> = client
            .index
            .scope_members("doc:split")
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert!(report.complete, "{report}");
        assert_eq!(members.len(), all.len(), "complete means every member");
        assert_eq!(members, all);
        assert_eq!(report.duplicates, 0);
        assert_eq!(report.blobs_fetched, all.len() as u64);
        for p in &peers {
            p.clear_sent();
        }
    }
}
