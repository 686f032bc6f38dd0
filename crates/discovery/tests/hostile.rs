//! Hostile peers cannot make a node allocate, build or store without bound.

mod common;

use std::sync::Arc;

use common::*;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::{
    DiscoveryConfig, Error, Message, Peer, ResponderConfig, Scope, SessionOutcome, MAX_SCOPE_NAME,
};
use seedbank_sim::{Behavior, SimPeer};

#[tokio::test(start_paused = true)]
async fn ten_thousand_scope_names_from_peers_cost_no_build_and_no_cache_entry() {
    let mut net = Net::new();
    let server = net.node().await;
    server
        .put(raw_blobs("doc", 0, 40), Some("doc"))
        .await
        .unwrap();
    let responder = server.responder("server", ResponderConfig::default());
    for i in 0..10_000 {
        let scope = if i % 2 == 0 {
            Scope::named(format!("junk:{i}:{}", "x".repeat(200)))
        } else {
            Scope::dag(*Blob::new(codec::DAG_CBOR, format!("root {i}").into_bytes()).cid())
        };
        let answer = responder
            .reconcile(&scope, Message::default())
            .await
            .unwrap();
        assert!(answer.cids.is_empty());
    }
    let stats = server.haves.stats();
    assert_eq!((stats.builds, stats.empty), (0, 10_000), "{stats:?}");
    assert_eq!(server.haves.cached().await.0, 0);
    let long = Scope::named("n".repeat(MAX_SCOPE_NAME + 1));
    let refused = responder.reconcile(&long, Message::default()).await;
    assert!(
        matches!(refused, Err(Error::Protocol { .. })),
        "{refused:?}"
    );

    // A real scope is still served, from one build.
    let peer: Arc<dyn Peer> = Arc::new(SimPeer::new(
        "server",
        Behavior::Honest,
        ms(5),
        Some(responder),
    ));
    let client = net.node().await;
    let report = client
        .discovery(config())
        .discover(&Scope::named("doc"), &[peer])
        .await
        .unwrap();
    assert!(report.complete && report.blobs_fetched == 40);
    assert_eq!(server.haves.stats().builds, 1);
}

#[tokio::test(start_paused = true)]
async fn the_haves_cache_is_bounded_by_weight_whatever_the_number_of_scopes() {
    let mut net = Net::new();
    let server = net.node().await;
    for i in 0..300 {
        server
            .put(raw_blobs(&format!("s{i}"), 0, 1), Some(&format!("s{i}")))
            .await
            .unwrap();
    }
    let cache = seedbank_discovery::HavesCache::new(
        server.index.clone(),
        seedbank_discovery::HavesConfig {
            max_items: 100,
            ..Default::default()
        },
    );
    for i in 0..300 {
        cache.get(&Scope::named(format!("s{i}"))).await.unwrap();
    }
    let (entries, weight) = cache.cached().await;
    assert!(
        weight <= 100 && entries <= 50,
        "{entries} entries weigh {weight}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_peer_claiming_more_ids_than_allowed_is_dropped_and_scored_down() {
    let mut net = Net::new();
    let greedy = net
        .peer(
            "greedy",
            Behavior::Honest,
            ms(5),
            raw_blobs("d", 0, 200),
            Some("doc"),
        )
        .await;
    let modest = net
        .peer(
            "modest",
            Behavior::Honest,
            ms(9),
            raw_blobs("d", 0, 20),
            Some("doc"),
        )
        .await;
    let client = net.node().await;
    let discovery = client.discovery(DiscoveryConfig {
        max_peer_ids: 50,
        concurrency: 1,
        ..config()
    });
    let report = discovery
        .discover(&Scope::named("doc"), &dyn_peers(&[greedy, modest]))
        .await
        .unwrap();
    assert!(
        matches!(&report.sessions[0].outcome, SessionOutcome::Failed(why) if why.contains("over budget")),
        "{report}"
    );
    assert_eq!(report.sessions[0].blobs, 0);
    assert_eq!(report.blobs_fetched, 20);
    let score = discovery.peer_score("greedy").unwrap();
    assert!(score.failures == 1 && !score.liar);
}

#[tokio::test(start_paused = true)]
async fn a_run_stores_no_more_than_its_blob_and_byte_budget() {
    for (blobs, bytes) in [(100, u64::MAX), (u64::MAX, 100 * 64)] {
        let mut net = Net::new();
        let data: Vec<Blob> = (0..300u32)
            .map(|i| Blob::new(codec::RAW, [i.to_le_bytes().to_vec(), vec![7; 60]].concat()))
            .collect();
        let peer = net
            .peer("big", Behavior::Honest, ms(5), data, Some("doc"))
            .await;
        let client = net.node().await;
        let discovery = client.discovery(DiscoveryConfig {
            max_run_blobs: blobs,
            max_run_bytes: bytes,
            fetch_batch: 32,
            ..config()
        });
        let report = discovery
            .discover(&Scope::named("doc"), &dyn_peers(&[peer]))
            .await
            .unwrap();
        assert!(!report.complete, "{report}");
        assert_eq!(
            report.blobs_fetched, 96,
            "three batches of 32 fit, the fourth does not"
        );
        let members = client.index.scope_members("doc").await.unwrap().len();
        assert_eq!(members, 96, "nothing past the budget was stored");
        assert!(
            matches!(&report.sessions[0].outcome, SessionOutcome::Failed(w) if w.contains("budget"))
        );
        assert_eq!(discovery.peer_score("big").unwrap().failures, 1);
    }
}

/// A hash-valid blob over this node's `max_blob_size` is the sending peer's fault: that peer
/// is dropped for the run and scored as a liar, and the run goes on with the others (it
/// used to end the whole run with a local `TooLarge`).
#[tokio::test(start_paused = true)]
async fn a_peer_sending_a_blob_over_the_size_limit_is_dropped_not_the_run() {
    let mut net = Net::new();
    let mut oversized = raw_blobs("d", 0, 20);
    oversized.push(Blob::new(codec::RAW, vec![7u8; 4096]));
    let big = net
        .peer("big", Behavior::Honest, ms(5), oversized, Some("doc"))
        .await;
    let modest = net
        .peer(
            "modest",
            Behavior::Honest,
            ms(9),
            raw_blobs("d", 0, 20),
            Some("doc"),
        )
        .await;
    let client = seedbank_sim::SimNode::open_with(
        &net.dir.path().join("small-limit.db"),
        seedbank_blobstore::Config {
            max_blob_size: 1024,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let discovery = client.discovery(DiscoveryConfig {
        concurrency: 1,
        ..config()
    });
    let report = discovery
        .discover(&Scope::named("doc"), &dyn_peers(&[big, modest]))
        .await
        .unwrap();
    assert!(
        matches!(&report.sessions[0].outcome, SessionOutcome::Liar(why) if why.contains("limit")),
        "{report}"
    );
    assert_eq!(report.blobs_fetched, 20, "{report}");
    assert!(discovery.peer_score("big").unwrap().liar);
}
