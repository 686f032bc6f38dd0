//! The blob ingest benchmark, shared by `seedbank bench` and `benches/ingest.rs`.
//!
//! Producers call `put_many` on random blobs while `info` readers measure metadata read
//! latency, all against an embedded store in a temporary directory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use crate::blobstore::{codec, Blob, Config, PutOptions, Store};

/// What to run.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    /// Concurrent producer tasks.
    pub producers: usize,
    /// `put_many` calls per producer.
    pub rounds: usize,
    /// Blobs per `put_many`.
    pub blobs_per_put: usize,
    /// Bytes per blob.
    pub blob_size: usize,
    /// Concurrent `info` reader tasks.
    pub info_readers: usize,
    /// Pause between one reader's `info` calls.
    pub info_interval: Duration,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            producers: 256,
            rounds: 1,
            blobs_per_put: 10,
            blob_size: 1024,
            info_readers: 16,
            info_interval: Duration::from_millis(1),
        }
    }
}

/// Figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The workload that ran.
    pub workload: Workload,
    /// Blobs stored.
    pub blobs: u64,
    /// Wall time of the ingest, seconds.
    pub seconds: f64,
    /// Blobs per second.
    pub blobs_per_sec: f64,
    /// Megabytes (10^6) per second.
    pub mb_per_sec: f64,
    /// `info` latency during the ingest, µs.
    pub info_us: Latency,
    /// SQLITE_BUSY seen by the store.
    pub sqlite_busy: u64,
    /// Largest WAL size seen, bytes.
    pub wal_peak_bytes: u64,
    /// Batches committed.
    pub batches: u64,
}

/// Latency percentiles in µs.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// Runs `workload` against a fresh store in a temporary directory.
///
/// # Errors
/// Any store error (none is expected).
pub async fn run(workload: &Workload, config: Config) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("bench.db"), config)?;
    // A few blobs for readers to look up, stored before the clock starts.
    let seed_blobs = random_blobs(&mut StdRng::seed_from_u64(0), 64, 256);
    let targets: Arc<Vec<_>> = Arc::new(seed_blobs.iter().map(|b| *b.cid()).collect());
    store.put_many(seed_blobs, PutOptions::default()).await?;

    // Random bytes are made up front so the clock measures hashing and storing only.
    let inputs: Vec<Vec<Vec<u8>>> = (0..workload.producers)
        .map(|p| {
            let mut rng = StdRng::seed_from_u64(p as u64 + 1);
            (0..workload.rounds * workload.blobs_per_put)
                .map(|_| {
                    let mut data = vec![0u8; workload.blob_size];
                    rng.fill(&mut data[..]);
                    data
                })
                .collect()
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..workload.info_readers)
        .map(|i| {
            tokio::spawn(info_reader(
                store.clone(),
                targets.clone(),
                stop.clone(),
                i,
                workload.info_interval,
            ))
        })
        .collect();

    let started = Instant::now();
    let producers: Vec<_> = inputs
        .into_iter()
        .map(|data| {
            let (store, per_put) = (store.clone(), workload.blobs_per_put);
            tokio::spawn(async move {
                let mut data = data.into_iter();
                loop {
                    let blobs: Vec<Blob> = data
                        .by_ref()
                        .take(per_put)
                        .map(|d| Blob::new(codec::RAW, d))
                        .collect();
                    if blobs.is_empty() {
                        return Ok::<_, crate::blobstore::Error>(());
                    }
                    store.put_many(blobs, PutOptions::default()).await?;
                }
            })
        })
        .collect();
    for p in producers {
        p.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut info = Histogram::<u64>::new(3)?;
    for r in readers {
        info.add(r.await?)?;
    }
    let stats = store.stats();
    store.close().await?;
    let blobs = (workload.producers * workload.rounds * workload.blobs_per_put) as u64;
    Ok(Report {
        workload: workload.clone(),
        blobs,
        seconds,
        blobs_per_sec: blobs as f64 / seconds,
        mb_per_sec: (blobs as f64 * workload.blob_size as f64) / seconds / 1e6,
        info_us: Latency::of(&info),
        sqlite_busy: stats.sqlite_busy,
        wal_peak_bytes: stats.wal.peak_bytes,
        batches: stats.batches,
    })
}

async fn info_reader(
    store: Store,
    targets: Arc<Vec<cid::Cid>>,
    stop: Arc<AtomicBool>,
    seed: usize,
    interval: Duration,
) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new(3).expect("valid precision");
    let mut rng = StdRng::seed_from_u64(seed as u64 ^ 0x5eed);
    while !stop.load(Ordering::Relaxed) {
        let cid = targets[rng.gen_range(0..targets.len())];
        let asked = Instant::now();
        let found = store.info(&cid).await.map(|i| i.is_some());
        hist.saturating_record(asked.elapsed().as_micros() as u64);
        debug_assert!(matches!(found, Ok(true)));
        tokio::time::sleep(interval).await;
    }
    hist
}

fn random_blobs(rng: &mut StdRng, n: usize, size: usize) -> Vec<Blob> {
    (0..n)
        .map(|_| {
            let mut data = vec![0u8; size];
            rng.fill(&mut data[..]);
            Blob::new(codec::RAW, data)
        })
        .collect()
}
