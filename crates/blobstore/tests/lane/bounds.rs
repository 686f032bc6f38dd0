//! Bounded admission: an overloaded queue refuses whole requests, a dropped put writes
//! nothing, the WAL stays under its cap, a failing request aborts its batch, a class queue
//! at its byte bound makes the next request wait.

use crate::common::{block_lane, random_blobs, temp_store};
use seedbank_blobstore::{
    codec, rusqlite, AppError, Blob, Config, Error, PoolKind, Priority, PutOptions, Store,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_queue_returns_overloaded_and_stores_nothing_of_that_request() {
    let mut config = Config::default();
    config.queue.max_requests = 2;
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let fillers: Vec<_> = random_blobs(20, 2, 100)
        .into_iter()
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { store.put_with(b, opts(Priority::Normal, "fill")).await })
        })
        .collect();
    wait_for("2 queued normal requests", || {
        store.stats().classes[1].queued_requests >= 2
    })
    .await;
    let late = Blob::new(codec::RAW, &b"no room for me"[..]);
    let o = opts(Priority::Normal, "late").timeout(Duration::from_millis(50));
    let err = store.put_with(late.clone(), o).await.unwrap_err();
    assert!(matches!(err, Error::Overloaded), "{err}");
    // Other classes have their own bounds: an interactive put is still admitted.
    let urgent = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .put_with(
                    Blob::new(codec::RAW, &b"urgent"[..]),
                    opts(Priority::Interactive, "ui"),
                )
                .await
        })
    };
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    urgent.await.unwrap().unwrap();
    for f in fillers {
        f.await.unwrap().unwrap();
    }
    assert!(!store.has(late.cid()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_put_that_has_not_started_writes_nothing() {
    let (store, _dir, _) = temp_store(Config::default());
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let blobs = random_blobs(30, 300, 100);
    let cids: Vec<_> = blobs.iter().map(|b| *b.cid()).collect();
    let put = {
        let store = store.clone();
        tokio::spawn(async move { store.put_many(blobs, PutOptions::default()).await })
    };
    wait_for("3 queued normal requests", || {
        store.stats().classes[1].queued_requests >= 3
    })
    .await;
    put.abort();
    let _ = put.await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    store
        .put(Blob::new(codec::RAW, &b"after"[..]))
        .await
        .unwrap();
    assert_eq!(store.has_many(&cids).await.unwrap(), vec![false; 300]);
    assert_eq!(store.stats().requests_cancelled, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_stays_under_its_cap_through_a_gigabyte_of_ingest_with_a_long_reader() {
    let config = Config {
        wal_cap_bytes: 32 * 1024 * 1024,
        synchronous: seedbank_blobstore::Synchronous::Normal,
        ..Config::default()
    };
    let bound = config.wal_bound_bytes();
    let (store, _dir, _) = temp_store(config);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut long_reads = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .read(PoolKind::Data, |conn| {
                        let tx = conn.unchecked_transaction()?;
                        let _: i64 =
                            tx.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
                        std::thread::sleep(Duration::from_millis(30)); // a long snapshot
                        let _: i64 =
                            tx.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
                        Ok(())
                    })
                    .await
                    .unwrap();
                long_reads += 1;
            }
            long_reads
        })
    };
    let mut total = 0u64;
    let chunk = 1024 * 1024 - 64;
    for round in 0..16u64 {
        // 64 × ~1 MiB per round: 1 GiB in all, made per round to keep test memory small.
        let blobs: Vec<Blob> = (0..64u64)
            .map(|i| {
                let mut data = vec![0u8; chunk];
                data[..8].copy_from_slice(&(round * 64 + i).to_le_bytes());
                Blob::new(codec::RAW, data)
            })
            .collect();
        total += (blobs.len() * chunk) as u64;
        store
            .put_many(blobs, opts(Priority::Background, "import"))
            .await
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 3);
    let stats = store.stats();
    assert!(total >= 1_000_000_000);
    assert_eq!(stats.sqlite_busy, 0);
    assert!(stats.wal.truncate > 0, "the cap was reached and handled");
    assert!(
        stats.wal.peak_bytes <= bound,
        "WAL peak {} > {bound}: {:?}",
        stats.wal.peak_bytes,
        stats.wal
    );
}

/// A staged op that always fails, standing in for a storage fault in an index write.
struct FailingOp;

impl seedbank_blobstore::StagedOp for FailingOp {
    fn apply(
        self: Box<Self>,
        _conn: &rusqlite::Connection,
        _blob: &Blob,
        _inserted: bool,
    ) -> Result<(), AppError> {
        Err("disk on fire".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_blob_request_aborts_its_batch_and_nothing_of_it_commits() {
    use seedbank_blobstore::StagedBlob;
    let (store, _dir, _) = temp_store(Config::default());
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let good = random_blobs(40, 3, 100);
    let bad = Blob::new(codec::RAW, &b"staged with a failing op"[..]);
    let good_put = {
        let (store, good) = (store.clone(), good.clone());
        tokio::spawn(async move { store.put_many(good, PutOptions::default()).await })
    };
    wait_for("1 queued normal requests", || {
        store.stats().classes[1].queued_requests >= 1
    })
    .await;
    let bad_put = {
        let (store, bad) = (store.clone(), bad.clone());
        let staged = vec![StagedBlob {
            blob: bad,
            op: Some(Box::new(FailingOp)),
        }];
        tokio::spawn(async move { store.put_staged(staged, PutOptions::default()).await })
    };
    wait_for("2 queued normal requests", || {
        store.stats().classes[1].queued_requests >= 2
    })
    .await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    // Both were queued behind the blocker, so they share the next batch.
    let bad_err = bad_put.await.unwrap().unwrap_err();
    assert!(matches!(bad_err, Error::App(_)), "{bad_err}");
    let good_err = good_put.await.unwrap().unwrap_err();
    assert!(
        matches!(good_err, Error::Storage { op: "batch", .. }),
        "{good_err}"
    );
    let cids: Vec<_> = good.iter().chain([&bad]).map(|b| *b.cid()).collect();
    assert_eq!(store.has_many(&cids).await.unwrap(), vec![false; 4]);
    // The lane carries on: a retry of the good request commits.
    store.put_many(good, PutOptions::default()).await.unwrap();
    assert_eq!(store.has_many(&cids[..3]).await.unwrap(), vec![true; 3]);
    assert_eq!(store.stats().sqlite_busy, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_queue_at_its_byte_bound_makes_the_next_request_wait() {
    let mut config = Config::default();
    config.queue.max_bytes = 64 * 1024;
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let class = |s: &Store, p: Priority| {
        let c = &s.stats().classes[p as usize];
        (c.queued_requests, c.queued_bytes)
    };
    // Four 16 KiB puts fill Normal's 64 KiB exactly (4 of its 4,096 request slots).
    let fill: Vec<_> = random_blobs(60, 4, 16 * 1024)
        .into_iter()
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { store.put_with(b, opts(Priority::Normal, "fill")).await })
        })
        .collect();
    wait_for("the queue to fill", || {
        class(&store, Priority::Normal) == (4, 64 * 1024)
    })
    .await;
    // With a deadline: `Overloaded`, nothing queued.
    let mut small = random_blobs(61, 3, 1024);
    let late = small.pop().unwrap();
    let o = opts(Priority::Normal, "late").timeout(Duration::from_millis(100));
    let err = bounded("a put with a deadline", store.put_with(late.clone(), o))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Overloaded), "{err}");
    // Without: it waits for room; the queue does not grow past its bound meanwhile.
    let waiting = small.pop().unwrap();
    let waiter = {
        let (store, b) = (store.clone(), waiting.clone());
        tokio::spawn(async move { store.put_with(b, opts(Priority::Normal, "waiter")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        class(&store, Priority::Normal),
        (4, 64 * 1024),
        "queue grew"
    );
    // The bound is per class: Background still admits its own bytes.
    let other = small.pop().unwrap();
    let bulk = {
        let (store, b) = (store.clone(), other.clone());
        tokio::spawn(async move { store.put_with(b, opts(Priority::Background, "bulk")).await })
    };
    wait_for("background admitted", || {
        class(&store, Priority::Background) == (1, 1024)
    })
    .await;
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    for f in fill {
        bounded("a filler", f).await.unwrap().unwrap();
    }
    bounded("the waiter", waiter).await.unwrap().unwrap();
    bounded("background", bulk).await.unwrap().unwrap();
    let cids = [*late.cid(), *waiting.cid(), *other.cid()];
    assert_eq!(
        store.has_many(&cids).await.unwrap(),
        [false, true, true],
        "(overloaded, waited, other class)"
    );
}
