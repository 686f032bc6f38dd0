//! `--workload scale`: how ingest cost grows with the store. Blobs of one size go in by
//! steps (64 producers, `put_many` of 100, `info` readers throughout); after each step the
//! report shows the step's blobs/s, `info` p99, file bytes per blob and bytes the process
//! wrote to disk per blob (WAL, checkpoints and all), for seedbank and `limit-bounded`.
//! Content addresses are random keys, so every batch dirties pages all over the indexes on
//! them: this is where that shows.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cid::Cid;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use super::engines::{prepare_database, Engine, EngineKind, Limit, Seedbank};
use super::figures::{histogram, record, Latency};
use super::format::{bytes, count, ms};
use super::Options;
use seedbank_blobstore::{codec, Blob, Priority, PutOptions};

/// The shape of a scale run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ScaleSpec {
    /// Steps (default 10).
    pub steps: usize,
    /// Blobs per step (default 1,000,000).
    pub step_blobs: usize,
    /// Bytes per blob (default 1 KiB).
    pub blob_size: usize,
    /// Concurrent producers (64).
    pub producers: usize,
    /// Blobs per `put_many` (100).
    pub blobs_per_put: usize,
    /// `info` readers during each step (4).
    pub info_readers: usize,
}

impl ScaleSpec {
    /// 10 steps of 1M blobs, or 3 of 3,000 under `--quick`, unless `--scale-steps` and
    /// `--scale-step-blobs` say otherwise; `--size` sets the blob size.
    pub fn of(options: &Options) -> ScaleSpec {
        let (steps, step_blobs) = if options.quick {
            (3, 3_000)
        } else {
            (10, 1_000_000)
        };
        ScaleSpec {
            steps: options.scale_steps.unwrap_or(steps),
            step_blobs: options.scale_step_blobs.unwrap_or(step_blobs),
            blob_size: options.size.unwrap_or(1024),
            producers: 64,
            blobs_per_put: 100,
            info_readers: 4,
        }
    }
}

/// One step of one engine.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleStep {
    /// Engine.
    pub engine: EngineKind,
    /// Blobs stored after this step.
    pub blobs_total: u64,
    /// This step's ingest rate.
    pub blobs_per_sec: f64,
    /// `info` latency during this step, µs.
    pub info_us: Latency,
    /// Database and WAL file bytes per stored blob after the step.
    pub file_bytes_per_blob: f64,
    /// Bytes this process wrote to disk during the step, per blob of the step
    /// (`/proc/self/io` `write_bytes`; `None` where the kernel does not say).
    pub disk_bytes_per_blob: Option<f64>,
}

/// Every step of every engine.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleReport {
    /// The run's shape.
    pub spec: ScaleSpec,
    /// Steps in order, `limit-bounded` first, then seedbank.
    pub steps: Vec<ScaleStep>,
}

/// Runs the scale workload on `limit-bounded` and seedbank, one fresh database each.
///
/// # Errors
/// Any engine or I/O error.
pub async fn run(options: &Options) -> anyhow::Result<ScaleReport> {
    let spec = ScaleSpec::of(options);
    let mut steps = Vec::new();
    for kind in [EngineKind::LimitBounded, EngineKind::Seedbank] {
        let dir = tempfile::tempdir_in(options.db_dir())?;
        let path = dir.path().join("scale.db");
        prepare_database(&path).await?;
        let s = &options.engines;
        steps.extend(match kind {
            EngineKind::LimitBounded => {
                let engine = Arc::new(Limit::open_bounded(&path, s)?);
                run_engine(kind, engine, &path, &spec, options.seed).await?
            }
            _ => {
                let engine = Arc::new(Seedbank::open(&path, s, true)?);
                run_engine(kind, engine, &path, &spec, options.seed).await?
            }
        });
    }
    Ok(ScaleReport { spec, steps })
}

async fn run_engine<E: Engine>(
    kind: EngineKind,
    engine: Arc<E>,
    path: &Path,
    spec: &ScaleSpec,
    seed: u64,
) -> anyhow::Result<Vec<ScaleStep>> {
    let mut out = Vec::with_capacity(spec.steps);
    // A sample of stored CIDs for the readers: the first put of each producer of each step.
    let mut known: Vec<Cid> = Vec::new();
    let opts = PutOptions::new(Priority::Normal, "scale");
    for step in 0..spec.steps {
        let readers = start_readers(&engine, spec.info_readers, Arc::new(known.clone()));
        let written_before = super::sysinfo::disk_write_bytes();
        let started = Instant::now();
        let per_producer = spec.step_blobs.div_ceil(spec.producers);
        let mut tasks = Vec::new();
        for p in 0..spec.producers {
            let engine = engine.clone();
            let (opts, size, per_put) = (opts.clone(), spec.blob_size, spec.blobs_per_put);
            let mut rng = StdRng::seed_from_u64(seed ^ ((step * spec.producers + p) as u64 + 1));
            tasks.push(tokio::spawn(async move {
                let mut first = None;
                let mut left = per_producer;
                while left > 0 {
                    let n = left.min(per_put);
                    let blobs: Vec<Blob> = (0..n)
                        .map(|_| {
                            let mut data = vec![0u8; size];
                            rng.fill(&mut data[..]);
                            Blob::new(codec::RAW, data)
                        })
                        .collect();
                    first.get_or_insert(*blobs[0].cid());
                    engine.put(blobs, opts.clone()).await?;
                    left -= n;
                }
                anyhow::Ok(first)
            }));
        }
        for t in tasks {
            known.extend(t.await??);
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let written = super::sysinfo::disk_write_bytes()
            .zip(written_before)
            .map(|(after, before)| after.saturating_sub(before));
        let info_us = readers.stop().await?;
        let blobs_total = ((step + 1) * per_producer * spec.producers) as u64;
        let step_blobs = (per_producer * spec.producers) as f64;
        out.push(ScaleStep {
            engine: kind,
            blobs_total,
            blobs_per_sec: step_blobs / seconds,
            info_us,
            file_bytes_per_blob: file_bytes(path) as f64 / blobs_total as f64,
            disk_bytes_per_blob: written.map(|w| w as f64 / step_blobs),
        });
    }
    engine.close().await?;
    Ok(out)
}

/// Database plus WAL file size.
fn file_bytes(db: &Path) -> u64 {
    [db.to_path_buf(), seedbank_blobstore::wal_path(db)]
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum()
}

/// `info` readers over `targets` until stopped; their latencies in one histogram.
struct StepReaders {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<u64>>>>,
}

fn start_readers<E: Engine>(engine: &Arc<E>, n: usize, targets: Arc<Vec<Cid>>) -> StepReaders {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..if targets.is_empty() { 0 } else { n })
        .map(|i| {
            let (engine, stop, targets) = (engine.clone(), stop.clone(), targets.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(i as u64);
                let mut samples = Vec::new();
                while !stop.load(Relaxed) {
                    let cid = targets[rng.gen_range(0..targets.len())];
                    let asked = Instant::now();
                    anyhow::ensure!(engine.info(cid).await?, "stored blob {cid} not found");
                    samples.push(asked.elapsed().as_micros() as u64);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(samples)
            })
        })
        .collect();
    StepReaders { stop, tasks }
}

impl StepReaders {
    async fn stop(self) -> anyhow::Result<Latency> {
        self.stop.store(true, Relaxed);
        let mut h = histogram();
        for t in self.tasks {
            for us in t.await?? {
                record(&mut h, us);
            }
        }
        Ok(Latency::of(&h))
    }
}

/// The steps as a table, with seedbank's rate against `limit-bounded` at the same step.
pub fn render(report: &ScaleReport) -> String {
    let s = &report.spec;
    let mut out = format!(
        "\n## scale: {} steps of {} blobs of {}, {} producers, put_many of {}\n",
        s.steps,
        count(s.step_blobs as f64),
        bytes(s.blob_size as u64),
        s.producers,
        s.blobs_per_put
    );
    let _ = writeln!(
        out,
        "{:16} {:>12} {:>10} {:>8} {:>12} {:>12} {:>10}",
        "engine", "blobs", "blobs/s", "vs bnd", "file B/blob", "disk B/blob", "info p99"
    );
    let bounded: Vec<&ScaleStep> = report
        .steps
        .iter()
        .filter(|st| st.engine == EngineKind::LimitBounded)
        .collect();
    for st in &report.steps {
        let vs = bounded
            .iter()
            .find(|b| b.blobs_total == st.blobs_total && st.engine != b.engine)
            .map_or("–".into(), |b| {
                format!("{:.2}×", st.blobs_per_sec / b.blobs_per_sec)
            });
        let _ = writeln!(
            out,
            "{:16} {:>12} {:>10} {:>8} {:>12.0} {:>12} {:>10}",
            st.engine.name(),
            count(st.blobs_total as f64),
            count(st.blobs_per_sec),
            vs,
            st.file_bytes_per_blob,
            st.disk_bytes_per_blob
                .map_or("–".into(), |b| format!("{b:.0}")),
            if st.info_us.count == 0 {
                "–".into()
            } else {
                ms(st.info_us.p99)
            }
        );
    }
    out
}
