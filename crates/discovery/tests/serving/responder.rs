//! The responder answers many peers from one haves build and refuses load past its limit.

use std::sync::Arc;

use crate::common::*;
use negentropy::{Negentropy, NegentropyStorageVector};
use seedbank_discovery::{
    Discovery, DiscoveryConfig, Error, Message, Peer, Responder, ResponderConfig, Scope,
    SessionOutcome,
};
use seedbank_sim::{Behavior, SimPeer};

#[tokio::test(start_paused = true)]
async fn a_responder_serving_30_peers_reconciling_one_scope_builds_its_haves_once() {
    let mut net = Net::new();
    let all = raw_blobs("doc", 0, 300);
    let server = net.node().await;
    server.put(all.clone(), Some("doc")).await.unwrap();
    let responder = server.responder("server", ResponderConfig::default());
    let peer: Arc<dyn Peer> = Arc::new(SimPeer::new(
        "server",
        Behavior::Honest,
        ms(40),
        Some(responder.clone()),
    ));

    let mut clients: Vec<(seedbank_sim::SimNode, Discovery)> = Vec::new();
    for i in 0..30 {
        let node = net.node().await;
        let mine: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| (j + i) % 3 == 0)
            .map(|(_, b)| b.clone())
            .collect();
        node.put(mine, Some("doc")).await.unwrap();
        let discovery = node.discovery(config());
        clients.push((node, discovery));
    }
    let scope = Scope::named("doc");
    let runs = clients
        .iter()
        .map(|(_, d)| d.discover(&scope, std::slice::from_ref(&peer)));
    let reports = futures_util::future::join_all(runs).await;

    assert_eq!(
        server.haves.stats().builds,
        1,
        "30 peers, one snapshot, one build"
    );
    // 30 clients with two fetches in flight each pass the responder's 40 slots: it answers
    // some pipelined fetches `Busy`, which their sessions absorb (one fetch at a time from
    // then on, the batch asked again), never failing the peer.
    assert!(
        responder.stats().reconciles >= 60,
        "each client reconciles and resolves"
    );
    for ((node, _), report) in clients.iter().zip(reports) {
        let report = report.unwrap();
        assert!(report.complete);
        assert_eq!((report.busy, report.peers_failed), (0, 0), "{report}");
        assert_eq!((report.blobs_fetched, report.duplicates), (200, 0));
        assert_eq!(node.index.scope_members("doc").await.unwrap().len(), 300);
    }
}

#[tokio::test(start_paused = true)]
async fn a_responder_past_its_admission_limit_answers_busy_instead_of_queueing() {
    let mut net = Net::new();
    let server = net.node().await;
    server
        .put(raw_blobs("doc", 0, 50), Some("doc"))
        .await
        .unwrap();
    let config = ResponderConfig {
        max_in_flight: 1,
        max_queued: 1,
        ..ResponderConfig::default()
    };
    let responder = Responder::new("server", server.haves.clone(), config);
    let request = first_request();

    let scope = Scope::named("doc");
    let calls = (0..10).map(|_| responder.reconcile(&scope, request.clone()));
    let answers = futures_util::future::join_all(calls).await;

    let busy = answers
        .iter()
        .filter(|a| matches!(a, Err(Error::Busy)))
        .count();
    assert_eq!(busy, 8, "one running, one queued, the rest refused at once");
    let failed: Vec<_> = answers
        .iter()
        .filter_map(|a| a.as_ref().err())
        .filter(|e| !matches!(e, Error::Busy))
        .collect();
    assert!(failed.is_empty(), "admitted requests failed: {failed:?}");
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 2);
    assert_eq!(responder.stats().busy, 8);
    assert_eq!(server.haves.stats().builds, 1);
}

#[tokio::test(start_paused = true)]
async fn a_busy_peer_is_replaced_by_the_next_candidate_and_scored_down() {
    let mut net = Net::new();
    let blobs = raw_blobs("doc", 0, 20);
    let busy = storeless("busy", Behavior::Busy, ms(10));
    let good = net
        .peer("good", Behavior::Honest, ms(30), blobs, Some("doc"))
        .await;
    let client = net.node().await;
    let discovery = client.discovery(DiscoveryConfig {
        concurrency: 1,
        ..config()
    });
    let report = discovery
        .discover(
            &Scope::named("doc"),
            &dyn_peers(&[busy.clone(), good.clone()]),
        )
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(report.sessions[0].outcome, SessionOutcome::Busy);
    assert_eq!(report.sessions[1].outcome, SessionOutcome::Done);
    assert_eq!(
        (report.busy, report.peers_failed, report.peers_contacted),
        (1, 1, 2)
    );
    assert_eq!(discovery.peer_score("busy").unwrap().failures, 1);
    assert_eq!(discovery.peer_score("good").unwrap().successes, 1);
}

/// True for noise that may be valid negentropy: empty (a request that only resolves ids),
/// or starting with a version byte (0x60–0x6f: another version is answered with ours, and
/// random ranges after ours may parse). Anything else is malformed.
fn negentropy_ok(noise: &[u8], round: usize) -> bool {
    round.is_multiple_of(2) || noise.first().is_none_or(|b| (0x60..=0x6f).contains(b))
}

/// A client's first reconciliation request for an empty snapshot.
fn first_request() -> Message {
    let mut storage = NegentropyStorageVector::new();
    storage.seal().unwrap();
    let first = Negentropy::owned(storage, 0).unwrap().initiate().unwrap();
    Message {
        negentropy: first.into(),
        ..Message::default()
    }
}

#[tokio::test]
async fn garbage_from_a_peer_is_an_error_never_a_panic() {
    use rand::{Rng, SeedableRng};
    let mut net = Net::new();
    let server = net.node().await;
    server
        .put(raw_blobs("doc", 0, 50), Some("doc"))
        .await
        .unwrap();
    let responder = server.responder("server", ResponderConfig::default());
    let scope = Scope::named("doc");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..200 {
        let len = rng.gen_range(0..512);
        let noise: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Undecodable framing is refused by `Message::decode`...
        assert!(
            Message::decode(&noise).is_err(),
            "noise of {len} bytes decoded"
        );
        // ...and well-framed messages with nonsense negentropy bytes by the responder.
        let mut negentropy = noise.clone();
        if round % 2 == 0 && !negentropy.is_empty() {
            negentropy[0] = 0x61; // negentropy protocol version byte
        }
        let request = Message {
            negentropy: negentropy.into(),
            want: Vec::new(),
            cids: Vec::new(),
        };
        let answer = responder.reconcile(&scope, request).await;
        if negentropy_ok(&noise, round) {
            continue;
        }
        assert!(
            matches!(
                answer,
                Err(Error::Protocol { .. }) | Err(Error::Transport { .. })
            ),
            "round {round}: {answer:?}"
        );
    }
    // The responder still serves a real discovery afterwards.
    let peer: Arc<dyn Peer> = Arc::new(SimPeer::new(
        "server",
        Behavior::Honest,
        ms(5),
        Some(responder.clone()),
    ));
    let client = net.node().await;
    let report = client
        .discovery(config())
        .discover(&scope, &[peer])
        .await
        .unwrap();
    assert!(report.complete);
    assert_eq!(report.blobs_fetched, 50);
}
