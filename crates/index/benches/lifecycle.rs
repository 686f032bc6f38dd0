//! Lifecycle figures (a measurement program, not a timed test):
//!
//! 1. online backup of the full store while producers keep writing: MB/s of the copy;
//! 2. GC of a store of `dags × leaves` blobs with 10% of the DAGs pinned: blobs freed per
//!    second, interactive `put` latency (p50/p99/max, and lane batches waited) and `info`
//!    p99 during the sweep, file size before and after.
//!
//! Run with `cargo bench -p seedbank-index --bench lifecycle` (1,000 DAGs × 1,000 leaves
//! of 1 KiB: 1M blobs, ~1.4 GB; `-- --quick` for a smoke run of 50 × 200).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cid::Cid;
use hdrhistogram::Histogram;
use ipld_core::ipld::Ipld;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use seedbank_blobstore::{codec, Blob, Config, Priority, PutOptions, Store};
use seedbank_index::{GcOptions, Index, IndexConfig, IndexPutOptions};

struct Scale {
    dags: usize,
    leaves: usize,
}

const FULL: Scale = Scale {
    dags: 1000,
    leaves: 1000,
};
const QUICK: Scale = Scale {
    dags: 50,
    leaves: 200,
};
const LEAF: usize = 1024;

fn leaf(rng: &mut StdRng) -> Blob {
    let mut data = vec![0u8; LEAF];
    rng.fill_bytes(&mut data);
    Blob::new(codec::RAW, data)
}

fn node(i: usize, links: &[Cid]) -> Blob {
    let map = BTreeMap::from([
        ("dag".to_string(), Ipld::Integer(i as i128)),
        (
            "links".to_string(),
            Ipld::List(links.iter().copied().map(Ipld::Link).collect()),
        ),
    ]);
    Blob::new(
        codec::DAG_CBOR,
        serde_ipld_dagcbor::to_vec(&Ipld::Map(map)).expect("encodes"),
    )
}

/// Database plus WAL bytes on disk.
fn file_bytes(db: &Path) -> u64 {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    len(db) + len(&seedbank_blobstore::wal_path(db))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e3
}

/// Keeps `producers` tasks putting 64 × 1 KiB blobs until `stop`; returns blobs written.
fn spawn_producers(
    store: &Store,
    producers: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..producers)
        .map(|p| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(1_000 + p);
                let mut n = 0;
                while !stop.load(Relaxed) {
                    let blobs: Vec<Blob> = (0..64).map(|_| leaf(&mut rng)).collect();
                    store
                        .put_many(blobs, PutOptions::new(Priority::Normal, "load"))
                        .await
                        .expect("put under load");
                    n += 64;
                }
                n
            })
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { QUICK } else { FULL };
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("lifecycle.db");
    let store = Store::open(&db, Config::default())?;
    let index = Index::open(store.clone(), IndexConfig::default()).await?;

    // The store: `dags` DAG-CBOR nodes, each over `leaves` raw leaves of 1 KiB.
    let mut rng = StdRng::seed_from_u64(7);
    let mut roots = Vec::new();
    let mut some_pinned_leaves = Vec::new();
    let started = Instant::now();
    for d in 0..scale.dags {
        let leaves: Vec<Blob> = (0..scale.leaves).map(|_| leaf(&mut rng)).collect();
        let cids: Vec<Cid> = leaves.iter().map(|b| *b.cid()).collect();
        if d < scale.dags / 10 {
            some_pinned_leaves.push(cids[0]);
        }
        let mut blobs = leaves;
        let root = node(d, &cids);
        roots.push(*root.cid());
        blobs.push(root);
        index
            .put_many(blobs, IndexPutOptions::new(Priority::Background, "build"))
            .await?;
    }
    let total = (scale.dags * (scale.leaves + 1)) as u64;
    println!(
        "store           {total} blobs ({} DAGs × {} leaves of {LEAF} B) built in {:.1} s, {:.0} blobs/s",
        scale.dags,
        scale.leaves,
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
    for (d, root) in roots.iter().take(scale.dags / 10).enumerate() {
        index.pin(&format!("keep-{d}"), root).await?;
    }

    // 1. Online backup under write load.
    let stop = Arc::new(AtomicBool::new(false));
    let producers = spawn_producers(&store, 4, &stop);
    let waits_before = store.stats().wal.lane_waits;
    let started = Instant::now();
    let backup = store.backup(dir.path().join("backup.db")).await?;
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    let mut written = 0;
    for p in producers {
        written += p.await?;
    }
    println!(
        "backup          {:.1} MB ({} CIDs) in {secs:.2} s: {:.1} MB/s, verified; {written} blobs written meanwhile, lane waited at the WAL cap {} times",
        mb(backup.bytes),
        backup.cids,
        mb(backup.bytes) / secs,
        store.stats().wal.lane_waits - waits_before,
    );
    std::fs::remove_file(dir.path().join("backup.db"))?;

    // 2. GC with 10% pinned, an interactive writer and an info reader alongside.
    let before = file_bytes(&db);
    let stop = Arc::new(AtomicBool::new(false));
    let batches_waited = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, waited) = (store.clone(), stop.clone(), batches_waited.clone());
        tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("valid");
            let mut rng = StdRng::seed_from_u64(99);
            while !stop.load(Relaxed) {
                let b0 = store.stats().batches;
                let t = Instant::now();
                store
                    .put_many(
                        vec![leaf(&mut rng)],
                        PutOptions::new(Priority::Interactive, "user"),
                    )
                    .await
                    .expect("interactive put during GC");
                h.record(t.elapsed().as_micros() as u64).expect("in range");
                let w = store.stats().batches.saturating_sub(b0 + 1);
                waited.fetch_max(w, Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            h
        })
    };
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("valid");
            let mut i = 0;
            while !stop.load(Relaxed) {
                let cid = some_pinned_leaves[i % some_pinned_leaves.len()];
                let t = Instant::now();
                assert!(store.info(&cid).await.expect("info").is_some());
                h.record(t.elapsed().as_micros() as u64).expect("in range");
                i += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            h
        })
    };
    let started = Instant::now();
    let report = index.gc(GcOptions::default()).await?;
    let secs = started.elapsed().as_secs_f64();
    let lane = store.stats();
    stop.store(true, Relaxed);
    let (puts, infos) = (writer.await?, reader.await?);
    let after = file_bytes(&db);
    let space = store.space().await?;
    println!(
        "gc              {} blobs ({:.1} MB) freed in {secs:.1} s: {:.0} blobs/s; {} marked live; {} sweep batches, {} vacuum steps",
        report.blobs_freed,
        mb(report.bytes_freed),
        report.blobs_freed as f64 / secs,
        report.marked,
        report.batches,
        report.vacuum_steps,
    );
    println!(
        "  lane          batch hold (whole run) p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lane.batch_hold_us.p50 as f64 / 1e3,
        lane.batch_hold_us.p99 as f64 / 1e3,
        lane.batch_hold_us.max as f64 / 1e3,
    );
    println!(
        "  interactive   put p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} puts; at most {} other batches waited",
        ms(&puts, 0.5),
        ms(&puts, 0.99),
        puts.max() as f64 / 1e3,
        puts.len(),
        batches_waited.load(Relaxed),
    );
    println!(
        "  info          p50 {:.0} µs, p99 {:.0} µs, max {:.2} ms over {} reads",
        infos.value_at_quantile(0.5),
        infos.value_at_quantile(0.99),
        infos.max() as f64 / 1e3,
        infos.len(),
    );
    index.store().close().await?;
    println!(
        "  file          {:.1} MB before, {:.1} MB after the GC ({} free pages left), {:.1} MB after close",
        mb(before),
        mb(after),
        space.free_pages,
        mb(file_bytes(&db)),
    );
    Ok(())
}
