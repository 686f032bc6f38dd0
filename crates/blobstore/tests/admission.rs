//! Fair, bounded admission: priorities, per-source fairness, deadlines, app writes,
//! coalescing and the bounded WAL.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{block_lane, jain, random_blobs, temp_store};
use seedbank_blobstore::{
    codec, rusqlite, AppError, Blob, Config, Error, PoolKind, Priority, PutOptions, Store,
};

fn opts(p: Priority, source: &str) -> PutOptions {
    PutOptions::new(p, source)
}

/// Batches committed so far.
fn batches(store: &Store) -> u64 {
    store.stats().batches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_put_waits_about_one_batch_during_a_100k_background_import() {
    let (store, _dir, _) = temp_store(Config::default());
    let import = {
        let store = store.clone();
        let blobs = random_blobs(1, 100_000, 64);
        tokio::spawn(async move {
            store
                .put_many(blobs, opts(Priority::Background, "import"))
                .await
        })
    };
    // Wait until the import is really flowing.
    while store.stats().blobs_written < 5_000 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut worst = 0;
    for (i, blob) in random_blobs(2, 50, 256).into_iter().enumerate() {
        let before = batches(&store);
        store
            .put_with(blob, opts(Priority::Interactive, "user"))
            .await
            .unwrap();
        // The batch in progress, at most one batch owed to a lower class, then its own.
        let waited = batches(&store) - before;
        worst = worst.max(waited);
        assert!(waited <= 3, "interactive put {i} waited {waited} batches");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let done = import.await.unwrap().unwrap();
    assert_eq!(done.len(), 100_000);
    let stats = store.stats();
    let interactive = &stats.classes[0];
    assert_eq!(interactive.acks, 50);
    assert_eq!(stats.sqlite_busy, 0);
    assert!(worst >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_equal_sources_get_equal_shares() {
    let config = Config {
        request_max_blobs: 16,
        ..Config::default()
    };
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = block_lane(&store).await;
    let first_done = Arc::new(AtomicBool::new(false));
    let snapshot = Arc::new(std::sync::Mutex::new(None));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, first_done, snapshot) =
                (store.clone(), first_done.clone(), snapshot.clone());
            let blobs = random_blobs(100 + i, 2_000, 512);
            tokio::spawn(async move {
                store
                    .put_many(blobs, opts(Priority::Normal, &format!("peer-{i}")))
                    .await
                    .unwrap();
                if !first_done.swap(true, Ordering::SeqCst) {
                    *snapshot.lock().unwrap() = Some(store.stats());
                }
            })
        })
        .collect();
    // Let every source queue its work, then open the lane.
    while store.stats().classes[1].queued_requests < 16 * 2_000 / 16 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    // Shares while all 16 were competing: when the first finished.
    let stats = snapshot.lock().unwrap().take().unwrap();
    let shares: Vec<f64> = stats
        .sources
        .iter()
        .filter(|s| s.name.starts_with("peer-"))
        .map(|s| s.blobs as f64)
        .collect();
    assert_eq!(shares.len(), 16);
    let index = jain(&shares);
    assert!(index >= 0.95, "Jain's index {index:.3} over {shares:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_cannot_starve_a_trickling_one() {
    let (store, _dir, _) = temp_store(Config::default());
    let flood_done = Arc::new(AtomicBool::new(false));
    let flood = {
        let (store, flood_done) = (store.clone(), flood_done.clone());
        let blobs = random_blobs(7, 100_000, 128);
        tokio::spawn(async move {
            store
                .put_many(blobs, opts(Priority::Normal, "flood"))
                .await
                .unwrap();
            flood_done.store(true, Ordering::SeqCst);
        })
    };
    while store.stats().blobs_written < 2_000 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for blob in random_blobs(8, 8, 256) {
        let before = batches(&store);
        store
            .put_with(blob, opts(Priority::Normal, "trickle"))
            .await
            .unwrap();
        let waited = batches(&store) - before;
        // Same class: it joins the DRR ring and is served within the next batch or two.
        assert!(waited <= 3, "trickle put waited {waited} batches");
    }
    assert!(
        !flood_done.load(Ordering::SeqCst),
        "the trickle finished while the flood ran"
    );
    flood.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_makes_progress_under_sustained_interactive_load() {
    let (store, _dir, _) = temp_store(Config::default());
    let stop = Arc::new(AtomicBool::new(false));
    let interactive: Vec<_> = (0..32u64)
        .map(|i| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let blobs = random_blobs(i << 32 | round, 8, 1024);
                    store
                        .put_many(blobs, opts(Priority::Interactive, "ui"))
                        .await
                        .unwrap();
                    round += 1;
                }
            })
        })
        .collect();
    while store.stats().blobs_written < 2_000 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let interactive_before = store.stats().classes[0].blobs;
    let background = random_blobs(9, 5_000, 1024);
    store
        .put_many(background, opts(Priority::Background, "bulk"))
        .await
        .unwrap();
    let stats = store.stats();
    stop.store(true, Ordering::Relaxed);
    for t in interactive {
        t.await.unwrap();
    }
    // The interactive load kept flowing the whole time the background import ran.
    assert!(stats.classes[0].blobs > interactive_before + 1_000);
    assert_eq!(stats.classes[2].blobs, 5_000);
}

/// A store whose app table `peers` exists (created through the lane, as an app would).
async fn store_with_peers_table() -> (Store, tempfile::TempDir) {
    let (store, dir, _) = temp_store(Config::default());
    store
        .write(PutOptions::default(), create_peers_table)
        .await
        .unwrap();
    (store, dir)
}

fn create_peers_table(conn: &rusqlite::Connection) -> Result<(), AppError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS peers (id TEXT PRIMARY KEY, seen INTEGER)")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_closure_does_not_fail_the_others_in_its_batch() {
    let (store, _dir) = store_with_peers_table().await;
    let (blocker, release) = block_lane(&store).await;
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(opts(Priority::Normal, "peers"), move |conn| {
                        conn.execute(
                            "INSERT INTO peers (id, seen) VALUES (?1, ?2)",
                            (format!("p{i}"), i),
                        )?;
                        if i == 7 {
                            return Err("peer 7 is bad".into());
                        }
                        Ok(i)
                    })
                    .await
            })
        })
        .collect();
    while store.stats().classes[1].queued_requests < 20 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let batches_before = batches(&store);
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    for (i, w) in writes.into_iter().enumerate() {
        match w.await.unwrap() {
            Ok(v) => assert_eq!(v, i),
            Err(Error::App(e)) => assert_eq!((i, e.to_string().as_str()), (7, "peer 7 is bad")),
            Err(e) => panic!("write {i}: {e}"),
        }
    }
    // All 20 ran in the blocker's batch or the next one.
    assert!(batches(&store) - batches_before <= 2);
    let rows: i64 = store
        .read(PoolKind::Data, |conn| {
            Ok(conn.query_row("SELECT count(*) FROM peers", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert_eq!(rows, 19, "only the failing closure was rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_writes_keep_only_the_newest_value() {
    let (store, _dir) = store_with_peers_table().await;
    let (blocker, release) = block_lane(&store).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut writes = Vec::new();
    for seen in 1..=1000i64 {
        let (s, runs) = (store.clone(), runs.clone());
        let o = opts(Priority::Background, "connects").coalesce("peer:alice");
        writes.push(tokio::spawn(async move {
            s.write(o, move |conn| {
                runs.fetch_add(1, Ordering::SeqCst);
                conn.execute(
                    "INSERT INTO peers (id, seen) VALUES ('alice', ?1)
                         ON CONFLICT (id) DO UPDATE SET seen = excluded.seen",
                    [seen],
                )?;
                Ok(())
            })
            .await
        }));
        // Submit in order so "newest" is well defined.
        while store.stats().coalesced + store.stats().classes[2].queued_requests < seen as u64 {
            tokio::task::yield_now().await;
        }
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let (mut ok, mut superseded) = (0, 0);
    for w in writes {
        match w.await.unwrap() {
            Ok(()) => ok += 1,
            Err(Error::Superseded) => superseded += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, superseded), (1, 999));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "1,000 connects became one row update"
    );
    let seen: i64 = store
        .read(PoolKind::Info, |conn| {
            Ok(
                conn.query_row("SELECT seen FROM peers WHERE id = 'alice'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(seen, 1000);
    assert_eq!(store.stats().coalesced, 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_queue_returns_overloaded_and_stores_nothing_of_that_request() {
    let mut config = Config::default();
    config.queue.max_requests = 2;
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = block_lane(&store).await;
    let fillers: Vec<_> = random_blobs(20, 2, 100)
        .into_iter()
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { store.put_with(b, opts(Priority::Normal, "fill")).await })
        })
        .collect();
    while store.stats().classes[1].queued_requests < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
    let (blocker, release) = block_lane(&store).await;
    let blobs = random_blobs(30, 300, 100);
    let cids: Vec<_> = blobs.iter().map(|b| *b.cid()).collect();
    let put = {
        let store = store.clone();
        tokio::spawn(async move { store.put_many(blobs, PutOptions::default()).await })
    };
    while store.stats().classes[1].queued_requests < 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
    let (blocker, release) = block_lane(&store).await;
    let good = random_blobs(40, 3, 100);
    let bad = Blob::new(codec::RAW, &b"staged with a failing op"[..]);
    let good_put = {
        let (store, good) = (store.clone(), good.clone());
        tokio::spawn(async move { store.put_many(good, PutOptions::default()).await })
    };
    while store.stats().classes[1].queued_requests < 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let bad_put = {
        let (store, bad) = (store.clone(), bad.clone());
        let staged = vec![StagedBlob {
            blob: bad,
            op: Some(Box::new(FailingOp)),
        }];
        tokio::spawn(async move { store.put_staged(staged, PutOptions::default()).await })
    };
    while store.stats().classes[1].queued_requests < 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
