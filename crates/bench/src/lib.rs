//! The blob ingest benchmark, shared by `seedbank bench` and `benches/ingest.rs`.
//!
//! Three engines store the same blobs with the same schema, on the same machine, in one run:
//!
//! - `limit`: one connection inserting in large transactions, nothing else running — the
//!   machine's ceiling for this schema;
//! - `naive`: what sync daemons run today — a shared pool of connections for reads and
//!   writes, every write its own `BEGIN IMMEDIATE` with a 10 s busy timeout;
//! - `seedbank`: the real [`Store`](seedbank_blobstore::Store) (and, for the cost of detailed
//!   stats, the same store with `Config::detailed_stats = false`).
//!
//! Built with the feature `iroh-blobs`, a fourth engine stores the same blobs in another
//! store altogether: `iroh-blobs`, iroh-blobs' file store, what a Rust user would pick
//! instead (the `IrohBlobs` engine).
//!
//! Workloads ([`WorkloadKind`]): `small`, `mixed` and `large` are storms of producers
//! spread over equal sources, with `info` readers throughout (so their throughput compares
//! with `limit` on the same blobs and nothing else written); `sync-burst` is a background
//! bulk import with an interactive putter and best-effort peer-row writes at once. Each engine runs each workload `repeats` times on a fresh database, the
//! engines' order rotating between repeats; tables show medians. Run when named, `scale`
//! grows one store by steps and `files` adds and reads back a large file and a directory of
//! small files through `seedbank-files`, against `car::import` of the same blocks.
//!
//! Layout: [`workload`](self) makes the blobs, `engines` implements the one [`Engine`]
//! trait three times, `run` measures one engine on one workload, `readers` logs `info`
//! latency, `report`/`targets` summarise and `plot` draws.

mod args;
mod disk;
mod engines;
mod figures;
mod files;
mod format;
mod plot;
mod progress;
mod readers;
mod report;
mod run;
mod scale;
mod summary;
mod sysinfo;
mod targets;
mod workload;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use args::{BenchArgs, SyncArg, WorkloadArg};
pub use disk::DiskFigures;
pub use engines::{
    count_stored, prepare_database, Counters, Drive, Engine, EngineKind, EngineSettings, Limit,
    Naive, PeerWrite, Seedbank,
};
#[cfg(feature = "iroh-blobs")]
pub use engines::{IrohBlobs, IrohStored};
pub use figures::{jain, median, Latency};
pub use files::{FilesCase, FilesReport, FilesRun, FilesSpec, Phase, StoreFigures};
pub use plot::write_svg;
pub use readers::TimelinePoint;
pub use report::{render, render_footer, render_header, render_workload, BenchReport};
pub use run::{run_engine, PeerFigures, RunFigures};
pub use scale::{ScaleReport, ScaleSpec, ScaleStep};
pub use summary::{EngineReport, StatsOverhead, WorkloadReport};
pub use sysinfo::{peak_rss, Machine};
pub use targets::{Target, Verdict};
pub use workload::{BlobSet, Burst, SizeDist, Spec, WorkloadKind};

use seedbank_blobstore::Priority;

/// What to run. [`Options::default`] is the full benchmark (about two minutes on 2 cores);
/// [`Options::quick`] the CI smoke run.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// Workloads, in order.
    pub workloads: Vec<WorkloadKind>,
    /// Engines compared on each workload.
    pub compare: Vec<EngineKind>,
    /// Also run the scale workload (`--workload scale`).
    pub scale: bool,
    /// Concurrent producers of the storm workloads.
    pub producers: usize,
    /// `put_many` calls per producer; `None`: the workload's default.
    pub rounds: Option<usize>,
    /// Blobs per `put_many`; `None`: the workload's default.
    pub blobs_per_put: Option<usize>,
    /// Fixed blob size for the storm workloads; `None`: the workload's distribution.
    pub size: Option<usize>,
    /// Equal sources the producers are spread over.
    pub sources: usize,
    /// Concurrent `info` readers.
    pub info_readers: usize,
    /// Pause between one reader's calls.
    pub info_interval: Duration,
    /// Readers run alone this long before the storm (the idle figures).
    pub idle: Duration,
    /// Pause between the interactive putter's single-blob puts.
    pub interactive_interval: Duration,
    /// Blobs of the sync-burst background import.
    pub import_blobs: usize,
    /// Concurrent import tasks of sync-burst, each putting `import_chunk` blobs per call.
    pub import_tasks: usize,
    /// Blobs per import `put_many` (naive: one transaction each, as daemons do).
    pub import_chunk: usize,
    /// The sync-burst peer-row writers.
    pub burst: Burst,
    /// Steps of the scale workload; `None`: 10 (3 under `--quick`).
    pub scale_steps: Option<usize>,
    /// Blobs per step of the scale workload; `None`: 1,000,000 (3,000 under `--quick`).
    pub scale_step_blobs: Option<usize>,
    /// Also run the files workload (`--workload files`).
    pub files: bool,
    /// Bytes of the files workload's large file; `None`: 1 GiB (16 MiB under `--quick`).
    pub files_size: Option<u64>,
    /// Small files of the files workload; `None`: 10,000 (200 under `--quick`).
    pub files_count: Option<usize>,
    /// The UnixFS profile of the files workload.
    #[serde(skip)]
    pub files_profile: seedbank_files::Profile,
    /// The store's batch byte budget (`Config::batch.max_bytes`) in the files workload, and
    /// the import's batch bytes; `None`: their defaults (4 MiB both).
    pub files_batch_bytes: Option<usize>,
    /// Where the files workload's inputs and CAR go (`None`: beside the databases), e.g. a
    /// tmpfs to keep them off the disk under test.
    pub files_input_dir: Option<PathBuf>,
    /// Runs per engine and workload.
    pub repeats: usize,
    /// Smaller workloads (the CI smoke run).
    pub quick: bool,
    /// Also run seedbank with detailed stats off on `small` and `mixed`.
    pub stats_overhead: bool,
    /// Settings shared by the engines.
    pub engines: EngineSettings,
    /// Where temporary databases go (`None`: the system temp dir).
    pub dir: Option<PathBuf>,
    /// Show progress bars and per-run lines on stderr.
    pub progress: bool,
    /// Seed of the blob generator.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workloads: WorkloadKind::ALL.to_vec(),
            compare: EngineKind::defaults(),
            scale: false,
            producers: 256,
            rounds: None,
            blobs_per_put: None,
            size: None,
            sources: 16,
            info_readers: 16,
            info_interval: Duration::from_millis(1),
            idle: Duration::from_millis(300),
            interactive_interval: Duration::from_millis(20),
            import_blobs: 16_000,
            import_tasks: 4,
            import_chunk: 1000,
            burst: Burst {
                peer_tasks: 32,
                peers: 64,
                peer_interval_us: 5_000,
            },
            scale_steps: None,
            scale_step_blobs: None,
            files: false,
            files_size: None,
            files_count: None,
            files_profile: seedbank_files::Profile::default(),
            files_batch_bytes: None,
            files_input_dir: None,
            repeats: 3,
            quick: false,
            stats_overhead: true,
            engines: EngineSettings::default(),
            dir: None,
            progress: true,
            seed: 0x5eedba7c,
        }
    }
}

impl Options {
    /// The CI smoke run: small sizes, one run each, under a minute.
    pub fn quick() -> Self {
        Options {
            repeats: 1,
            quick: true,
            idle: Duration::from_millis(100),
            import_blobs: 2_000,
            ..Options::default()
        }
    }

    /// Resolves a workload to numbers.
    pub fn spec(&self, kind: WorkloadKind) -> Spec {
        let quick = self.quick;
        let sizes = match (kind, self.size) {
            (WorkloadKind::SyncBurst, _) | (_, None) => kind.sizes(),
            (_, Some(n)) => SizeDist::Fixed(n),
        };
        let (producers, rounds, per_put) = match kind {
            WorkloadKind::Small => (self.producers, if quick { 2 } else { 20 }, 10),
            WorkloadKind::Mixed => (self.producers, if quick { 1 } else { 6 }, 10),
            // 1 GiB: 256 producers × 103 rounds × 10 blobs × 4 KiB; mixed blobs average 10 KB.
            WorkloadKind::Sustained => (self.producers, if quick { 1 } else { 103 }, 10),
            WorkloadKind::SustainedMixed => (self.producers, if quick { 1 } else { 42 }, 10),
            WorkloadKind::Large => (
                if quick {
                    self.producers.min(32)
                } else {
                    self.producers
                },
                1,
                1,
            ),
            WorkloadKind::SyncBurst => {
                let tasks = self.import_tasks.max(1);
                let chunk = self.import_chunk.max(1);
                return Spec {
                    kind,
                    producers: tasks,
                    rounds: self.import_blobs.div_ceil(tasks * chunk).max(1),
                    blobs_per_put: chunk,
                    sizes,
                    sources: 1,
                    priority: Priority::Background,
                    burst: Some(self.burst.clone()),
                };
            }
        };
        Spec {
            kind,
            producers,
            rounds: self.rounds.unwrap_or(rounds).max(1),
            blobs_per_put: self.blobs_per_put.unwrap_or(per_put).max(1),
            sizes,
            sources: self.sources.clamp(1, producers.max(1)),
            priority: Priority::Normal,
            burst: None,
        }
    }

    /// The engines run on `kind`, in table order.
    pub fn engines_for(&self, kind: WorkloadKind) -> Vec<EngineKind> {
        let mut engines = self.compare.clone();
        engines.dedup();
        let overhead_workload = matches!(kind, WorkloadKind::Small | WorkloadKind::Mixed);
        if self.stats_overhead && overhead_workload && engines.contains(&EngineKind::Seedbank) {
            engines.push(EngineKind::SeedbankNoStats);
        }
        engines
    }

    /// Where the databases go.
    pub fn db_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// The settings, as lines for the report header.
    pub fn describe(&self) -> Vec<String> {
        let e = &self.engines;
        let c = seedbank_blobstore::Config::default();
        #[allow(unused_mut)] // pushed to only with the `iroh-blobs` feature
        let mut lines = vec![
            format!(
                "synchronous={:?} for every engine; {} run(s) per engine and workload, medians shown",
                e.synchronous, self.repeats
            ),
            format!(
                "limit: 1 connection, transactions of ≤ {} blobs / {}, no checkpoints during the run",
                e.limit_txn_blobs,
                format::bytes(e.limit_txn_bytes as u64)
            ),
            format!(
                "limit-bounded: as limit, TRUNCATE checkpoint whenever the WAL passes {}, page size {}",
                format::bytes(e.bounded_wal_cap),
                e.bounded_page_size.map_or("4096 (the store's)".to_string(), |p| p.to_string())
            ),
            format!(
                "naive: {} pooled connections for reads and writes, BEGIN IMMEDIATE, busy timeout {} s, wal_autocheckpoint=1000",
                e.naive_pool,
                e.naive_busy_timeout_ms / 1000
            ),
            format!(
                "seedbank: Config::default() (batch ≤ {} blobs / {} / {} ms, WAL cap {}, info pool {}, data pool {})",
                c.batch.max_blobs,
                format::bytes(c.batch.max_bytes as u64),
                c.batch.max_hold.as_millis(),
                format::bytes(c.wal_cap_bytes),
                c.info_pool_size,
                c.data_pool_size
            ),
            format!(
                "{} info readers, one call every {} µs each; {} ms idle before each storm; in sync-burst one interactive put every {} ms",
                self.info_readers,
                self.info_interval.as_micros(),
                self.idle.as_millis(),
                self.interactive_interval.as_millis()
            ),
        ];
        #[cfg(feature = "iroh-blobs")]
        if self.compare.contains(&EngineKind::IrohBlobs) {
            lines.push(
                "iroh-blobs: FsStore defaults (blobs ≤ 16 KiB inlined in its redb, larger ones in \
                 files it does not fsync), each put's adds joined, one tag per CID, then sync_db"
                    .to_string(),
            );
        }
        lines
    }
}

/// Runs every workload of `options`; `on_workload` sees each one as soon as it is done.
///
/// # Errors
/// Any engine or I/O error (none is expected).
pub async fn run_with(
    options: &Options,
    machine: Machine,
    mut on_workload: impl FnMut(&WorkloadReport),
) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let disk_bytes = if options.quick { 16 << 20 } else { 512 << 20 };
    let dir = options.db_dir();
    let disk = tokio::task::spawn_blocking(move || disk::measure(&dir, disk_bytes)).await??;
    let mut workloads = Vec::new();
    for &kind in &options.workloads {
        let mut report = run_workload(options, kind).await?;
        report.disk_mb_per_sec = Some(disk.mb_per_sec);
        on_workload(&report);
        workloads.push(report);
    }
    let files = match options.files {
        true => Some(files::run(options, disk.mb_per_sec).await?),
        false => None,
    };
    let scale = match options.scale {
        true => Some(scale::run(options).await?),
        false => None,
    };
    let mut targets = targets::evaluate(&workloads);
    targets.extend(files.as_ref().map(files::targets).unwrap_or_default());
    Ok(BenchReport {
        machine,
        disk,
        files,
        scale,
        options: options.clone(),
        targets,
        workloads,
        total_seconds: started.elapsed().as_secs_f64(),
        load_average_end: sysinfo::load_average(),
    })
}

/// Runs every workload of `options`.
///
/// # Errors
/// As [`run_with`].
pub async fn run(options: &Options) -> anyhow::Result<BenchReport> {
    run_with(options, Machine::detect(&options.db_dir()), |_| {}).await
}

/// Runs each engine on one workload `repeats` times, rotating the engines' order.
async fn run_workload(options: &Options, kind: WorkloadKind) -> anyhow::Result<WorkloadReport> {
    let spec = options.spec(kind);
    let set = {
        let (spec, seed) = (spec.clone(), options.seed);
        tokio::task::spawn_blocking(move || BlobSet::generate(&spec, seed)).await?
    };
    let engines = options.engines_for(kind);
    let mut runs: Vec<Vec<RunFigures>> = vec![Vec::new(); engines.len()];
    for rep in 0..options.repeats {
        for engine in run_order(&engines, rep) {
            let label = format!(
                "{} {} {}/{}",
                kind.name(),
                engine.name(),
                rep + 1,
                options.repeats
            );
            let figures = run_engine(engine, &spec, &set, options, label.clone()).await?;
            if options.progress {
                eprintln!(
                    "{label:32} {:>10.0} blobs/s  info p99 {}  busy {}",
                    figures.blobs_per_sec,
                    format::ms(figures.info_storm_us.p99),
                    figures.busy_errors
                );
            }
            let at = engines.iter().position(|&e| e == engine).expect("listed");
            runs[at].push(figures);
        }
    }
    let engines: Vec<EngineReport> = engines
        .into_iter()
        .zip(runs)
        .map(|(e, r)| EngineReport::new(e, r))
        .collect();
    let mut report = WorkloadReport {
        workload: kind,
        spec,
        engines,
        stats_overhead: None,
        disk_mb_per_sec: None,
    };
    report.stats_overhead = StatsOverhead::of(&report);
    Ok(report)
}

/// The order engines run in during repeat `rep`: the list rotated by `rep`, so no engine
/// always runs first; `seedbank-nostats` runs right next to `seedbank` (after it on even
/// repeats, before it on odd ones) so each pair of the stats overhead shares the same
/// conditions on the machine.
fn run_order(engines: &[EngineKind], rep: usize) -> Vec<EngineKind> {
    let paired = engines.contains(&EngineKind::SeedbankNoStats);
    let base: Vec<EngineKind> = engines
        .iter()
        .copied()
        .filter(|&e| e != EngineKind::SeedbankNoStats)
        .collect();
    let mut order = Vec::with_capacity(engines.len());
    for i in 0..base.len() {
        let engine = base[(i + rep) % base.len()];
        if engine == EngineKind::Seedbank && paired {
            let pair = [EngineKind::Seedbank, EngineKind::SeedbankNoStats];
            if rep.is_multiple_of(2) {
                order.extend(pair);
            } else {
                order.extend(pair.into_iter().rev());
            }
        } else {
            order.push(engine);
        }
    }
    order
}

/// What `seedbank bench` does: prints the header, runs, prints each workload's table and
/// the targets, writes `--json` and `--plot`.
///
/// # Errors
/// Any benchmark error, or the output files cannot be written.
pub async fn main(args: BenchArgs) -> anyhow::Result<()> {
    let options = args.options();
    // Fail before minutes of work, not after, if an output cannot be written.
    let json = args.json.as_ref().map(std::fs::File::create).transpose()?;
    if let Some(plot) = &args.plot {
        std::fs::File::create(plot)?;
    }
    let machine = Machine::detect(&options.db_dir());
    print!("{}", render_header(&machine, &options));
    std::io::stdout().flush()?;
    let report = run_with(&options, machine, |w| {
        print!("{}", render_workload(w));
        let _ = std::io::stdout().flush();
    })
    .await?;
    print!("{}", report::render_footer(&report));
    if let Some(file) = json {
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &report)?;
    }
    if let Some(path) = &args.plot {
        plot::write_svg(&report, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use EngineKind::{Limit, Naive, Seedbank, SeedbankNoStats as NoStats};

    #[test]
    fn engines_rotate_and_stats_pairs_run_back_to_back() {
        let all = [Limit, Naive, Seedbank, NoStats];
        assert_eq!(run_order(&all, 0), [Limit, Naive, Seedbank, NoStats]);
        assert_eq!(run_order(&all, 1), [Naive, NoStats, Seedbank, Limit]);
        assert_eq!(run_order(&all, 2), [Seedbank, NoStats, Limit, Naive]);
        assert_eq!(run_order(&[Limit, Naive], 1), [Naive, Limit]);
    }
}
