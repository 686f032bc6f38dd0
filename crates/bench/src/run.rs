//! One measured run: one engine, one workload, a fresh database.
//!
//! Phases, on one clock (the run's origin):
//! 1. *idle*: `info` readers alone on a database holding only their target blobs;
//! 2. *storm*: producers put every blob of the workload (plus, for concurrent engines, one
//!    interactive putter and, in sync-burst, the peer-row writers) while readers go on.
//!    Throughput is the workload's blobs over the storm's wall time; every put was durable
//!    (committed) when it returned.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::engines::{self, Drive, Engine, EngineKind, Limit, Naive, PeerWrite, Seedbank};
use super::figures::{jain, Latency};
use super::progress::Progress;
use super::readers::{Readers, TimelinePoint};
use super::sysinfo;
use super::workload::{BlobSet, Burst, Spec};
use super::Options;
use seedbank_blobstore::{Blob, Priority, PutOptions};

/// Best-effort peer-row writes of a sync-burst run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PeerFigures {
    /// Writes asked for.
    pub issued: u64,
    /// Writes committed.
    pub applied: u64,
    /// Writes replaced by a newer one for the same peer (seedbank coalescing).
    pub coalesced: u64,
    /// Writes that failed with SQLITE_BUSY (best effort: not retried).
    pub dropped: u64,
    /// Time until a write was committed (or known coalesced/dropped), µs.
    pub latency_us: Latency,
    /// Rows in the peer table after the run (read from the database; `iroh-blobs`: its
    /// `peer/…` tags).
    pub rows_stored: u64,
    /// Committed writes the peer table records (the sum of its `connects` column); 0 for
    /// `iroh-blobs`, whose peer tags count no connects.
    pub writes_stored: u64,
}

/// Every figure of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunFigures {
    /// The engine.
    pub engine: EngineKind,
    /// Wall time of the storm, s.
    pub seconds: f64,
    /// Workload blobs stored in the storm.
    pub blobs: u64,
    /// Workload bytes stored in the storm.
    pub bytes: u64,
    /// Blobs per second.
    pub blobs_per_sec: f64,
    /// Megabytes (10^6 bytes) per second.
    pub mb_per_sec: f64,
    /// `info` latency during the storm, µs.
    pub info_storm_us: Latency,
    /// `info` latency before the storm, with nothing else running, µs.
    pub info_idle_us: Latency,
    /// `info` calls that failed.
    pub info_errors: u64,
    /// Latency of single-blob `Interactive` puts made during the storm, µs.
    pub interactive_put_us: Latency,
    /// Peer-row writes (sync-burst only).
    pub peer_writes: PeerFigures,
    /// SQLITE_BUSY / SQLITE_LOCKED errors returned.
    pub busy_errors: u64,
    /// Sleeps in SQLite's busy handler (`None` where not counted).
    pub busy_waits: Option<u64>,
    /// Write transactions committed.
    pub transactions: u64,
    /// Largest WAL file seen, bytes.
    pub wal_peak_bytes: u64,
    /// Jain's index of the sources' blobs when the first source finished (1 = equal).
    pub jain: Option<f64>,
    /// Blobs per source when the first source finished.
    pub source_blobs: Vec<u64>,
    /// Peak resident memory of the process during the run, bytes.
    pub peak_rss_bytes: u64,
    /// CPU time of the whole process during the storm, s (divide by `seconds` for cores).
    pub cpu_seconds: f64,
    /// CPU time of seedbank's lane thread during the storm, s.
    pub lane_cpu_seconds: Option<f64>,
    /// CPU time of seedbank's checkpointer thread during the storm, s.
    pub checkpointer_cpu_seconds: Option<f64>,
    /// Bytes the process wrote to storage during the storm (WAL, checkpoints, files).
    pub disk_write_bytes: Option<u64>,
    /// Distinct CIDs submitted (targets, workload, interactive).
    pub blobs_submitted: u64,
    /// CIDs found in the database after the run (`iroh-blobs`: its `cid/…` tags whose blob
    /// is complete, in the store reopened after the run).
    pub blobs_stored: u64,
    /// Storm start, ms since the run's origin.
    pub storm_start_ms: f64,
    /// Storm end, ms since the run's origin.
    pub storm_end_ms: f64,
    /// `info` latency over time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelinePoint>,
    /// The engine's own statistics (seedbank: `Store::stats()` at the end of the storm).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// Runs `kind` on `spec`'s blobs in a fresh database under `options.dir`.
///
/// # Errors
/// Any engine error (none is expected), or I/O errors creating the database.
pub async fn run_engine(
    kind: EngineKind,
    spec: &Spec,
    set: &BlobSet,
    options: &Options,
    label: String,
) -> anyhow::Result<RunFigures> {
    let dir = match &options.dir {
        Some(d) => tempfile::Builder::new()
            .prefix("seedbank-bench")
            .tempdir_in(d)?,
        None => tempfile::Builder::new()
            .prefix("seedbank-bench")
            .tempdir()?,
    };
    let path = dir.path().join("bench.db");
    engines::prepare_database(&path).await?;
    let s = &options.engines;
    let run = Run {
        kind,
        spec,
        set,
        options,
        path: &path,
        label,
    };
    match kind {
        EngineKind::Limit => run.measure(Arc::new(Limit::open(&path, s)?)).await,
        EngineKind::LimitBounded => run.measure(Arc::new(Limit::open_bounded(&path, s)?)).await,
        EngineKind::Naive => run.measure(Arc::new(Naive::open(&path, s)?)).await,
        EngineKind::Seedbank => run.measure(Arc::new(Seedbank::open(&path, s, true)?)).await,
        EngineKind::SeedbankNoStats => {
            run.measure(Arc::new(Seedbank::open(&path, s, false)?))
                .await
        }
        #[cfg(feature = "iroh-blobs")]
        EngineKind::IrohBlobs => {
            let store = engines::IrohBlobs::open(&engines::IrohBlobs::store_dir(&path)).await?;
            run.measure(Arc::new(store)).await
        }
    }
}

struct Run<'a> {
    kind: EngineKind,
    spec: &'a Spec,
    set: &'a BlobSet,
    options: &'a Options,
    path: &'a Path,
    label: String,
}

/// Per-source progress, for the fairness figure.
struct Sources {
    blobs: Vec<AtomicU64>,
    /// Producers of each source still running.
    running: Vec<AtomicUsize>,
    /// Blobs per source when the first source finished.
    cut: Mutex<Option<Vec<u64>>>,
}

impl Sources {
    fn new(spec: &Spec) -> Sources {
        let n = spec.sources.max(1);
        let mut running = vec![0usize; n];
        for p in 0..spec.producers {
            running[spec.source_of(p)] += 1;
        }
        Sources {
            blobs: (0..n).map(|_| AtomicU64::new(0)).collect(),
            running: running.into_iter().map(AtomicUsize::new).collect(),
            cut: Mutex::new(None),
        }
    }

    fn producer_done(&self, source: usize) {
        if self.running[source].fetch_sub(1, Relaxed) == 1 {
            let mut cut = self.cut.lock().expect("cut lock");
            if cut.is_none() {
                *cut = Some(self.blobs.iter().map(|b| b.load(Relaxed)).collect());
            }
        }
    }
}

/// What the extra writers (interactive putter, peer writers) measured.
#[derive(Default)]
struct Extras {
    interactive_us: Vec<u64>,
    peers: PeerFigures,
}

impl Run<'_> {
    async fn measure<E: Engine>(self, engine: Arc<E>) -> anyhow::Result<RunFigures> {
        let opts = self.options;
        let targets: Vec<Blob> = self.set.targets.to_vec();
        let target_cids = Arc::new(targets.iter().map(|b| *b.cid()).collect::<Vec<_>>());
        engine.put(targets, PutOptions::default()).await?;

        let concurrent = self.kind.drive() == Drive::Concurrent;
        let readers_n = if concurrent { opts.info_readers } else { 0 };
        let rss_reset = sysinfo::reset_peak_rss();
        let wal = WalSampler::start(self.path);
        let origin = Instant::now();
        let readers = Readers::start(&engine, readers_n, target_cids, opts.info_interval, origin);
        if readers_n > 0 {
            tokio::time::sleep(opts.idle).await;
        }

        let progress = Progress::start(
            opts.progress,
            self.spec.total_blobs() as u64,
            self.label.clone(),
        );
        let cpu_start = CpuMarks::now();
        let disk_start = sysinfo::disk_write_bytes();
        let storm_start = origin.elapsed();
        let stop = Arc::new(AtomicBool::new(false));
        // A user's puts belong to the sync-burst scenario; small/mixed/large measure ingest.
        let with_user = concurrent && self.spec.burst.is_some();
        let interactive = with_user.then(|| self.spawn_interactive(&engine, &stop));
        let peers = match (&self.spec.burst, concurrent) {
            (Some(burst), true) => Some(spawn_peer_writers(&engine, burst, &stop)),
            _ => None,
        };
        let sources = Arc::new(Sources::new(self.spec));
        let producers = if concurrent {
            self.spawn_producers(&engine, &sources, &progress)
        } else {
            vec![self.spawn_alone(&engine, &progress)]
        };
        for p in producers {
            p.await??;
        }
        let storm_end = origin.elapsed();
        let cpu = CpuMarks::now().since(&cpu_start);
        let disk_written = disk_start
            .zip(sysinfo::disk_write_bytes())
            .map(|(a, b)| b.saturating_sub(a));
        progress.finish();
        let details = engine.details();
        stop.store(true, Relaxed);
        let mut extras = Extras::default();
        if let Some(task) = interactive {
            extras.interactive_us = task.await??;
        }
        if let Some(tasks) = peers {
            extras.peers = collect_peer_writers(tasks).await?;
        }
        let log = readers.stop().await?;
        let counters = engine.close().await?;
        let wal_peak = wal.stop().await?.max(counters.wal_peak_bytes);
        let peak_rss = if rss_reset { sysinfo::peak_rss() } else { 0 };
        drop(engine);
        let (blobs_stored, peer_rows, peer_writes) = self.count_stored().await?;
        (extras.peers.rows_stored, extras.peers.writes_stored) = (peer_rows, peer_writes);

        let seconds = (storm_end - storm_start).as_secs_f64().max(1e-9);
        let micros = |d: Duration| d.as_micros() as u64;
        let cut = sources.cut.lock().expect("cut lock").take();
        let source_blobs = cut.unwrap_or_default();
        let jain = (source_blobs.len() > 1 && concurrent)
            .then(|| jain(&source_blobs.iter().map(|&b| b as f64).collect::<Vec<_>>()));
        let interactive_distinct = extras.interactive_us.len().min(self.set.interactive.len());
        let bucket = Duration::from_secs_f64((storm_end.as_secs_f64() / 300.0).max(0.01));
        Ok(RunFigures {
            engine: self.kind,
            seconds,
            blobs: self.set.blobs,
            bytes: self.set.bytes,
            blobs_per_sec: self.set.blobs as f64 / seconds,
            mb_per_sec: self.set.bytes as f64 / seconds / 1e6,
            info_storm_us: log.latency_between(micros(storm_start), micros(storm_end)),
            info_idle_us: log.latency_between(0, micros(storm_start)),
            info_errors: log.errors,
            interactive_put_us: Latency::of_samples(extras.interactive_us.iter().copied()),
            peer_writes: extras.peers,
            busy_errors: counters.busy_errors,
            busy_waits: counters.busy_waits,
            transactions: counters.transactions,
            wal_peak_bytes: wal_peak,
            jain,
            source_blobs: if concurrent { source_blobs } else { Vec::new() },
            peak_rss_bytes: peak_rss,
            cpu_seconds: cpu.process,
            lane_cpu_seconds: cpu.lane,
            checkpointer_cpu_seconds: cpu.checkpointer,
            disk_write_bytes: disk_written,
            blobs_submitted: self.set.blobs
                + self.set.targets.len() as u64
                + interactive_distinct as u64,
            blobs_stored,
            storm_start_ms: storm_start.as_secs_f64() * 1e3,
            storm_end_ms: storm_end.as_secs_f64() * 1e3,
            timeline: log.timeline(bucket),
            details,
        })
    }

    /// What the closed engine kept: `(CIDs, peer rows, peer writes)`, read back from disk.
    async fn count_stored(&self) -> anyhow::Result<(u64, u64, u64)> {
        #[cfg(feature = "iroh-blobs")]
        if self.kind == EngineKind::IrohBlobs {
            let dir = engines::IrohBlobs::store_dir(self.path);
            let stored = engines::IrohBlobs::count_stored(&dir).await?;
            // A peer tag records that a peer connected, not how often.
            return Ok((stored.blobs, stored.peers, 0));
        }
        let (rows, writes) = engines::count_peer_rows(self.path)?;
        Ok((engines::count_stored(self.path)?, rows, writes))
    }

    /// One task per producer, each putting its rounds in order under its source's name.
    fn spawn_producers<E: Engine>(
        &self,
        engine: &Arc<E>,
        sources: &Arc<Sources>,
        progress: &Progress,
    ) -> Vec<JoinHandle<anyhow::Result<()>>> {
        let spec = self.spec;
        (0..spec.producers)
            .map(|p| {
                let source = spec.source_of(p);
                let opts = PutOptions::new(spec.priority, &spec.source_name(source));
                let rounds = self.set.producers[p].clone();
                let (engine, sources, progress) =
                    (engine.clone(), sources.clone(), progress.clone());
                tokio::spawn(async move {
                    for blobs in rounds {
                        let n = blobs.len() as u64;
                        engine.put(blobs, opts.clone()).await?;
                        sources.blobs[source].fetch_add(n, Relaxed);
                        progress.inc(n);
                    }
                    sources.producer_done(source);
                    Ok(())
                })
            })
            .collect()
    }

    /// The limit's single caller: every blob, in producer order, in large transactions.
    fn spawn_alone<E: Engine>(
        &self,
        engine: &Arc<E>,
        progress: &Progress,
    ) -> JoinHandle<anyhow::Result<()>> {
        let s = &self.options.engines;
        let (max_blobs, max_bytes) = (s.limit_txn_blobs.max(1), s.limit_txn_bytes);
        let mut txns: Vec<Vec<Blob>> = vec![Vec::new()];
        let mut bytes = 0;
        for blob in self.set.producers.iter().flatten().flatten() {
            let cur = txns.last_mut().expect("never empty");
            if !cur.is_empty() && (cur.len() >= max_blobs || bytes + blob.len() > max_bytes) {
                txns.push(Vec::new());
                bytes = 0;
            }
            bytes += blob.len();
            txns.last_mut().expect("never empty").push(blob.clone());
        }
        let (engine, progress) = (engine.clone(), progress.clone());
        tokio::spawn(async move {
            for txn in txns {
                let n = txn.len() as u64;
                engine.put(txn, PutOptions::default()).await?;
                progress.inc(n);
            }
            Ok(())
        })
    }

    /// A user saving one small blob every `interactive_interval` while the storm runs.
    fn spawn_interactive<E: Engine>(
        &self,
        engine: &Arc<E>,
        stop: &Arc<AtomicBool>,
    ) -> JoinHandle<anyhow::Result<Vec<u64>>> {
        let (engine, stop) = (engine.clone(), stop.clone());
        let pool = self.set.interactive.clone();
        let interval = self.options.interactive_interval;
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let opts = PutOptions::new(Priority::Interactive, "user");
            while !stop.load(Relaxed) {
                let blob = pool[latencies.len() % pool.len()].clone();
                let asked = Instant::now();
                engine.put(vec![blob], opts.clone()).await?;
                latencies.push(asked.elapsed().as_micros() as u64);
                tokio::time::sleep(interval).await;
            }
            Ok(latencies)
        })
    }
}

type PeerTask = JoinHandle<anyhow::Result<(PeerFigures, Vec<u64>)>>;

/// Tasks writing "peer seen" rows for random peers, each pausing between writes.
fn spawn_peer_writers<E: Engine>(
    engine: &Arc<E>,
    burst: &Burst,
    stop: &Arc<AtomicBool>,
) -> Vec<PeerTask> {
    (0..burst.peer_tasks)
        .map(|i| {
            let (engine, stop) = (engine.clone(), stop.clone());
            let (peers, interval) = (
                burst.peers.max(1) as u32,
                Duration::from_micros(burst.peer_interval_us),
            );
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(0xbee7 + i as u64);
                let (mut figures, mut latencies) = (PeerFigures::default(), Vec::new());
                let opts = PutOptions::new(Priority::Background, "peers");
                while !stop.load(Relaxed) {
                    let asked = Instant::now();
                    let outcome = engine
                        .touch_peer(rng.gen_range(0..peers), opts.clone())
                        .await?;
                    latencies.push(asked.elapsed().as_micros() as u64);
                    figures.issued += 1;
                    match outcome {
                        PeerWrite::Applied => figures.applied += 1,
                        PeerWrite::Coalesced => figures.coalesced += 1,
                        PeerWrite::Dropped => figures.dropped += 1,
                    }
                    tokio::time::sleep(interval).await;
                }
                Ok((figures, latencies))
            })
        })
        .collect()
}

async fn collect_peer_writers(tasks: Vec<PeerTask>) -> anyhow::Result<PeerFigures> {
    let (mut total, mut all) = (PeerFigures::default(), Vec::new());
    for task in tasks {
        let (f, latencies) = task.await??;
        total.issued += f.issued;
        total.applied += f.applied;
        total.coalesced += f.coalesced;
        total.dropped += f.dropped;
        all.extend(latencies);
    }
    total.latency_us = Latency::of_samples(all);
    Ok(total)
}

/// CPU time used so far by the process and by seedbank's two threads.
struct CpuMarks {
    process: f64,
    lane: Option<f64>,
    checkpointer: Option<f64>,
}

impl CpuMarks {
    fn now() -> CpuMarks {
        CpuMarks {
            process: sysinfo::process_cpu_seconds(),
            // Thread names as the kernel keeps them (15 bytes).
            lane: sysinfo::thread_cpu_seconds("seedbank-lane"),
            checkpointer: sysinfo::thread_cpu_seconds("seedbank-checkp"),
        }
    }

    fn since(&self, start: &CpuMarks) -> CpuMarks {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        CpuMarks {
            process: self.process - start.process,
            lane: diff(self.lane, start.lane),
            checkpointer: diff(self.checkpointer, start.checkpointer),
        }
    }
}

/// Samples the size of the `-wal` file every few ms, so every engine's WAL peak is measured
/// the same way.
struct WalSampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<u64>,
}

impl WalSampler {
    const EVERY: Duration = Duration::from_millis(5);

    fn start(db: &Path) -> WalSampler {
        let wal = seedbank_blobstore::wal_path(db);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            loop {
                let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                peak = peak.max(size);
                if flag.load(Relaxed) {
                    return peak;
                }
                tokio::time::sleep(Self::EVERY).await;
            }
        });
        WalSampler { stop, task }
    }

    async fn stop(self) -> anyhow::Result<u64> {
        self.stop.store(true, Relaxed);
        Ok(self.task.await?)
    }
}
