//! Fetched blobs go through the lane, so ingest during discovery never blocks `info` reads.

use crate::common::*;
use seedbank_blobstore::{Priority, PutOptions};
use seedbank_discovery::Scope;
use seedbank_sim::Behavior;

// Real time: the lane is held by a real thread; the test waits on counts, never on a clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_during_discovery_never_blocks_info_reads() {
    let mut net = Net::new();
    let wanted = raw_blobs("doc", 0, 500);
    let peer = net
        .peer("p", Behavior::Honest, ms(1), wanted, Some("doc"))
        .await;
    let client = net.node().await;
    let local = raw_blobs("local", 0, 50);
    client.put(local.clone(), None).await.unwrap();
    let store = client.store().clone();

    // Hold the lane inside a write transaction until released.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (entered, lane_held) = tokio::sync::oneshot::channel::<()>();
    let blocker = tokio::spawn({
        let store = store.clone();
        async move {
            let opts = PutOptions::new(Priority::Interactive, "blocker");
            store
                .write(opts, move |_conn| {
                    let _ = entered.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        }
    });
    lane_held.await.unwrap();

    let discovery = client.discovery(config());
    let run = tokio::spawn({
        let peers = dyn_peers(std::slice::from_ref(&peer));
        async move { discovery.discover(&Scope::named("doc"), &peers).await }
    });
    // Wait until discovery's first fetched batch is queued behind the held lane.
    let normal_queued = || {
        let stats = store.stats();
        stats
            .classes
            .iter()
            .find(|c| c.name == "normal")
            .map_or(0, |c| c.queued_requests)
    };
    seedbank_blobstore::testing::wait_for("discovery's batch to queue behind the lane", || {
        assert!(!run.is_finished());
        normal_queued() > 0
    })
    .await;

    for blob in &local {
        let info = store.info(blob.cid()).await.unwrap().expect("stored");
        assert_eq!(info.size, blob.len() as u64);
        let indexed = client
            .index
            .info(blob.cid())
            .await
            .unwrap()
            .expect("indexed");
        assert!(indexed.indexed);
    }
    assert!(
        normal_queued() > 0 && !run.is_finished(),
        "the reads ran while ingest waited"
    );

    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(report.complete);
    assert_eq!(report.blobs_fetched, 500);
    let stats = store.stats();
    let source = stats
        .sources
        .iter()
        .find(|s| s.name == "discovery")
        .expect("lane source");
    assert_eq!(
        source.blobs, 500,
        "every fetched blob went through the lane"
    );
    let normal = stats.classes.iter().find(|c| c.name == "normal").unwrap();
    let batches = 500_u64.div_ceil(config().fetch_batch as u64);
    assert!(normal.acks >= batches, "in batches, at Normal priority");
    assert_eq!(stats.sqlite_busy, 0);
}

/// A subscriber sees a run start, grow and finish, with totals that match its report.
#[tokio::test(start_paused = true)]
async fn progress_events_follow_a_run_to_its_report() {
    let mut net = Net::new();
    let dag = dag(5, 8, 20);
    let peer = net
        .peer("p", Behavior::Honest, ms(1), dag.blocks(), None)
        .await;
    let client = net.node().await;
    let discovery = client.discovery(seedbank_discovery::DiscoveryConfig {
        fetch_batch: 8,
        ..config()
    });
    let mut events = discovery.progress();
    let report = discovery
        .discover(&Scope::dag(dag.root_cid()), &dyn_peers(&[peer]))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(seen.len() >= 3, "start, batches, end: {seen:?}");
    assert!(!seen[0].finished && seen[0].blobs_fetched == 0);
    for pair in seen.windows(2) {
        assert!(pair[1].blobs_fetched >= pair[0].blobs_fetched, "{pair:?}");
        assert!(pair[1].bytes_fetched >= pair[0].bytes_fetched, "{pair:?}");
    }
    let last = seen.last().unwrap();
    assert!(last.finished && seen.iter().filter(|e| e.finished).count() == 1);
    assert_eq!(last.run, report.run);
    assert_eq!(last.blobs_fetched, report.blobs_fetched);
    assert_eq!(last.blobs_fetched, dag.len() as u64);
    assert!(seen.iter().all(|e| e.wanted >= e.blobs_fetched), "{seen:?}");
}
