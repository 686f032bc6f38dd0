//! Hostile peers cannot make a node allocate, build or store without bound.

use std::sync::Arc;

use crate::common::*;
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

/// Any stored CID is a `dag:` root a remote may ask about. A walk that passes the limit is
/// remembered for the generation it was asked at: asking again costs a lookup, not a walk,
/// until the DAG changes.
#[tokio::test(start_paused = true)]
async fn repeated_requests_for_an_over_limit_root_cost_one_build() {
    let mut net = Net::new();
    let server = net.node().await;
    let dag = dag(41, 3, 20);
    server.put(dag.blocks(), None).await.unwrap();
    let haves = seedbank_discovery::HavesCache::new(
        server.index.clone(),
        seedbank_discovery::HavesConfig {
            dag_limit: Some(20),
            ..Default::default()
        },
    );
    let responder = seedbank_discovery::Responder::new("server", haves.clone(), Default::default());
    let scope = Scope::dag(dag.root_cid());
    let over_limit = |e: &Error| matches!(e, Error::Index(e) if matches!(**e, seedbank_index::Error::LimitExceeded { .. }));
    for i in 0..20 {
        let remote = format!("remote{}", i % 4);
        let asked = responder.reconcile(&scope, Message::default());
        let answer = seedbank_discovery::Responder::serving(remote, asked).await;
        assert!(answer.as_ref().is_err_and(over_limit), "{answer:?}");
    }
    let stats = haves.stats();
    assert_eq!((stats.failed, stats.failed_hits), (1, 19), "{stats:?}");
    // A write that moves the DAG generation lets the next request walk again.
    server.put(raw_blobs("other", 0, 1), None).await.unwrap();
    let answer = responder.reconcile(&scope, Message::default()).await;
    assert!(answer.as_ref().is_err_and(over_limit), "{answer:?}");
    assert_eq!(haves.stats().failed, 2);
    // Under the limit, the same root is served.
    let roomy = seedbank_discovery::HavesCache::new(server.index.clone(), Default::default());
    let served = seedbank_discovery::Responder::new("roomy", roomy, Default::default());
    assert!(served.reconcile(&scope, Message::default()).await.is_ok());
}

/// One remote has at most `max_builds_per_remote` (1) builds going: a third scope it asks
/// about meanwhile is refused `Busy` without a build, while another remote's is served.
#[tokio::test(start_paused = true)]
async fn one_remote_cannot_hold_more_than_its_builds() {
    let mut net = Net::new();
    let server = net.node().await;
    for name in ["s1", "s2", "s3"] {
        server
            .put(raw_blobs(name, 0, 30), Some(name))
            .await
            .unwrap();
    }
    let responder = server.responder("server", ResponderConfig::default());
    // Hold both connections of the data pool, where named builds read: a build started now
    // keeps its remote's count until they are released.
    let (release, held) = {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let mut held = Vec::new();
        for _ in 0..2 {
            let (rx, started_tx) = (rx.clone(), started_tx.clone());
            let store = server.store().clone();
            held.push(tokio::spawn(async move {
                store
                    .read(seedbank_blobstore::PoolKind::Data, move |_| {
                        let _ = started_tx.send(());
                        let _ = rx.lock().unwrap().recv();
                        Ok(())
                    })
                    .await
            }));
        }
        for _ in 0..2 {
            started.recv().await.unwrap();
        }
        (tx, held)
    };
    let ask = |remote: &str, scope: &str| {
        let scope = Scope::named(scope);
        let responder = responder.clone();
        seedbank_discovery::Responder::serving(remote.to_string(), async move {
            responder.reconcile(&scope, Message::default()).await
        })
    };
    // Remote a's build of s1 and remote b's of s2 start and wait for the pool.
    let first = tokio::spawn(ask("a", "s1"));
    let other = tokio::spawn(ask("b", "s2"));
    for _ in 0..10_000 {
        if server.haves.stats().building == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(server.haves.stats().building, 2);
    // Remote a's next build is refused at once, without waiting for a build slot.
    let second = tokio::spawn(ask("a", "s3"));
    for _ in 0..10_000 {
        if second.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        second.is_finished(),
        "remote a's second build was not refused"
    );
    let second = second.await.unwrap();
    assert!(matches!(second, Err(Error::Busy)), "{second:?}");
    assert_eq!(server.haves.stats().refused, 1);
    for _ in 0..2 {
        release.send(()).unwrap();
    }
    for h in held {
        h.await.unwrap().unwrap();
    }
    first.await.unwrap().unwrap();
    other.await.unwrap().unwrap();
    // With its build done, the remote may cause the next one.
    ask("a", "s3").await.unwrap();
    let stats = server.haves.stats();
    assert_eq!(
        (stats.builds, stats.refused, stats.building),
        (3, 1, 0),
        "{stats:?}"
    );
}
