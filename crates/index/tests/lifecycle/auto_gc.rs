//! Size targets collect by themselves: a put that takes the store past
//! `IndexConfig::gc_target_blobs` or `gc_target_bytes` starts one background collection,
//! observed here without calling `gc` (or `gc_if_over_target`) at all.

use std::time::Duration;

use cid::Cid;
use seedbank_blobstore::{Blob, Config, Store};
use seedbank_index::testing::raw;
use seedbank_index::{Index, IndexConfig, IndexPutOptions};

/// A fresh store holding one pinned blob, put and pinned through an index without size
/// targets (so nothing collects yet). Returns the store, the pinned CID and the temp dir.
async fn store_with_a_pinned_blob() -> (Store, Cid, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("blobs.db"), Config::default()).unwrap();
    let plain = Index::open(store.clone(), IndexConfig::default())
        .await
        .unwrap();
    let keep = plain.put(raw("keep", 100)).await.unwrap();
    plain.pin("keep", &keep).await.unwrap();
    (store, keep, dir)
}

/// Waits, polling every 10 ms for at most 30 s, until none of `cids` is stored; fails the
/// test if some still are then.
async fn wait_until_collected(store: &Store, cids: &[Cid]) {
    let gone = async {
        loop {
            let present = store.has_many(cids).await.unwrap();
            if present.iter().all(|p| !p) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .is_err()
    {
        let left = store.has_many(cids).await.unwrap();
        let left = left.iter().filter(|p| **p).count();
        panic!(
            "{left} of {} unpinned blobs still stored 30 s after a put past the size target: \
             no collection started by itself ({} blobs freed)",
            cids.len(),
            store.stats().blobs_freed
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_past_the_blob_target_starts_a_collection_by_itself() {
    let (store, keep, _dir) = store_with_a_pinned_blob().await;
    let config = IndexConfig {
        gc_target_blobs: Some(10),
        ..Default::default()
    };
    let index = Index::open(store.clone(), config).await.unwrap();
    // One put of 20 unpinned blobs: 21 CIDs, past the target of 10.
    let junk: Vec<Blob> = (0..20).map(|i| raw(&format!("junk{i}"), 100)).collect();
    let junk = index
        .put_many(junk, IndexPutOptions::default())
        .await
        .unwrap();
    wait_until_collected(&store, &junk).await;
    assert_eq!(
        store.has_many(&[keep]).await.unwrap(),
        [true],
        "pinned blob"
    );
    assert_eq!(store.contents().await.unwrap().cids, 1);
    assert_eq!(store.stats().blobs_freed, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_past_the_byte_target_starts_a_collection_by_itself() {
    let (store, keep, _dir) = store_with_a_pinned_blob().await;
    let used = store.space().await.unwrap().used_bytes();
    let config = IndexConfig {
        gc_target_bytes: Some(used + 64 * 1024),
        ..Default::default()
    };
    let index = Index::open(store.clone(), config).await.unwrap();
    // One put of 16 × 16 KiB unpinned blobs: 256 KiB, past the target.
    let junk: Vec<Blob> = (0..16)
        .map(|i| raw(&format!("junk{i}"), 16 * 1024))
        .collect();
    let junk = index
        .put_many(junk, IndexPutOptions::default())
        .await
        .unwrap();
    wait_until_collected(&store, &junk).await;
    assert_eq!(
        store.has_many(&[keep]).await.unwrap(),
        [true],
        "pinned blob"
    );
    let stats = store.stats();
    assert_eq!(stats.blobs_freed, 16);
    assert!(stats.bytes_freed >= 16 * 16 * 1024, "{stats}");
}
