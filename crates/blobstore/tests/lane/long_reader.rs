//! Long readers cannot stall writers or other readers: an app read that holds its snapshot
//! past the reader transaction limit while the WAL needs rewinding is ended with
//! `Error::ReadExpired`, ingest carries on with the WAL under its bound, and other reads
//! never queue behind the checkpoint. A library scan (`Store::scan`) is never ended: the
//! lane writes on past the cap instead of stalling, and the WAL is rewound once it ends.
//! (Speed with an 8 s reader is measured by `cargo run --release -p seedbank-blobstore
//! --example long_reader`, not here.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{random_blobs, temp_store};
use seedbank_blobstore::{Config, Error, PoolKind, PutOptions, Store, Synchronous};

fn config() -> Config {
    Config {
        wal_cap_bytes: 8 * 1024 * 1024,
        checkpoint_max_wait: Duration::from_millis(200),
        synchronous: Synchronous::Normal,
        ..Config::default()
    }
}

/// Ingests `rounds` × 256 blobs of 4 KiB; returns the CIDs acknowledged.
async fn ingest(store: &Store, seed: u64, rounds: u64) -> Vec<cid::Cid> {
    let mut acked = Vec::new();
    for r in 0..rounds {
        let blobs = random_blobs(seed * 1_000_000 + r, 256, 4096);
        acked.extend(store.put_many(blobs, PutOptions::default()).await.unwrap());
    }
    acked
}

/// Holds one snapshot (a transaction with a statement every 5 ms) until `done` is set or
/// `most` passes, setting `holding` once the snapshot is taken; returns the statements run.
fn hold_snapshot(
    conn: &rusqlite::Connection,
    holding: &AtomicBool,
    done: &AtomicBool,
    most: Duration,
) -> rusqlite::Result<u64> {
    let tx = conn.unchecked_transaction()?;
    let start = Instant::now();
    let mut statements = 0;
    while !done.load(Relaxed) && start.elapsed() < most {
        let _: i64 = tx.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
        holding.store(true, Relaxed);
        statements += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(statements)
}

/// Waits (bounded) until the long read holds its snapshot, so ingest starts under it.
async fn until_holding(holding: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !holding.load(Relaxed) {
        assert!(Instant::now() < deadline, "the long read never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_read_past_the_limit_is_ended_and_ingest_and_reads_carry_on() {
    let config = config();
    let bound = config.wal_bound_bytes();
    let (store, _dir, _) = temp_store(config.clone());
    let early = ingest(&store, 1, 1).await;
    let done = Arc::new(AtomicBool::new(false));
    let holding = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done, holding) = (store.clone(), done.clone(), holding.clone());
        tokio::spawn(async move {
            store
                .read(PoolKind::Data, move |conn| {
                    Ok(hold_snapshot(
                        conn,
                        &holding,
                        &done,
                        Duration::from_secs(30),
                    )?)
                })
                .await
        })
    };
    until_holding(&holding).await;
    // Other reads while the long one runs: bytes (data pool) and metadata (info pool).
    let gets = Arc::new(AtomicU64::new(0));
    let getter = {
        let (store, done, gets, cid) = (store.clone(), done.clone(), gets.clone(), early[0]);
        tokio::spawn(async move {
            while !done.load(Relaxed) {
                assert!(store.get(&cid).await.unwrap().is_some());
                assert!(store.info(&cid).await.unwrap().is_some());
                gets.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // 6 × the cap while the snapshot is held: the WAL must be rewound under it.
    let acked = tokio::time::timeout(Duration::from_secs(60), ingest(&store, 2, 48))
        .await
        .expect("ingest stalled behind the long reader");
    let read = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the long read was not ended")
        .unwrap();
    done.store(true, Relaxed);
    getter.await.unwrap();
    assert!(
        matches!(read, Err(Error::ReadExpired { limit }) if limit == config.checkpoint_max_wait),
        "{read:?} {:?}",
        store.stats().wal
    );
    let stats = store.stats();
    assert_eq!(stats.reads_expired, 1);
    assert!(gets.load(Relaxed) > 0);
    assert_eq!(stats.sqlite_busy, 0);
    assert!(
        stats.wal.peak_bytes <= bound,
        "WAL peak {} > bound {bound}: {:?}",
        stats.wal.peak_bytes,
        stats.wal
    );
    // The connection the expired read used was rolled back and serves reads again.
    for _ in 0..4 {
        let n: i64 = store
            .read(PoolKind::Data, |conn| {
                Ok(conn.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(n as usize, early.len() + acked.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_app_read_is_never_ended() {
    let (store, _dir, _) = temp_store(config());
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (store, done) = (store.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !done.load(Relaxed) {
                // Snapshots of ~20 ms, well under the 200 ms limit.
                let n = store
                    .read(PoolKind::Data, |conn| {
                        let tx = conn.unchecked_transaction()?;
                        let a: i64 =
                            tx.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
                        std::thread::sleep(Duration::from_millis(20));
                        let b: i64 =
                            tx.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
                        assert_eq!(a, b, "one snapshot");
                        Ok(a)
                    })
                    .await
                    .unwrap();
                assert!(n >= 0);
                reads += 1;
            }
            reads
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), ingest(&store, 3, 48))
        .await
        .expect("ingest stalled");
    done.store(true, Relaxed);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    let stats = store.stats();
    assert_eq!(stats.reads_expired, 0);
    assert!(
        stats.wal.rewind + stats.wal.truncate > 0,
        "the WAL was rewound under the readers: {:?}",
        stats.wal
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_scan_is_not_ended_and_the_lane_writes_on_past_it() {
    let config = config();
    let (store, _dir, _) = temp_store(config.clone());
    ingest(&store, 4, 1).await;
    let done = Arc::new(AtomicBool::new(false));
    let holding = Arc::new(AtomicBool::new(false));
    let scan = {
        let (store, done, holding) = (store.clone(), done.clone(), holding.clone());
        tokio::spawn(async move {
            store
                // Held until released below: it must outlast the ingest (bounded at 60 s)
                // however slow the machine.
                .scan(PoolKind::Data, move |conn| {
                    Ok(hold_snapshot(
                        conn,
                        &holding,
                        &done,
                        Duration::from_secs(90),
                    )?)
                })
                .await
        })
    };
    until_holding(&holding).await;
    let waits_before = store.stats().wal.lane_waits;
    // 4 × the cap under the scan's snapshot: the lane may not wait batch after batch for
    // a TRUNCATE that cannot finish.
    let acked = tokio::time::timeout(Duration::from_secs(60), ingest(&store, 5, 32))
        .await
        .expect("ingest stalled behind a scan");
    let wal = store.stats().wal;
    done.store(true, Relaxed);
    assert!(
        wal.bytes > config.wal_cap_bytes,
        "the scan pinned the WAL: {wal:?}"
    );
    assert!(
        wal.lane_waits - waits_before <= 2,
        "the lane waited per batch: {wal:?}"
    );
    let statements = scan.await.unwrap().expect("a scan is never ended");
    assert!(statements > 0);
    assert_eq!(store.stats().reads_expired, 0);
    // Once the scan is gone, the next writes bring the WAL back under its bound.
    ingest(&store, 6, 4).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.stats().wal.bytes > config.wal_bound_bytes() {
        assert!(Instant::now() < deadline, "{:?}", store.stats().wal);
        ingest(&store, 7, 1).await;
    }
    for cid in acked.iter().step_by(97) {
        assert!(store.get(cid).await.unwrap().is_some());
    }
}
