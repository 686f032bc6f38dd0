//! A DAG discovery beside back-to-back garbage collections, with nothing pinned by the app:
//! everything a run stores is under the run's temp pin until the run ends, so no collection
//! takes a block the run fetched (which would make it fetch it again, or end incomplete).
//! Keeping the content after the run is the app's pin. Three seeds; every wait is bounded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use seedbank_discovery::{DiscoveryConfig, Scope};
use seedbank_index::GcOptions;
use seedbank_sim::Behavior;

async fn run(seed: u64) {
    let mut net = Net::new();
    let dag = dag(seed, 16, 40);
    let peer = net
        .peer("full", Behavior::Honest, ms(2), dag.blocks(), None)
        .await;
    let client = net.node().await;
    let stop = Arc::new(AtomicBool::new(false));
    let collections = Arc::new(AtomicU64::new(0));
    let gc = {
        let (index, stop, collections) = (client.index.clone(), stop.clone(), collections.clone());
        tokio::spawn(async move {
            while !stop.load(Relaxed) {
                let opts = GcOptions {
                    batch_blobs: 8,
                    ..Default::default()
                };
                index.gc(opts).await.unwrap();
                collections.fetch_add(1, Relaxed);
            }
        })
    };
    let discovery = client.discovery(DiscoveryConfig {
        // Small fetches: blocks arrive over many lane writes, between collections.
        fetch_batch: 4,
        ..config()
    });
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        discovery.discover(&Scope::dag(dag.root_cid()), &dyn_peers(&[peer])),
    )
    .await
    .expect("discovery stalled")
    .unwrap();
    let during = collections.load(Relaxed);
    stop.store(true, Relaxed);
    tokio::time::timeout(Duration::from_secs(30), gc)
        .await
        .expect("gc stalled")
        .unwrap();
    assert!(during >= 2, "collections ran during the sync: {during}");
    assert!(report.complete, "seed {seed}: {report}");
    // Each block fetched once: none was collected under the run and fetched again.
    assert_eq!(
        (report.blobs_fetched, report.duplicates),
        (dag.len() as u64, 0),
        "seed {seed}: {report}"
    );
    // The run's temp pin ended with it: unpinned by the app, the DAG is collected.
    client.index.gc(GcOptions::default()).await.unwrap();
    let cids: Vec<_> = dag.blocks().iter().map(|b| *b.cid()).collect();
    let stored = client.store().has_many(&cids).await.unwrap();
    assert!(
        stored.iter().all(|s| !s),
        "seed {seed}: the temp pin outlived its run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_a_dag_run_stores_survive_collections_while_it_runs() {
    for seed in 1..=3 {
        run(seed).await;
    }
}
