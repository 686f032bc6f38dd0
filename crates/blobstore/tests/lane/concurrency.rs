//! Many writers and readers at once: nothing lost, nothing corrupt, zero SQLITE_BUSY.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::{random_blobs, temp_store};
use cid::Cid;
use seedbank_blobstore::{Blob, Config, PutOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_producers_and_info_readers_lose_nothing_and_never_see_busy() {
    let (store, _dir, _) = temp_store(Config::default());
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let seen: Vec<Cid> = random_blobs(999, 16, 64).iter().map(|b| *b.cid()).collect();
    store
        .put_many(random_blobs(999, 16, 64), PutOptions::default())
        .await
        .unwrap();

    let readers: Vec<_> = (0..16)
        .map(|i| {
            let (store, done, reads, cid) = (store.clone(), done.clone(), reads.clone(), seen[i]);
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let info = store.info(&cid).await.expect("info never fails");
                    assert_eq!(info.expect("stored before readers started").size, 64);
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let producers: Vec<_> = (0..512u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let blobs: Vec<Blob> = random_blobs(i, 10, 1024);
                let cids = store.put_many(blobs.clone(), PutOptions::default()).await?;
                Ok::<_, seedbank_blobstore::Error>((blobs, cids))
            })
        })
        .collect();

    let mut acked = Vec::new();
    for p in producers {
        let (blobs, cids) = p.await.unwrap().expect("no put fails");
        assert_eq!(cids, blobs.iter().map(|b| *b.cid()).collect::<Vec<_>>());
        acked.extend(blobs);
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) >= 16);

    // Every acknowledged blob is readable and hashes to its CID (`get` verifies).
    for blob in &acked {
        let data = store
            .get(blob.cid())
            .await
            .unwrap()
            .expect("acked blob is stored");
        assert_eq!(&data, blob.data());
    }
    let stats = store.stats();
    assert_eq!(stats.sqlite_busy, 0);
    assert_eq!(stats.storage_errors, 0);
    assert_eq!(stats.requests_failed, 0);
    assert_eq!(stats.blobs_written, 5120 + 16);
    let report = store.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.blobs_checked, 5120 + 16);
    store.close().await.unwrap();
}
