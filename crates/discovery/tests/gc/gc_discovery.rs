//! Garbage collection beside a discovery run and 256 producers: nothing protected is ever
//! deleted, and the run still completes its scope.
//!
//! The client holds junk and unprotected copies of part of the scope (stored, not members:
//! discovery only adds their membership, racing the collections that want them gone). The
//! scope is pinned (`pin_scope`) before the run. While collections run back to back, 256
//! producers write small DAGs under temp pins (then pin them by name, or pin first and
//! write, or only hold the temp pin while they check; each holds its first DAG under a temp
//! pin alone until a whole collection marked after the write went by), and the run ingests
//! the named scope from an in-process peer. Three seeds; every wait is bounded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use cid::Cid;
use rand::{Rng, SeedableRng};
use seedbank_blobstore::testing::{bounded_for, wait_for};
use seedbank_blobstore::{codec, Blob};
use seedbank_discovery::Scope;
use seedbank_index::testing::node;
use seedbank_index::{GcOptions, Index, IndexPutOptions};
use seedbank_sim::{Behavior, SimDag};

const PRODUCERS: u64 = 256;
const DAGS_PER_PRODUCER: usize = 8;

/// `leaves` raw blobs under one root; returns (root, blobs).
fn small_dag(tag: &str, leaves: usize) -> (Cid, Vec<Blob>) {
    let leaves: Vec<Blob> = (0..leaves)
        .map(|i| Blob::new(codec::RAW, format!("{tag}/{i}").into_bytes()))
        .collect();
    let links: Vec<Cid> = leaves.iter().map(|b| *b.cid()).collect();
    let root = node(&format!("{tag}/root"), &links);
    let cid = *root.cid();
    let mut all = vec![root];
    all.extend(leaves);
    (cid, all)
}

/// Waits until `n` collections finished (at most a minute).
async fn collections_done(finished: &AtomicU64, n: u64) {
    let wait = async {
        while finished.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the collections go on");
}

/// One producer: its DAGs, each protected one of three ways. Returns the CIDs it pinned by
/// name (kept for good); the third way only holds a temp pin while checking, then lets go.
/// Its first DAG is held under its temp pin until a whole collection, marked after the
/// write, went by: only the temp pin protects it from that one.
async fn produce(index: Index, seed: u64, p: u64, finished: Arc<AtomicU64>) -> Vec<Cid> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 10_000 + p);
    let mut kept = Vec::new();
    {
        let tag = format!("{seed}/{p}/held");
        let (root, blobs) = small_dag(&tag, rng.gen_range(1..8));
        let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
        let tp = index.temp_pin();
        let opts = IndexPutOptions::default().temp_pin(&tp);
        index.put_many(blobs, opts).await.unwrap();
        // The one running now may have marked before the write; the next one did not.
        collections_done(&finished, finished.load(Ordering::SeqCst) + 2).await;
        let has = index.store().has_many(&cids).await.unwrap();
        assert!(
            has.iter().all(|&h| h),
            "seed {seed}: producer {p}: a temp-pinned blob was collected"
        );
        index.pin(&tag, &root).await.unwrap();
        drop(tp);
        kept.extend(cids);
    }
    for d in 0..DAGS_PER_PRODUCER {
        // Spread over the run, so collections start (and mark) between the writes.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..100))).await;
        let tag = format!("{seed}/{p}/{d}");
        let (root, blobs) = small_dag(&tag, rng.gen_range(1..8));
        let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
        let check = |what: &str, has: Vec<bool>| {
            assert!(
                has.iter().all(|&h| h),
                "seed {seed}: producer {p} dag {d}: {what} blob deleted"
            );
        };
        match rng.gen_range(0..3) {
            0 => {
                let tp = index.temp_pin();
                let opts = IndexPutOptions::default().temp_pin(&tp);
                index.put_many(blobs, opts).await.unwrap();
                tokio::task::yield_now().await;
                check("temp-pinned", index.store().has_many(&cids).await.unwrap());
                index.pin(&tag, &root).await.unwrap();
                drop(tp);
                kept.extend(cids);
            }
            1 => {
                index.pin(&tag, &root).await.unwrap();
                index.put_many(blobs, Default::default()).await.unwrap();
                kept.extend(cids);
            }
            _ => {
                let tp = index.temp_pin();
                let opts = IndexPutOptions::default().temp_pin(&tp);
                index.put_many(blobs, opts).await.unwrap();
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                    check("temp-pinned", index.store().has_many(&cids).await.unwrap());
                }
                drop(tp);
            }
        }
    }
    kept
}

async fn run(seed: u64) {
    let mut net = Net::new();
    let doc = SimDag::generate(&mut rng(seed), &format!("doc{seed}"), 20, 50, 64, None);
    let doc_cids: Vec<Cid> = doc.blocks().iter().map(|b| *b.cid()).collect();
    let peer = net
        .peer("p", Behavior::Honest, ms(10), doc.blocks(), Some("doc"))
        .await;
    let client = net.node().await;
    let index = client.index.clone();
    client
        .put(raw_blobs(&format!("junk{seed}"), 0, 200), None)
        .await
        .unwrap();
    // Every third block of the scope is here already, unprotected.
    let overlap: Vec<Blob> = doc.blocks().into_iter().step_by(3).collect();
    let overlap_len = overlap.len() as u64;
    let overlap_cids: std::collections::HashSet<Cid> = overlap.iter().map(|b| *b.cid()).collect();
    client.put(overlap, None).await.unwrap();
    index.pin_scope("doc-pin", "doc").await.unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));
    let gc = {
        let (index, done, finished) = (index.clone(), done.clone(), finished.clone());
        tokio::spawn(async move {
            let (mut starts, mut freed) = (Vec::new(), 0u64);
            while !done.load(Ordering::SeqCst) && starts.len() < 500 {
                let opts = GcOptions {
                    batch_blobs: 128,
                    ..Default::default()
                };
                starts.push(Instant::now());
                freed += index.gc(opts).await.unwrap().blobs_freed;
                finished.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
            (starts, freed)
        })
    };
    // Let the first collection start on the junk and the overlap.
    wait_for("the first collection's deletes", || {
        index.store().stats().blobs_freed > 0
    })
    .await;
    let discovery = {
        let discovery = client.discovery(config());
        let peers = dyn_peers(std::slice::from_ref(&peer));
        tokio::spawn(async move { discovery.discover(&Scope::named("doc"), &peers).await })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| tokio::spawn(produce(index.clone(), seed, p, finished.clone())))
        .collect();
    let mut kept = Vec::new();
    for p in producers {
        kept.extend(p.await.unwrap());
    }
    let producers_done = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(60), discovery)
        .await
        .expect("the discovery run ends")
        .unwrap()
        .unwrap();
    done.store(true, Ordering::SeqCst);
    let (starts, freed) = gc.await.unwrap();
    // Collections marked (and swept) while the producers and the run were writing: the
    // first before any of it, at least one more in the middle of it.
    let runs = starts.iter().filter(|s| **s < producers_done).count();

    assert!(report.complete, "seed {seed}: {report}");
    // The whole scope is here and a member, the overlap included.
    let has = index.store().has_many(&doc_cids).await.unwrap();
    let missing: Vec<Cid> = doc_cids
        .iter()
        .zip(&has)
        .filter(|(_, h)| !**h)
        .map(|(c, _)| *c)
        .collect();
    let stored_before = missing.iter().filter(|c| overlap_cids.contains(c)).count();
    assert!(
        missing.is_empty(),
        "seed {seed}: {} blocks of the pinned scope are missing, {stored_before} of them stored \
         here before the run ({report})",
        missing.len()
    );
    let members = index.scope_members("doc").await.unwrap();
    assert_eq!(members.len(), doc.len(), "seed {seed}");
    assert!(report.blobs_fetched + report.memberships_added >= doc.len() as u64 - overlap_len);
    assert_dag_complete(&client, &doc).await;
    let has = index.store().has_many(&kept).await.unwrap();
    assert!(
        has.iter().all(|&h| h),
        "seed {seed}: a pinned blob was collected"
    );

    assert!(
        runs >= 3 && freed > 0,
        "seed {seed}: {runs} collections during the writes freed {freed}"
    );

    // The next collection leaves exactly the pinned scope and the producers' pinned DAGs.
    index.gc(GcOptions::default()).await.unwrap();
    assert_eq!(
        index.store().contents().await.unwrap().cids,
        (kept.len() + doc.len()) as u64,
        "seed {seed}"
    );
    let verify = index.store().verify().await.unwrap();
    assert!(verify.problems.is_empty(), "{:?}", verify.problems);
    eprintln!(
        "seed {seed}: {runs} collections freed {freed} beside the run ({} fetched, {} joined); \
         {} producer blobs pinned",
        report.blobs_fetched,
        report.memberships_added,
        kept.len()
    );
    index.store().close().await.unwrap();
}

/// Fails the test rather than hang if a write never returns.
async fn within_two_minutes(run: impl std::future::Future<Output = ()>) {
    bounded_for(Duration::from_secs(120), "the whole test", run).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_beside_discovery_and_256_producers_seed_1() {
    within_two_minutes(run(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_beside_discovery_and_256_producers_seed_2() {
    within_two_minutes(run(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_beside_discovery_and_256_producers_seed_3() {
    within_two_minutes(run(3)).await;
}
