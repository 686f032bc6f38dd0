//! Ingest with and without an 8-second app read: what the reader transaction limit buys.
//!
//! `cargo run --release -p seedbank-blobstore --example long_reader [ROUNDS]`
//!
//! Each round runs the same 10-second ingest (64 producers, `put_many` of 64 × 4 KiB,
//! default configuration) twice on fresh stores, once alone and once beside an app read
//! that holds one snapshot for up to 8 s (a statement every 5 ms), with a `get` loop
//! timing reads meanwhile. It prints blobs/s, the ratio, the slowest `get`, the WAL peak
//! against `Config::wal_bound_bytes()` and how the long read ended.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seedbank_blobstore::{codec, Blob, Config, PoolKind, PutOptions, Store};

const RUN: Duration = Duration::from_secs(10);
const READ: Duration = Duration::from_secs(8);

struct Figures {
    blobs_per_s: f64,
    get_max: Duration,
    wal_peak: u64,
    read: String,
}

async fn run(with_reader: bool) -> Result<Figures, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config::default();
    let store = Store::open(dir.path().join("bench.db"), config)?;
    let first = store.put(Blob::new(codec::RAW, vec![7u8; 4096])).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for p in 0..64u64 {
        let (store, stop, written) = (store.clone(), stop.clone(), written.clone());
        producers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                let blobs: Vec<Blob> = (0..64u64)
                    .map(|i| {
                        let mut data = vec![0u8; 4096];
                        data[..8].copy_from_slice(&p.to_le_bytes());
                        data[8..16].copy_from_slice(&(n * 64 + i).to_le_bytes());
                        Blob::new(codec::RAW, data)
                    })
                    .collect();
                store.put_many(blobs, PutOptions::default()).await.unwrap();
                written.fetch_add(64, Relaxed);
                n += 1;
            }
        }));
    }
    let getter = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            while !stop.load(Relaxed) {
                let t = Instant::now();
                store.get(&first).await.unwrap();
                worst = worst.max(t.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            worst
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reader = with_reader.then(|| {
        let store = store.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let result = store
                .read(PoolKind::Data, |conn| {
                    let tx = conn.unchecked_transaction()?;
                    let start = Instant::now();
                    while start.elapsed() < READ {
                        let _: i64 =
                            tx.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Ok(())
                })
                .await;
            match result {
                Ok(()) => format!("ran its {READ:?}"),
                Err(e) => format!("ended after {:.2} s: {e}", start.elapsed().as_secs_f64()),
            }
        })
    });
    let start = Instant::now();
    let before = written.load(Relaxed);
    tokio::time::sleep(RUN - Duration::from_secs(1)).await;
    let blobs = written.load(Relaxed) - before;
    let elapsed = start.elapsed();
    stop.store(true, Relaxed);
    for p in producers {
        p.await?;
    }
    let get_max = getter.await?;
    let read = match reader {
        Some(r) => r.await?,
        None => "none".to_string(),
    };
    let wal_peak = store.stats().wal.peak_bytes;
    store.close().await?;
    Ok(Figures {
        blobs_per_s: blobs as f64 / elapsed.as_secs_f64(),
        get_max,
        wal_peak,
        read,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(3), |a| a.parse())?;
    let bound = Config::default().wal_bound_bytes();
    println!(
        "WAL bound (cap + one batch): {:.1} MiB",
        bound as f64 / 1048576.0
    );
    for round in 1..=rounds {
        let alone = run(false).await?;
        let beside = run(true).await?;
        println!(
            "round {round}: alone {:.0} blobs/s (get max {:.1} ms, WAL peak {:.1} MiB); \
             with an 8 s reader {:.0} blobs/s = {:.2}x (get max {:.1} ms, WAL peak {:.1} MiB); \
             the read {}",
            alone.blobs_per_s,
            alone.get_max.as_secs_f64() * 1e3,
            alone.wal_peak as f64 / 1048576.0,
            beside.blobs_per_s,
            beside.blobs_per_s / alone.blobs_per_s,
            beside.get_max.as_secs_f64() * 1e3,
            beside.wal_peak as f64 / 1048576.0,
            beside.read,
        );
    }
    Ok(())
}
