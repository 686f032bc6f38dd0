//! Each configured limit holds: concurrency, named_quorum, max_rounds, frame_limit, and the
//! responder's fetch limits.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use crate::common::*;
use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::testing::{Hook, Hooked};
use seedbank_discovery::{DiscoveryConfig, Error, Message, Peer, ResponderConfig, Result, Scope};
use seedbank_sim::{Behavior, SimPeer};

/// Records calls in flight across all peers sharing `gauge`, and the largest negentropy
/// part its peer saw either way.
struct Watched {
    gauge: Arc<(AtomicUsize, AtomicUsize)>,
    largest: AtomicUsize,
    largest_request: AtomicUsize,
}

impl Watched {
    fn enter(&self) {
        let now = self.gauge.0.fetch_add(1, SeqCst) + 1;
        self.gauge.1.fetch_max(now, SeqCst);
    }
}

#[async_trait::async_trait]
impl Hook for Watched {
    async fn reconcile(
        &self,
        inner: &dyn Peer,
        scope: &Scope,
        message: Message,
    ) -> Result<Message> {
        self.enter();
        self.largest_request
            .fetch_max(message.negentropy.len(), SeqCst);
        let answer = inner.reconcile(scope, message).await;
        self.gauge.0.fetch_sub(1, SeqCst);
        if let Ok(a) = &answer {
            self.largest.fetch_max(a.negentropy.len(), SeqCst);
        }
        answer
    }
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        self.enter();
        let answer = inner.fetch(cids).await;
        self.gauge.0.fetch_sub(1, SeqCst);
        answer
    }
}

type WatchedPeer = Hooked<Watched>;

fn watch(peers: &[Arc<SimPeer>]) -> (Vec<Arc<WatchedPeer>>, Arc<(AtomicUsize, AtomicUsize)>) {
    let gauge = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let watched = peers
        .iter()
        .map(|p| {
            let watched = Watched {
                gauge: gauge.clone(),
                largest: AtomicUsize::new(0),
                largest_request: AtomicUsize::new(0),
            };
            Arc::new(Hooked::new(p.clone(), watched))
        })
        .collect();
    (watched, gauge)
}

fn as_dyn(peers: &[Arc<WatchedPeer>]) -> Vec<Arc<dyn Peer>> {
    peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect()
}

#[tokio::test(start_paused = true)]
async fn no_more_than_concurrency_sessions_talk_at_once() {
    for concurrency in [1, 2, 3] {
        let mut net = Net::new();
        let tree = seedbank_sim::SimTree::generate(&mut rng(4), "c", &[6, 20]);
        let parts = tree.deal(&mut rng(5), 6, 0);
        let mut peers = Vec::new();
        for (i, part) in parts.into_iter().enumerate() {
            peers.push(
                net.peer(&format!("p{i}"), Behavior::Honest, ms(20), part, None)
                    .await,
            );
        }
        let (watched, gauge) = watch(&peers);
        let client = net.node().await;
        let discovery = client.discovery(DiscoveryConfig {
            concurrency,
            // One call in flight per session, so calls in flight count sessions.
            fetches_in_flight: 1,
            ..config()
        });
        let report = discovery
            .discover(&Scope::dag(tree.root_cid()), &as_dyn(&watched))
            .await
            .unwrap();
        assert!(report.complete, "{report}");
        assert_eq!(
            gauge.1.load(SeqCst),
            concurrency,
            "most calls in flight at once"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_named_scope_needs_named_quorum_peers_to_agree() {
    for quorum in [1, 2, 3] {
        let mut net = Net::new();
        let blobs = raw_blobs("q", 0, 30);
        let mut peers = Vec::new();
        for i in 0..4 {
            peers.push(
                net.peer(
                    &format!("p{i}"),
                    Behavior::Honest,
                    ms(10),
                    blobs.clone(),
                    Some("doc"),
                )
                .await,
            );
        }
        let client = net.node().await;
        let discovery = client.discovery(DiscoveryConfig {
            named_quorum: quorum,
            concurrency: 1,
            ..config()
        });
        let report = discovery
            .discover(&Scope::named("doc"), &dyn_peers(&peers))
            .await
            .unwrap();
        assert!(report.complete);
        assert_eq!(report.peers_contacted, quorum as u64, "{report}");
        assert_eq!(contacted(&peers), quorum);
        assert_eq!(report.blobs_fetched, 30);
    }
}

#[tokio::test(start_paused = true)]
async fn reconciliation_stops_after_max_rounds_and_frames_stay_under_frame_limit() {
    let mut net = Net::new();
    let theirs = raw_blobs("theirs", 0, 3000);
    let peer = net
        .peer("p", Behavior::Honest, ms(5), theirs, Some("doc"))
        .await;
    let client = net.node().await;
    client
        .put(raw_blobs("ours", 0, 3000), Some("doc"))
        .await
        .unwrap();

    let (watched, _) = watch(std::slice::from_ref(&peer));
    let limited = client.discovery(DiscoveryConfig {
        max_rounds: 2,
        frame_limit: 4096,
        ..config()
    });
    let result = limited
        .discover(&Scope::named("doc"), &as_dyn(&watched))
        .await;
    assert!(
        matches!(result, Err(Error::NotFound { cached: false, .. })),
        "{result:?}"
    );
    assert_eq!(peer.reconciles(), 2, "abandoned after max_rounds");
    assert_eq!(limited.peer_score("p").unwrap().failures, 1);
    // The client's frames obey its limit (the responder's answers follow the responder's).
    let request = watched[0].hook().largest_request.load(SeqCst);
    assert!(request > 0 && request <= 4096, "{request}");

    let (watched, _) = watch(std::slice::from_ref(&peer));
    // The largest limit allowed (0, negentropy's "unlimited", is refused: run_limits.rs).
    let unlimited = client.discovery(DiscoveryConfig {
        frame_limit: DiscoveryConfig::MAX_FRAME_LIMIT,
        ..config()
    });
    let before = peer.reconciles();
    let report = unlimited
        .discover(&Scope::named("doc"), &as_dyn(&watched))
        .await
        .unwrap();
    assert!(report.complete && report.blobs_fetched == 3000);
    assert!(
        watched[0]
            .hook()
            .largest
            .load(SeqCst)
            .max(watched[0].hook().largest_request.load(SeqCst))
            > 4096,
        "with a large limit, frames grow"
    );
    assert!(peer.reconciles() - before > 0);
}

#[tokio::test(start_paused = true)]
async fn a_responder_fetch_answers_within_its_count_and_byte_limits() {
    let mut net = Net::new();
    let server = net.node().await;
    let blobs: Vec<Blob> = (0..10u8)
        .map(|i| Blob::new(codec::RAW, vec![i; 1000]))
        .collect();
    server.put(blobs.clone(), None).await.unwrap();
    let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    let cases = [
        (5, usize::MAX, 5),
        (512, 2500, 2),
        (512, 10, 1),
        (512, 10_000, 10),
    ];
    for (max_fetch_blobs, max_fetch_bytes, expected) in cases {
        let responder = server.responder(
            "s",
            ResponderConfig {
                max_fetch_blobs,
                max_fetch_bytes,
                ..ResponderConfig::default()
            },
        );
        let answer = responder.fetch(&cids).await.unwrap();
        assert_eq!(
            answer.len(),
            expected,
            "{max_fetch_blobs} blobs, {max_fetch_bytes} bytes"
        );
        let sent: Vec<Cid> = answer.iter().map(|(c, _)| *c).collect();
        assert_eq!(sent, cids[..expected], "in the order asked");
    }
}

/// Blobs an answer had no room for are asked again, not counted as lacked: a named scope of
/// large blobs from one peer completes in one run (it stopped at 10 of 48 before), in DAG
/// scopes too, and with a byte limit that fits one blob per answer.
#[tokio::test(start_paused = true)]
async fn blobs_cut_by_a_fetch_answer_limit_are_fetched_in_later_answers() {
    let big = |tag: u8, n: usize| -> Vec<Blob> {
        (0..n)
            .map(|i| {
                let mut data = vec![tag; 1536 * 1024];
                data[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Blob::new(codec::RAW, data)
            })
            .collect()
    };
    for (max_fetch_bytes, blobs) in [(16 << 20, big(1, 48)), (2 << 20, big(2, 12))] {
        let mut net = Net::new();
        let server = net.node().await;
        server.put(blobs.clone(), Some("big")).await.unwrap();
        let limits = ResponderConfig {
            max_fetch_bytes,
            ..ResponderConfig::default()
        };
        let peer: Arc<dyn Peer> = Arc::new(SimPeer::new(
            "one",
            Behavior::Honest,
            ms(1),
            Some(server.responder("one", limits)),
        ));
        let client = net.node().await;
        let report = client
            .discovery(config())
            .discover(&Scope::named("big"), &[peer])
            .await
            .unwrap();
        assert!(report.complete, "{report}");
        assert_eq!(report.blobs_fetched, blobs.len() as u64, "{report}");
        let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
        let stored = client.store().has_many(&cids).await.unwrap();
        assert!(stored.iter().all(|&s| s), "{report}");
    }
}

/// Counts the CIDs a peer is asked for in fetches.
#[derive(Default)]
struct AskCounter {
    asked: AtomicUsize,
}

#[async_trait::async_trait]
impl Hook for AskCounter {
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        self.asked.fetch_add(cids.len(), SeqCst);
        inner.fetch(cids).await
    }
}

/// A session asks a peer that cut its answer for no more than that answer carried: each
/// CID is asked for at most twice (once in the first, over-long request, once after), not
/// once per answer until its turn comes.
#[tokio::test(start_paused = true)]
async fn a_peer_that_cuts_its_answers_is_asked_for_as_many_as_it_sends() {
    // 48 blobs of 1.5 MiB: 10 to a 16 MiB answer; 12 blobs of 1.5 MiB: 1 to a 2 MiB one.
    for (max_fetch_bytes, n) in [(16usize << 20, 48usize), (2 << 20, 12)] {
        let blobs: Vec<Blob> = (0..n)
            .map(|i| {
                let mut data = vec![3u8; 1536 * 1024];
                data[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Blob::new(codec::RAW, data)
            })
            .collect();
        let mut net = Net::new();
        let server = net.node().await;
        server.put(blobs.clone(), Some("big")).await.unwrap();
        let limits = ResponderConfig {
            max_fetch_bytes,
            ..ResponderConfig::default()
        };
        let peer = Arc::new(Hooked::new(
            Arc::new(SimPeer::new(
                "one",
                Behavior::Honest,
                ms(1),
                Some(server.responder("one", limits)),
            )),
            AskCounter::default(),
        ));
        let client = net.node().await;
        let report = client
            .discovery(config())
            .discover(&Scope::named("big"), &[peer.clone() as Arc<dyn Peer>])
            .await
            .unwrap();
        assert!(report.complete, "{report}");
        assert_eq!(report.blobs_fetched, n as u64, "{report}");
        let asked = peer.hook().asked.load(SeqCst);
        assert!(
            asked < 2 * n,
            "{asked} CIDs asked for {n} blobs ({max_fetch_bytes}-byte answers): {report}"
        );
    }
}
