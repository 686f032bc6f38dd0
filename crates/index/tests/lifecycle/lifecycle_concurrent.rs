//! Garbage collection concurrent with 256 producers writing DAGs under temp pins, and with
//! pins taken on blobs written without one: nothing protected is ever deleted.

use cid::Cid;
use rand::{Rng, SeedableRng};
use seedbank_blobstore::testing::wait_for;
use seedbank_blobstore::{codec, Blob, Config, Store};
use seedbank_index::testing::node;
use seedbank_index::{GcOptions, Index, IndexConfig, IndexPutOptions};

/// A small DAG: `leaves` raw blobs under one root; returns (root, blobs in write order).
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

async fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("c.db"), Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    // Garbage for the collections to chew on.
    let junk: Vec<Blob> = (0..2000)
        .map(|i| Blob::new(codec::RAW, format!("junk {seed} {i}").into_bytes()))
        .collect();
    index
        .put_many(junk, IndexPutOptions::default())
        .await
        .unwrap();

    let mut producers = Vec::new();
    for p in 0..256 {
        let index = index.clone();
        producers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 1000 + p);
            let mut kept = Vec::new();
            for d in 0..4 {
                let (root, blobs) = small_dag(&format!("{seed}/{p}/{d}"), rng.gen_range(1..8));
                let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
                if rng.gen_bool(0.5) {
                    // Temp pin, write, then a named pin, then release the temp pin.
                    let tp = index.temp_pin();
                    let opts = IndexPutOptions::default().temp_pin(&tp);
                    index.put_many(blobs, opts).await.unwrap();
                    tokio::task::yield_now().await;
                    index.pin(&format!("{p}/{d}"), &root).await.unwrap();
                    drop(tp);
                } else {
                    // Pin first (the root is absent), then write without a temp pin.
                    index.pin(&format!("{p}/{d}"), &root).await.unwrap();
                    index
                        .put_many(blobs, IndexPutOptions::default())
                        .await
                        .unwrap();
                }
                // Must be present right after the write, whatever GC is doing.
                let has = index.store().has_many(&cids).await.unwrap();
                assert!(
                    has.iter().all(|&h| h),
                    "seed {seed}: protected blob deleted"
                );
                kept.extend(cids);
            }
            kept
        }));
    }
    let gc = {
        let index = index.clone();
        tokio::spawn(async move {
            let mut freed = 0;
            for _ in 0..6 {
                let opts = GcOptions {
                    batch_blobs: 64,
                    ..Default::default()
                };
                freed += index.gc(opts).await.unwrap().blobs_freed;
                tokio::task::yield_now().await;
            }
            freed
        })
    };
    let mut kept = Vec::new();
    for p in producers {
        kept.extend(p.await.unwrap());
    }
    let freed = gc.await.unwrap();
    assert!(freed > 0, "the collections deleted something");
    index.gc(GcOptions::default()).await.unwrap();
    let has = index.store().has_many(&kept).await.unwrap();
    assert!(
        has.iter().all(|&h| h),
        "seed {seed}: a pinned blob was collected"
    );
    assert_eq!(
        index.store().contents().await.unwrap().cids,
        kept.len() as u64
    );
    index.store().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_never_deletes_what_producers_protect() {
    for seed in 1..=3 {
        run(seed).await;
    }
}

/// Blobs that were garbage when the collection started and got pinned during its sweep:
/// each one still present once its pin is committed must survive the collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_taken_during_the_sweep_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("p.db"), Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    let mut late = Vec::new();
    let mut blobs = Vec::new();
    for i in 0..400 {
        let (root, dag) = small_dag(&format!("late{i}"), 2);
        late.push((root, dag.iter().map(|b| *b.cid()).collect::<Vec<_>>()));
        blobs.extend(dag);
    }
    index
        .put_many(blobs, IndexPutOptions::default())
        .await
        .unwrap();
    let gc = {
        let index = index.clone();
        tokio::spawn(async move {
            let opts = GcOptions {
                batch_blobs: 4,
                ..Default::default()
            };
            index.gc(opts).await.unwrap()
        })
    };
    wait_for("the sweep's first deletes", || {
        index.store().stats().blobs_freed > 0
    })
    .await;
    // Pin from the end (swept last) so most pins land mid-sweep.
    let mut survivors = Vec::new();
    for (i, (root, cids)) in late.iter().enumerate().rev() {
        index.pin(&format!("late{i}"), root).await.unwrap();
        let has = index.store().has_many(cids).await.unwrap();
        if has.iter().all(|&h| h) {
            survivors.extend(cids.iter().copied());
        }
    }
    let report = gc.await.unwrap();
    assert!(report.blobs_freed > 0);
    assert!(
        !survivors.is_empty(),
        "some pins landed before their blobs were swept"
    );
    let has = index.store().has_many(&survivors).await.unwrap();
    assert!(
        has.iter().all(|&h| h),
        "a blob pinned mid-sweep was collected"
    );
    index.store().close().await.unwrap();
}
