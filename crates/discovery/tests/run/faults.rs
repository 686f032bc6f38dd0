//! Failing, hanging and lying peers: discovery still completes, and a liar's bytes are never
//! stored.

use std::sync::Arc;

use crate::common::*;
use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::testing::{Hook, Hooked};
use seedbank_discovery::{Peer, Result, Scope, SessionOutcome};
use seedbank_sim::{Behavior, SimPeer};

#[tokio::test(start_paused = true)]
async fn twenty_percent_failing_or_hanging_peers_and_a_liar_do_not_stop_discovery() {
    let mut net = Net::new();
    let dag = dag(8, 8, 16);
    let other = crate::common::dag(9, 2, 4);
    let liar = net
        .peer(
            "liar",
            Behavior::Liar,
            ms(5),
            [dag.blocks(), other.blocks()].concat(),
            None,
        )
        .await;
    let mut peers = vec![liar.clone()];
    peers.push(storeless("fail1", Behavior::Failing, ms(10)));
    peers.push(storeless("hang1", Behavior::Hanging, ms(10)));
    peers.push(storeless("fail2", Behavior::Failing, ms(30)));
    peers.push(storeless("hang2", Behavior::Hanging, ms(30)));
    for i in 0..15 {
        let blobs = [
            dag.subset(|b, leaf| (b * 16 + leaf + i) % 4 != 0),
            other.blocks(),
        ]
        .concat();
        peers.push(
            net.peer(&format!("p{i:02}"), Behavior::Honest, ms(20), blobs, None)
                .await,
        );
    }
    let client = net.node().await;
    let discovery = client.discovery(config());
    let report = discovery
        .discover(&Scope::dag(dag.root_cid()), &dyn_peers(&peers))
        .await
        .unwrap();

    assert!(report.complete, "{report}");
    assert_dag_complete(&client, &dag).await;
    assert!(report.peers_contacted <= 8);
    assert_eq!(report.liars, 1);
    assert!(matches!(
        report.sessions[0].outcome,
        SessionOutcome::Liar(_)
    ));
    assert_eq!(report.duplicates, 0);
    assert!(!liar.lies().is_empty(), "the liar did send bad bytes");
    // Whatever the liar's answer held, all of it came from honest peers instead.
    let honest: std::collections::HashSet<Cid> = peers[1..].iter().flat_map(|p| p.sent()).collect();
    for cid in liar.sent().iter().chain(liar.lies().iter().map(|(c, _)| c)) {
        assert!(
            honest.contains(cid),
            "{cid} was taken from the liar's answer"
        );
    }
    assert!(client.store().verify().await.unwrap().problems.is_empty());
    assert!(discovery.peer_score("liar").unwrap().liar);
    assert!(discovery.peer_score("fail1").unwrap().failures == 1);

    let before = liar.messages();
    let again = discovery
        .discover(&Scope::dag(other.root_cid()), &dyn_peers(&peers))
        .await
        .unwrap();
    assert!(again.complete);
    assert_eq!(liar.messages(), before, "a liar is never contacted again");
    assert!(again.sessions.iter().all(|s| s.peer != "liar"));
}

/// Answers honestly, and pushes one extra blob nobody asked for with every fetch.
struct Pushy(Blob);

#[async_trait::async_trait]
impl Hook for Pushy {
    async fn fetch(&self, inner: &dyn Peer, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        let mut blobs = inner.fetch(cids).await?;
        blobs.push((*self.0.cid(), self.0.data().clone()));
        Ok(blobs)
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_sending_blobs_nobody_asked_for_is_dropped_and_none_of_its_blobs_are_stored() {
    let mut net = Net::new();
    let blobs = raw_blobs("doc", 0, 30);
    let pushy_node = net.node().await;
    pushy_node.put(blobs.clone(), Some("doc")).await.unwrap();
    let junk = Blob::new(codec::RAW, &b"junk"[..]);
    let inner = SimPeer::new(
        "pushy",
        Behavior::Honest,
        ms(5),
        Some(pushy_node.responder("pushy", Default::default())),
    );
    let pushy: Arc<dyn Peer> = Arc::new(Hooked::new(Arc::new(inner), Pushy(junk.clone())));
    let honest = net
        .peer("honest", Behavior::Honest, ms(50), blobs, Some("doc"))
        .await;
    let client = net.node().await;
    let discovery = client.discovery(seedbank_discovery::DiscoveryConfig {
        concurrency: 1,
        ..config()
    });
    let report = discovery
        .discover(
            &Scope::named("doc"),
            &[pushy, honest.clone() as Arc<dyn Peer>],
        )
        .await
        .unwrap();

    assert!(report.complete);
    assert!(
        matches!(&report.sessions[0].outcome, SessionOutcome::Liar(why) if why.contains("not asked for"))
    );
    assert_eq!(
        report.sessions[0].blobs, 0,
        "nothing from its answer was stored"
    );
    assert_eq!(report.sessions[1].blobs, 30);
    assert!(!client.store().has(junk.cid()).await.unwrap());
    assert!(discovery.peer_score("pushy").unwrap().liar);
}

#[tokio::test(start_paused = true)]
async fn good_blobs_only_a_liar_has_are_not_stored_when_its_answer_holds_a_bad_one() {
    let mut net = Net::new();
    let shared = raw_blobs("shared", 0, 20);
    let only_liar = raw_blobs("liar-only", 0, 10);
    let liar = net
        .peer(
            "liar",
            Behavior::Liar,
            ms(5),
            [shared.clone(), only_liar.clone()].concat(),
            Some("doc"),
        )
        .await;
    let honest = net
        .peer(
            "honest",
            Behavior::Honest,
            ms(20),
            shared.clone(),
            Some("doc"),
        )
        .await;
    let client = net.node().await;
    let discovery = client.discovery(seedbank_discovery::DiscoveryConfig {
        concurrency: 1,
        ..config()
    });
    let report = discovery
        .discover(
            &Scope::named("doc"),
            &dyn_peers(&[liar.clone(), honest.clone()]),
        )
        .await
        .unwrap();

    assert!(
        matches!(report.sessions[0].outcome, SessionOutcome::Liar(_)),
        "{report}"
    );
    assert_eq!(liar.lies().len(), 1, "one answer, one bad blob in it");
    let good_from_liar: Vec<Cid> = liar.sent();
    assert_eq!(good_from_liar.len(), 29, "the rest of its answer was good");
    let only: Vec<Cid> = only_liar.iter().map(|b| *b.cid()).collect();
    let stored = client.store().has_many(&only).await.unwrap();
    assert!(
        stored.iter().all(|s| !s),
        "good blobs from a condemned answer were stored"
    );
    assert_eq!(
        report.blobs_fetched, 20,
        "the shared ones, from the honest peer"
    );
    assert!(discovery.peer_score("liar").unwrap().liar);
}
