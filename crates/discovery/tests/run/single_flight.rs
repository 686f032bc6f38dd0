//! Concurrent discoveries of one scope share one run and one haves build.

use crate::common::*;
use seedbank_discovery::Scope;
use seedbank_sim::Behavior;

#[tokio::test(start_paused = true)]
async fn a_hundred_concurrent_discoveries_with_30_peers_share_one_run_and_one_haves_build() {
    let mut net = Net::new();
    let dag = dag(1, 8, 16);
    let client = net.node().await;
    client
        .put(dag.subset(|_, leaf| leaf % 2 == 0), None)
        .await
        .unwrap();
    let mut peers = Vec::new();
    for i in 0..30 {
        let blobs = dag.subset(|b, leaf| (b + leaf + i) % 3 != 0);
        let latency = ms(10 + 7 * i as u64);
        peers.push(
            net.peer(&format!("p{i:02}"), Behavior::Honest, latency, blobs, None)
                .await,
        );
    }
    let discovery = client.discovery(config());
    let offered = dyn_peers(&peers);
    let scope = Scope::dag(dag.root_cid());

    let calls: Vec<_> = (0..100)
        .map(|_| {
            let (discovery, offered, scope) = (discovery.clone(), offered.clone(), scope.clone());
            tokio::spawn(async move { discovery.discover(&scope, &offered).await })
        })
        .collect();
    let mut reports = Vec::new();
    for call in calls {
        reports.push(call.await.unwrap().unwrap());
    }

    assert_eq!(discovery.stats().runs, 1);
    assert_eq!(discovery.stats().joined, 99);
    assert_eq!(
        client.haves.stats().builds,
        1,
        "one haves build for the (scope, generation)"
    );
    assert!(reports.iter().all(|r| r.run == 1 && r.complete));
    let report = &reports[0];
    assert_eq!(report.haves_builds, 1);
    assert_eq!(report.duplicates, 0);
    assert!(report.peers_contacted <= 8 && contacted(&peers) as u64 == report.peers_contacted);
    assert_eq!(report.blobs_fetched, 64, "the odd leaves");
    assert_eq!(
        messages(&peers),
        report.messages(),
        "every message is accounted for"
    );
    assert_dag_complete(&client, &dag).await;
}

#[tokio::test(start_paused = true)]
async fn a_call_after_a_run_ended_starts_a_new_run_on_the_grown_snapshot() {
    let mut net = Net::new();
    let dag = dag(2, 4, 8);
    let client = net.node().await;
    let peer = net
        .peer("p", Behavior::Honest, ms(20), dag.blocks(), None)
        .await;
    let discovery = client.discovery(config());
    let scope = Scope::dag(dag.root_cid());
    let first = discovery
        .discover(&scope, &dyn_peers(std::slice::from_ref(&peer)))
        .await
        .unwrap();
    assert!(first.complete && first.blobs_fetched == dag.len() as u64);
    let messages_after_first = peer.messages();

    let second = discovery
        .discover(&scope, &dyn_peers(std::slice::from_ref(&peer)))
        .await
        .unwrap();
    assert_eq!(
        (second.run, second.complete, second.blobs_fetched),
        (2, true, 0)
    );
    assert_eq!(second.peers_contacted, 0, "a complete DAG needs no peer");
    assert_eq!(peer.messages(), messages_after_first);
    assert_eq!(client.haves.stats().builds, 2);
}
