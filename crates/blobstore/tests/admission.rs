//! Fair, bounded admission: priorities, per-source fairness, deadlines, app writes,
//! coalescing and the bounded WAL.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{block_lane, jain, random_blobs, temp_store};
use seedbank_blobstore::{
    codec, rusqlite, AppError, Blob, Config, Error, GroupStats, PoolKind, Priority, PutOptions,
    Store,
};

fn opts(p: Priority, source: &str) -> PutOptions {
    PutOptions::new(p, source)
}

/// Batches committed so far.
fn batches(store: &Store) -> u64 {
    store.stats().batches
}

/// The stats of one source (detailed stats are on by default).
fn source(store: &Store, name: &str) -> GroupStats {
    store
        .stats()
        .sources
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stats for source {name}"))
}

/// The most batches any request of `name` waited, counted by the lane from the request's
/// admission (its entry into the scheduler) to its own batch, that batch not counted. This
/// is what the scheduler promises; the batches between a caller's call and its ack also
/// count the caller's own hashing and wake-ups, which a busy machine stretches.
fn most_batches_waited(store: &Store, name: &str) -> u64 {
    source(store, name).queue_wait_batches.max
}

/// Bounds a wait on the lane, so a stuck lane fails the test instead of hanging it.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("waited 30 s for {what}"))
}

/// Polls `cond` every millisecond until it holds; fails the test after 30 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_put_waits_about_one_batch_during_a_100k_background_import() {
    // Batches of 512 blobs: the import takes about two hundred of them, so it is still
    // running when the last of the 50 interactive puts is acknowledged.
    let mut config = Config::default();
    config.batch.max_blobs = 512;
    let (store, _dir, _) = temp_store(config);
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
    wait_for("the import to flow", || {
        store.stats().blobs_written >= 5_000
    })
    .await;
    let mut competed = 0;
    for (i, blob) in random_blobs(2, 50, 256).into_iter().enumerate() {
        let before = batches(&store);
        let import_queued = store.stats().classes[2].queued_requests;
        bounded(
            "an interactive put",
            store.put_with(blob, opts(Priority::Interactive, "user")),
        )
        .await
        .unwrap();
        // From its admission: the batch in progress and at most one batch owed to a lower
        // class committed before its own.
        let waited = most_batches_waited(&store, "user");
        assert!(
            waited <= 2,
            "interactive put {i} waited {waited} batches from admission to its own \
             ({} from call to ack)",
            batches(&store) - before
        );
        // The import had requests queued when this put was admitted and still has after
        // its ack: the put really competed with it (and did not just run after it).
        if import_queued > 0 && store.stats().classes[2].queued_requests > 0 {
            competed += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        competed, 50,
        "interactive puts admitted while background requests were queued"
    );
    let done = bounded("the import", import).await.unwrap().unwrap();
    assert_eq!(done.len(), 100_000);
    let stats = store.stats();
    let interactive = &stats.classes[0];
    assert_eq!(interactive.acks, 50);
    assert_eq!(interactive.queue_wait_batches.count, 50);
    assert_eq!(stats.sqlite_busy, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_waited_are_counted_from_admission_to_the_requests_own_batch() {
    // One blob fills a batch, so two puts queued together commit in two batches.
    let mut config = Config::default();
    config.batch.max_blobs = 1;
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let mut blobs = random_blobs(3, 3, 64);
    let put = |blob: Blob, name: &str| {
        let (store, o) = (store.clone(), opts(Priority::Normal, name));
        tokio::spawn(async move { store.put_with(blob, o).await })
    };
    let first = put(blobs.pop().unwrap(), "first");
    wait_for("first queued", || queued(&store, Priority::Normal) == 1).await;
    let second = put(blobs.pop().unwrap(), "second");
    wait_for("second queued", || queued(&store, Priority::Normal) == 2).await;
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    bounded("first", first).await.unwrap().unwrap();
    bounded("second", second).await.unwrap().unwrap();
    // Both were admitted while the blocker's batch was in progress: `first` waited for it,
    // `second` for it and for `first`'s.
    assert_eq!(most_batches_waited(&store, "first"), 1);
    assert_eq!(most_batches_waited(&store, "second"), 2);
    // Admitted to an idle lane: its own batch is the next, however long the caller took.
    bounded("an idle put", put(blobs.pop().unwrap(), "idle"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(most_batches_waited(&store, "idle"), 0);
    assert_eq!(store.stats().batches, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_equal_sources_get_equal_shares() {
    let config = Config {
        request_max_blobs: 16,
        ..Config::default()
    };
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
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
    wait_for("every source to queue", || {
        store.stats().classes[1].queued_requests >= 16 * 2_000 / 16
    })
    .await;
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    for t in tasks {
        bounded("a source", t).await.unwrap();
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
    // The README's figure: Jain's index ≥ 0.98 over 16 equal sources.
    assert!(index >= 0.98, "Jain's index {index:.3} over {shares:?}");
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
    wait_for("the flood to flow", || store.stats().blobs_written >= 2_000).await;
    for (i, blob) in random_blobs(8, 8, 256).into_iter().enumerate() {
        let before = batches(&store);
        bounded(
            "a trickle put",
            store.put_with(blob, opts(Priority::Normal, "trickle")),
        )
        .await
        .unwrap();
        // Same class: it joins the DRR ring at admission and is served in the batch in
        // progress or the next one, whatever the flood has queued.
        let waited = most_batches_waited(&store, "trickle");
        assert!(
            waited <= 2,
            "trickle put {i} waited {waited} batches from admission to its own \
             ({} from call to ack)",
            batches(&store) - before
        );
    }
    assert_eq!(source(&store, "trickle").queue_wait_batches.count, 8);
    assert!(
        !flood_done.load(Ordering::SeqCst),
        "the trickle finished while the flood ran"
    );
    flood.await.unwrap();
}

/// Queues `users` × `requests` interactive requests of 8 blobs (sources `{prefix}-{user}`),
/// for tests that hold the lane while they build a backlog. Blobs are made up front, so
/// the backlog does not depend on how fast producers run.
fn interactive_backlog(
    store: &Store,
    prefix: &str,
    users: u64,
    requests: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..users)
        .map(|u| {
            let store = store.clone();
            let o = opts(Priority::Interactive, &format!("{prefix}-{u}"));
            let seed = u + 1_000 * prefix.len() as u64;
            let blobs = random_blobs(seed << 16, requests * 8, 64);
            tokio::spawn(async move { store.put_many(blobs, o).await.map(drop).unwrap() })
        })
        .collect()
}

/// The most batches any request of sources `{prefix}-*` waited (see [`most_batches_waited`]).
fn most_batches_waited_by(store: &Store, prefix: &str) -> u64 {
    let prefix = format!("{prefix}-");
    store
        .stats()
        .sources
        .iter()
        .filter(|s| s.name.starts_with(&prefix))
        .map(|s| s.queue_wait_batches.max)
        .max()
        .unwrap_or_else(|| panic!("no stats for sources {prefix}*"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_makes_progress_under_sustained_interactive_load() {
    // Requests of 8 blobs, batches of at most 64 (128 with interactive riding along). A
    // backlog of 1,024 interactive requests, at most 16 a batch, keeps users waiting for 64
    // batches at least; 20 background requests (an import) are queued beside it.
    let mut config = Config {
        request_max_blobs: 8,
        ..Config::default()
    };
    config.batch.max_blobs = 64;
    let lead_every = (1.0 / config.min_class_share).ceil() as u64;
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let users = interactive_backlog(&store, "ui", 32, 32);
    wait_for("the interactive backlog to queue", || {
        queued(&store, Priority::Interactive) == 32 * 32
    })
    .await;
    // One source per background request, so the lane's count of each one's wait is its own.
    let imports: Vec<_> = random_blobs(9, 20 * 8, 64)
        .chunks(8)
        .enumerate()
        .map(|(i, blobs)| {
            let (store, blobs) = (store.clone(), blobs.to_vec());
            let o = opts(Priority::Background, &format!("bulk-{i}"));
            tokio::spawn(async move { store.put_many(blobs, o).await })
        })
        .collect();
    wait_for("the import to queue", || {
        queued(&store, Priority::Background) == 20
    })
    .await;
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    for import in imports {
        bounded("a background request", import)
            .await
            .unwrap()
            .unwrap();
    }
    for u in users {
        bounded("a user", u).await.unwrap();
    }
    // Batches each background request waited from its admission (all were admitted while
    // the blocker's batch held the lane), fewest first.
    let mut waits: Vec<u64> = (0..20)
        .map(|i| most_batches_waited(&store, &format!("bulk-{i}")))
        .collect();
    waits.sort_unstable();
    // Users' work goes first: the first background request waited for interactive batches
    // until its share was due ...
    assert!(
        waits[0] + 1 >= lead_every,
        "background went first under interactive load: waits {waits:?}"
    );
    // ... and Background led at least one batch in `lead_every` while users waited: by
    // `j × lead_every` batches, `j` of its requests at least were committed.
    for (j, &w) in waits.iter().enumerate() {
        assert!(
            w <= (j as u64 + 1) * lead_every,
            "background request {j} (fewest first) waited {w} batches: waits {waits:?}"
        );
    }
    // The users' backlog outlasted the import: it progressed under load, not after it.
    let users_waited = most_batches_waited_by(&store, "ui");
    assert!(
        users_waited > waits[19],
        "the last user request waited {users_waited} batches, the import {waits:?}"
    );
    let stats = store.stats();
    assert_eq!(stats.classes[0].acks, 1 + 32 * 32);
    assert_eq!(stats.classes[2].acks, 20);
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
    // Batches close only when the queue runs dry (no time budget within reach), so the 20
    // writes queued behind the blocker share one batch however slow the machine is.
    let mut config = Config::default();
    config.batch.max_hold = Duration::from_secs(60);
    config.batch.max_hold_bulk = Duration::from_secs(60);
    let (store, _dir, _) = temp_store(config);
    store
        .write(PutOptions::default(), create_peers_table)
        .await
        .unwrap();
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
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
    wait_for("20 queued normal requests", || {
        store.stats().classes[1].queued_requests >= 20
    })
    .await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    for (i, w) in writes.into_iter().enumerate() {
        match w.await.unwrap() {
            Ok(v) => assert_eq!(v, i),
            Err(Error::App(e)) => assert_eq!((i, e.to_string().as_str()), (7, "peer 7 is bad")),
            Err(e) => panic!("write {i}: {e}"),
        }
    }
    // All 20 were admitted while the blocker's batch held the lane, and the 19 acked ran
    // in the one batch after it, beside the failing one.
    let peers = source(&store, "peers");
    assert_eq!(peers.queue_wait_batches.count, 19);
    assert_eq!(
        (peers.queue_wait_batches.p50, peers.queue_wait_batches.max),
        (1, 1),
        "{:?}",
        peers.queue_wait_batches
    );
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
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
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
        bounded("the write to queue", async {
            while store.stats().coalesced + store.stats().classes[2].queued_requests < seen as u64 {
                tokio::task::yield_now().await;
            }
        })
        .await;
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

/// Spawns an app write that appends `label` to `log` when the lane runs it.
fn logged_write(
    store: &Store,
    o: PutOptions,
    log: &Arc<std::sync::Mutex<Vec<String>>>,
    label: &str,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    let (store, log, label) = (store.clone(), log.clone(), label.to_string());
    tokio::spawn(async move {
        store
            .write(o, move |_| {
                log.lock().unwrap().push(label);
                Ok(())
            })
            .await
    })
}

/// Requests queued in `class`.
fn queued(store: &Store, class: Priority) -> u64 {
    store.stats().classes[class as usize].queued_requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_stays_in_its_class_and_the_newer_write_keeps_the_older_ones_place() {
    let (store, _dir, _) = temp_store(Config::default());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let bg = |source: &str| opts(Priority::Background, source);
    // Source `a` queues a keyed write, then source `b` three plain ones.
    let older = logged_write(&store, bg("a").coalesce("peer:k"), &log, "a:old");
    wait_for("a:old queued", || queued(&store, Priority::Background) == 1).await;
    let mut plain = Vec::new();
    for i in 1..=3 {
        plain.push(logged_write(&store, bg("b"), &log, &format!("b:{i}")));
        wait_for("b queued", || queued(&store, Priority::Background) == 1 + i).await;
    }
    // The same key in another class is another write: both run.
    let normal = logged_write(
        &store,
        opts(Priority::Normal, "n").coalesce("peer:k"),
        &log,
        "normal",
    );
    wait_for("normal queued", || queued(&store, Priority::Normal) == 1).await;
    assert_eq!(store.stats().coalesced, 0, "no coalescing across classes");
    // Source `c` writes the key again in Background: it replaces `a`'s write, in `a`'s place.
    let newer = logged_write(&store, bg("c").coalesce("peer:k"), &log, "c:new");
    wait_for("c:new coalesced", || store.stats().coalesced == 1).await;
    assert_eq!(queued(&store, Priority::Background), 4);

    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    let older = bounded("a:old", older).await.unwrap();
    assert!(matches!(older, Err(Error::Superseded)), "{older:?}");
    bounded("c:new", newer).await.unwrap().unwrap();
    bounded("normal", normal).await.unwrap().unwrap();
    for p in plain {
        bounded("b", p).await.unwrap().unwrap();
    }
    // Normal first (higher class); then `a`'s turn, taken by `c`'s write, before `b`'s.
    assert_eq!(
        *log.lock().unwrap(),
        ["normal", "c:new", "b:1", "b:2", "b:3"],
        "run order"
    );
    let stats = store.stats();
    assert_eq!(stats.classes[2].coalesced, 1);
    assert_eq!(stats.classes[1].coalesced, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_write_is_never_superseded() {
    let (store, _dir, _) = temp_store(Config::default());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let key = || opts(Priority::Background, "connects").coalesce("peer:k");
    // The first keyed write runs on the lane and holds it until released.
    let (started, running) = tokio::sync::oneshot::channel();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let first = {
        let (store, log, o) = (store.clone(), log.clone(), key());
        tokio::spawn(async move {
            store
                .write(o, move |_| {
                    let _ = started.send(());
                    let _ = wait.recv();
                    log.lock().unwrap().push("first".to_string());
                    Ok(())
                })
                .await
        })
    };
    bounded("the first write to run", running).await.unwrap();
    // Two more with the same key while it runs: the third replaces the second (queued),
    // neither touches the first (running).
    let second = logged_write(&store, key(), &log, "second");
    wait_for("second queued", || {
        queued(&store, Priority::Background) == 1
    })
    .await;
    let third = logged_write(&store, key(), &log, "third");
    wait_for("third coalesced", || store.stats().coalesced == 1).await;
    release.send(()).unwrap();
    bounded("first", first).await.unwrap().unwrap();
    let second = bounded("second", second).await.unwrap();
    assert!(matches!(second, Err(Error::Superseded)), "{second:?}");
    bounded("third", third).await.unwrap().unwrap();
    assert_eq!(*log.lock().unwrap(), ["first", "third"]);
    assert_eq!(store.stats().coalesced, 1);
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

/// A config whose batches are bounded only by time: blob and byte budgets out of reach, and
/// room to queue a whole [`bulk_load`] at once.
fn time_bound_config() -> Config {
    let mut config = Config {
        request_max_blobs: 16,
        ..Config::default()
    };
    config.queue.max_requests = 100_000;
    config.batch.max_blobs = 10_000_000;
    config.batch.max_bytes = 1 << 40;
    config.batch.max_hold = Duration::from_millis(10);
    config.batch.max_hold_bulk = Duration::from_millis(150);
    config
}

/// A deep Background queue: four producers importing `each` small blobs (generated up
/// front, so the queue never waits on them). Abort the tasks to cancel what is left.
fn bulk_load(store: &Store, each: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4u64)
        .map(|i| {
            let blobs = random_blobs(1_000 + i, each, 16);
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_many(blobs, opts(Priority::Background, &format!("bulk-{i}")))
                    .await
                    .unwrap();
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_batches_fill_to_max_hold_bulk_and_close_by_it() {
    let config = time_bound_config();
    let bulk_hold = config.batch.max_hold_bulk.as_micros() as u64;
    let (store, _dir, _) = temp_store(config);
    let load = bulk_load(&store, 60_000);
    wait_for("eight bulk batches", || store.stats().batches >= 8).await;
    let stats = store.stats();
    for l in &load {
        l.abort();
    }
    // The queue was still deep: these batches were closed by time, not by running dry.
    assert!(stats.classes[2].queued_requests > 100, "{stats}");
    // With no blob or byte budget in reach, the hold time is what closes a batch: they fill
    // to about `max_hold_bulk` and no further. (Unbounded, one batch would hold the lane
    // for the whole queue, seconds; the margins allow for a slow fsync on a busy machine.)
    let hold = stats.batch_hold_us;
    assert!(hold.p50 >= bulk_hold / 2, "batch hold µs {hold:?}");
    assert!(hold.p90 <= 3 * bulk_hold, "batch hold µs {hold:?}");
    assert!(hold.max <= 6 * bulk_hold, "batch hold µs {hold:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_interactive_work_closes_batches_within_max_hold() {
    let mut config = time_bound_config();
    // A bulk hold far above the short one, so that scheduling noise on a busy machine
    // cannot blur which of the two closed the batches.
    config.batch.max_hold_bulk = Duration::from_secs(1);
    // A waiting lower class leads every batch and fills it first: users never lead, and
    // only `max_hold` can close a batch they wait on.
    config.min_class_share = 1.0;
    let (hold_ms, bulk_ms) = (
        config.batch.max_hold.as_millis() as u64,
        config.batch.max_hold_bulk.as_millis() as u64,
    );
    let (store, _dir, _) = temp_store(config);
    // Users keep interactive work coming: four putting a blob at a time, four more with
    // four requests each in flight.
    let stop = Arc::new(AtomicBool::new(false));
    let users: Vec<_> = (0..8u64)
        .map(|i| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let n = if i < 4 { 1 } else { 64 };
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let blobs = random_blobs(7_000 + (i << 32 | round), n, 64);
                    store
                        .put_many(blobs, opts(Priority::Interactive, &format!("user-{i}")))
                        .await
                        .unwrap();
                    round += 1;
                }
            })
        })
        .collect();
    wait_for("the users to flow", || store.stats().batches >= 10).await;
    // Bulk work whose requests are slow (an app write standing for heavy SQL), so that no
    // budget but time closes a batch it leads.
    let load: Vec<_> = (0..3_000u64)
        .map(|i| {
            let store = store.clone();
            let o = opts(Priority::Background, &format!("bulk-{}", i % 4));
            tokio::spawn(async move {
                let _ = store
                    .write(o, |_| {
                        std::thread::sleep(Duration::from_millis(2));
                        Ok(())
                    })
                    .await;
            })
        })
        .collect();
    wait_for("the bulk load to queue", || {
        queued(&store, Priority::Background) > 1_000
    })
    .await;
    let background_before = store.stats().classes[2].acks;
    wait_for("sixty batches", || store.stats().batches >= 60).await;
    let stats = store.stats();
    stop.store(true, Ordering::Relaxed);
    for u in users {
        bounded("a user", u).await.unwrap();
    }
    for l in &load {
        l.abort();
    }
    // Batches close by `max_hold` while a user waits, far below `max_hold_bulk`, so a user
    // waits about one short batch. (The margin allows for a slow fsync and a busy CI box.
    // Batch holds themselves also count time before any user came back, so the guarantee
    // shows in what users waited.)
    let wait = stats.classes[0].queue_wait_us;
    let limit = (hold_ms + 400) * 1_000;
    assert!(limit < bulk_ms * 1_000 / 2);
    assert!(
        wait.p99 <= limit,
        "interactive queue wait µs {wait:?}, limit {limit}"
    );
    // ... while Background led them with a deep queue (so time, not its queue running dry,
    // closed them).
    assert!(stats.classes[2].acks > background_before, "Background led");
    assert!(
        stats.classes[2].queued_requests > 100,
        "the bulk load ran throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_background_request_leads_a_batch_within_its_min_share() {
    let mut config = Config {
        request_max_blobs: 8,
        ..Config::default()
    };
    config.batch.max_blobs = 32;
    // min_class_share 0.1: a waiting lower class leads at least one batch in ten.
    let lead_every = (1.0 / config.min_class_share).ceil() as u64;
    let (store, _dir, _) = temp_store(config);
    for round in 0..3 {
        // Behind the held lane: 200 interactive requests (at most 8 a batch: 25 batches of
        // users waiting at least), then one background write of a source of its own.
        let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
        let prefix = format!("ui{round}");
        let users = interactive_backlog(&store, &prefix, 8, 25);
        wait_for("the interactive backlog to queue", || {
            queued(&store, Priority::Interactive) == 200
        })
        .await;
        let name = format!("bulk-{round}");
        let write = {
            let s = store.clone();
            let o = opts(Priority::Background, &name);
            tokio::spawn(async move { s.write(o, |_| Ok(())).await })
        };
        wait_for("the background write to queue", || {
            queued(&store, Priority::Background) == 1
        })
        .await;
        release.send(()).unwrap();
        bounded("the blocker", blocker).await.unwrap().unwrap();
        bounded("a background write under interactive load", write)
            .await
            .unwrap()
            .unwrap();
        for u in users {
            bounded("a user", u).await.unwrap();
        }
        // From its admission: the blocker's batch in progress, then `lead_every - 1`
        // interactive-led ones; the next is its own. Users' work went first until then.
        let waited = most_batches_waited(&store, &name);
        assert!(
            waited <= lead_every,
            "background write {round} waited {waited} batches"
        );
        assert!(
            waited + 1 >= lead_every,
            "background write {round} led after {waited} batches, before its share was due"
        );
        // Users were still waiting when it ran: it led under load.
        let users_waited = most_batches_waited_by(&store, &prefix);
        assert!(
            users_waited > waited,
            "round {round}: users waited {users_waited} batches at most, the write {waited}"
        );
    }
}
