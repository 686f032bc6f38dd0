//! `--workload files`: UnixFS add and cat of a large file and of a directory of small files,
//! against the disk line and against `car::import` of the same DAG as a CAR.
//!
//! Two inputs are written once, before any clock starts, and stay in the page cache: one
//! file of random bytes (1 GiB; `--files-size`) and a flat directory of small files
//! (10,000 of 100 B – 64 KiB, log-uniform; `--files-count`). Each repetition, for each input:
//!
//! - **add**: [`Files::add_path`] into a fresh store (the CLI's `seedbank add`), timed until
//!   the root is committed; payload MB/s, peak RSS, CPU, bytes written to disk, the lane's
//!   commits;
//! - **cat**: every file read back through [`Files::cat`] from a warm cache (one untimed
//!   pass first, then a timed one);
//! - **import**: the added DAG exported with `car::export_dag` (in the first repetition),
//!   then that CAR imported into a fresh store with `car::import` and the CLI's defaults:
//!   the store's own ceiling for the very same blocks. Odd repetitions import before they
//!   add, so neither always runs on a machine the other has just warmed or dirtied.
//!
//! With the feature `iroh-blobs` (and `iroh-blobs` among the engines) the large file is
//! also added to iroh-blobs' `FsStore` with `add_path` and read back: the peer's figure.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cid::Cid;
use rand::{rngs::StdRng, RngCore, SeedableRng};
use serde::Serialize;

use super::figures::median;
use super::format::{bytes, count};
use super::sysinfo;
use super::targets::{Check, Target};
use super::workload::SizeDist;
use super::Options;
use seedbank_blobstore::{Config, Stats, Store};
use seedbank_files::{AddOptions, Files, Kind};
use seedbank_index::{car, Index, IndexConfig};

/// The shape of a files run.
#[derive(Clone, Debug, Serialize)]
pub struct FilesSpec {
    /// The UnixFS profile the adds use.
    pub profile: String,
    /// Bytes of the large file.
    pub file_bytes: u64,
    /// Files in the directory of small files.
    pub small_files: usize,
    /// Their sizes.
    pub small_sizes: SizeDist,
    /// Repetitions.
    pub repeats: usize,
    /// The store's batch byte budget and the import's batch bytes.
    pub batch_bytes: usize,
}

impl FilesSpec {
    /// 1 GiB and 10,000 files (16 MiB and 200 under `--quick`), unless `--files-size` and
    /// `--files-count` say otherwise.
    pub fn of(options: &Options) -> FilesSpec {
        let (file_bytes, small_files) = if options.quick {
            (16 << 20, 200)
        } else {
            (1 << 30, 10_000)
        };
        FilesSpec {
            profile: options.files_profile.name().to_string(),
            file_bytes: options.files_size.unwrap_or(file_bytes),
            small_files: options.files_count.unwrap_or(small_files),
            small_sizes: SizeDist::LogUniform {
                min: 100,
                max: 64 * 1024,
            },
            repeats: options.repeats.max(1),
            batch_bytes: options
                .files_batch_bytes
                .unwrap_or(Config::default().batch.max_bytes),
        }
    }
}

/// Which input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilesCase {
    /// The large file.
    Large,
    /// The directory of small files.
    Small,
}

impl FilesCase {
    /// Name in per-run lines.
    pub fn name(self) -> &'static str {
        match self {
            FilesCase::Large => "large",
            FilesCase::Small => "small",
        }
    }
}

/// One timed phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Phase {
    /// Wall time, s.
    pub seconds: f64,
    /// Payload bytes: file bytes added, imported or read.
    pub bytes: u64,
    /// Files added or read.
    pub files: u64,
    /// `bytes` / `seconds`, MB/s (10^6 bytes).
    pub mb_per_sec: f64,
    /// Peak RSS of the process during the phase (0 where it cannot be reset).
    pub peak_rss_bytes: u64,
    /// RSS when the phase started: memory the allocator kept from earlier phases, which
    /// the peak includes.
    pub start_rss_bytes: u64,
    /// CPU of the whole process during the phase, s.
    pub cpu_seconds: f64,
    /// CPU of the store's write lane during the phase, s.
    pub lane_cpu_seconds: Option<f64>,
    /// Bytes the process caused to be written to disk during the phase.
    pub disk_write_bytes: Option<u64>,
}

/// What the store's own stats say about a write phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StoreFigures {
    /// Write transactions committed.
    pub batches: u64,
    /// Blobs per batch, median.
    pub batch_blobs_p50: u64,
    /// `COMMIT` (the fsync), µs.
    pub commit_p50_us: u64,
    /// `COMMIT` p99, µs.
    pub commit_p99_us: u64,
    /// WAL peak, bytes.
    pub wal_peak_bytes: u64,
    /// Checkpoints: passive, rewind (restart), truncate.
    pub checkpoints: [u64; 3],
    /// Lane waits on the WAL cap.
    pub lane_waits: u64,
    /// Share of the store's lifetime the lane was busy.
    pub lane_utilisation: f64,
}

impl StoreFigures {
    fn of(s: &Stats) -> StoreFigures {
        StoreFigures {
            batches: s.batches,
            batch_blobs_p50: s.batch_blobs.p50,
            commit_p50_us: s.commit_us.p50,
            commit_p99_us: s.commit_us.p99,
            wal_peak_bytes: s.wal.peak_bytes,
            checkpoints: [s.wal.passive, s.wal.rewind, s.wal.truncate],
            lane_waits: s.wal.lane_waits,
            lane_utilisation: s.lane_utilisation,
        }
    }
}

/// One input in one repetition.
#[derive(Clone, Debug, Serialize)]
pub struct FilesRun {
    /// Which input.
    pub case: FilesCase,
    /// Repetition, from 0.
    pub rep: usize,
    /// 1, 5 and 15 minute load averages when the repetition of this input started.
    pub load_average: String,
    /// The root CID the add computed (the same every repetition).
    pub root: String,
    /// Blocks the add wrote.
    pub blocks: u64,
    /// Add.
    pub add: Phase,
    /// The store during the add.
    pub add_store: StoreFigures,
    /// Cat, warm.
    pub cat: Phase,
    /// Import of the CAR of the same DAG into a fresh store.
    pub import: Phase,
    /// The store during the import.
    pub import_store: StoreFigures,
    /// Export of the DAG to the CAR (first repetition only).
    pub export: Option<Phase>,
    /// Size of that CAR.
    pub car_bytes: u64,
    /// iroh-blobs `add_path` of the same file (large file, feature `iroh-blobs`).
    pub iroh_add: Option<Phase>,
    /// iroh-blobs reading it back, warm.
    pub iroh_cat: Option<Phase>,
}

impl FilesRun {
    /// Add time over import time of the same blocks, as a rate ratio.
    pub fn add_vs_import(&self) -> f64 {
        self.add.mb_per_sec / self.import.mb_per_sec.max(1e-9)
    }
}

/// Everything a files run measured.
#[derive(Clone, Debug, Serialize)]
pub struct FilesReport {
    /// Its shape.
    pub spec: FilesSpec,
    /// Total bytes of the small files.
    pub small_bytes: u64,
    /// The disk line of the same benchmark run, MB/s.
    pub disk_mb_per_sec: f64,
    /// Every input of every repetition, in the order they ran.
    pub runs: Vec<FilesRun>,
}

impl FilesReport {
    /// The runs of one input.
    pub fn runs_of(&self, case: FilesCase) -> Vec<&FilesRun> {
        self.runs.iter().filter(|r| r.case == case).collect()
    }
}

/// A measurement in progress: clocks, CPU, disk and RSS at the start.
struct Meter {
    started: Instant,
    rss: u64,
    cpu: f64,
    lane: Option<f64>,
    written: Option<u64>,
    rss_reset: bool,
}

impl Meter {
    fn start() -> Meter {
        Meter {
            rss_reset: sysinfo::reset_peak_rss(),
            rss: sysinfo::current_rss(),
            cpu: sysinfo::process_cpu_seconds(),
            lane: sysinfo::thread_cpu_seconds("seedbank-lane"),
            written: sysinfo::disk_write_bytes(),
            started: Instant::now(),
        }
    }

    fn stop(self, bytes: u64, files: u64) -> Phase {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        let lane_now = sysinfo::thread_cpu_seconds("seedbank-lane");
        Phase {
            seconds,
            bytes,
            files,
            mb_per_sec: bytes as f64 / seconds / 1e6,
            peak_rss_bytes: if self.rss_reset {
                sysinfo::peak_rss()
            } else {
                0
            },
            start_rss_bytes: self.rss,
            cpu_seconds: sysinfo::process_cpu_seconds() - self.cpu,
            // The lane thread of a store opened within the phase starts from 0.
            lane_cpu_seconds: lane_now.map(|now| now - self.lane.unwrap_or(0.0)),
            disk_write_bytes: sysinfo::disk_write_bytes()
                .zip(self.written)
                .map(|(after, before)| after.saturating_sub(before)),
        }
    }
}

/// The inputs on disk.
struct Inputs {
    large: PathBuf,
    small: PathBuf,
    small_bytes: u64,
}

/// Writes the large file and the directory of small files, reproducibly from `seed`, and
/// syncs them (`sync`) so no writeback of theirs overlaps a measurement.
fn write_inputs(dir: &Path, spec: &FilesSpec, seed: u64) -> std::io::Result<Inputs> {
    let large = dir.join("large.bin");
    let mut rng = StdRng::seed_from_u64(seed ^ 0xf11e);
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&large)?);
        let mut chunk = vec![0u8; 1 << 20];
        let mut left = spec.file_bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            rng.fill_bytes(&mut chunk[..n]);
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.into_inner()?.sync_all()?;
    }
    let small = dir.join("small");
    std::fs::create_dir(&small)?;
    let mut small_bytes = 0u64;
    for i in 0..spec.small_files {
        let mut data = vec![0u8; spec.small_sizes.sample(&mut rng)];
        rng.fill_bytes(&mut data);
        small_bytes += data.len() as u64;
        let path = small.join(format!("f{i:05}.bin"));
        std::fs::write(&path, &data)?;
    }
    // One sync for the lot: an fsync per small file would take minutes. Best effort.
    let _ = std::process::Command::new("sync").status();
    Ok(Inputs {
        large,
        small,
        small_bytes,
    })
}

/// Opens a fresh store with its index in `dir`.
async fn open(dir: &Path, options: &Options) -> anyhow::Result<Files> {
    std::fs::create_dir_all(dir)?;
    let mut config = Config {
        synchronous: options.engines.synchronous,
        ..Config::default()
    };
    if let Some(bytes) = options.files_batch_bytes {
        config.batch.max_bytes = bytes;
    }
    let store = Store::open(dir.join("files.db"), config)?;
    Ok(Files::new(
        Index::open(store, IndexConfig::default()).await?,
    ))
}

/// Closes the store and deletes its directory.
async fn discard(files: Files, dir: &Path) -> anyhow::Result<()> {
    files.index().store().close().await?;
    drop(files);
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// Reads every byte of `root` (a file), returning the count.
async fn cat_file(files: &Files, root: &Cid) -> anyhow::Result<u64> {
    let mut reader = files.cat(root, 0, None).await?;
    let mut read = 0u64;
    while let Some(chunk) = reader.next_chunk().await? {
        read += chunk.len() as u64;
    }
    Ok(read)
}

/// The CIDs of the files an add stored (the file itself, or every file of a directory).
fn file_entries(added: &seedbank_files::Added) -> Vec<Cid> {
    added
        .entries
        .iter()
        .filter(|e| e.kind == Kind::File)
        .map(|e| e.cid)
        .collect()
}

/// Add, warm cat and (with `car`) export of one input into a fresh store in `dir`.
struct AddedRun {
    root: Cid,
    blocks: u64,
    add: Phase,
    add_store: StoreFigures,
    cat: Phase,
    export: Option<Phase>,
    car_bytes: u64,
}

async fn add_and_cat(
    input: &Path,
    dir: &Path,
    export_to: Option<&Path>,
    options: &Options,
) -> anyhow::Result<AddedRun> {
    let files = open(dir, options).await?;
    let opts = AddOptions::new(options.files_profile);
    let meter = Meter::start();
    let added = files.add_path(input, &opts).await?;
    let file_cids = file_entries(&added);
    let add = meter.stop(added.bytes, file_cids.len() as u64);
    let add_store = StoreFigures::of(&files.index().store().stats());
    // Warm-up pass, then the timed one.
    let mut warm = 0u64;
    for cid in &file_cids {
        warm += cat_file(&files, cid).await?;
    }
    anyhow::ensure!(
        warm == added.bytes,
        "cat read {warm} bytes of {}",
        added.bytes
    );
    let meter = Meter::start();
    let mut read = 0u64;
    for cid in &file_cids {
        read += cat_file(&files, cid).await?;
    }
    let cat = meter.stop(read, file_cids.len() as u64);
    let (export, car_bytes) = match export_to {
        Some(car_path) => {
            let meter = Meter::start();
            let file = tokio::fs::File::create(car_path).await?;
            let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
            let report = car::export_dag(files.index(), &added.root, &mut writer).await?;
            tokio::io::AsyncWriteExt::flush(&mut writer).await?;
            let file = writer.into_inner();
            file.sync_all().await?;
            anyhow::ensure!(report.missing == 0, "{} blocks missing", report.missing);
            (Some(meter.stop(added.bytes, 0)), report.car_bytes)
        }
        None => (None, 0),
    };
    discard(files, dir).await?;
    Ok(AddedRun {
        root: added.root,
        blocks: added.blocks,
        add,
        add_store,
        cat,
        export,
        car_bytes,
    })
}

/// Imports the CAR at `car_path` into a fresh store in `dir`, as `seedbank import` does.
async fn import(
    car_path: &Path,
    dir: &Path,
    payload: u64,
    files: u64,
    root: &Cid,
    options: &Options,
) -> anyhow::Result<(Phase, StoreFigures)> {
    let store = open(dir, options).await?;
    let meter = Meter::start();
    let reader = tokio::fs::File::open(car_path).await?;
    let mut opts = car::ImportOptions::default();
    if let Some(bytes) = options.files_batch_bytes {
        opts.batch_bytes = bytes;
    }
    let report = car::import(store.index(), tokio::io::BufReader::new(reader), opts).await?;
    let phase = meter.stop(payload, files);
    anyhow::ensure!(
        report.roots.first() == Some(root) && report.missing == 0,
        "import of {root}: roots {:?}, {} missing",
        report.roots,
        report.missing
    );
    let figures = StoreFigures::of(&store.index().store().stats());
    discard(store, dir).await?;
    Ok((phase, figures))
}

/// iroh-blobs `add_path` of `input` and a warm read back (feature `iroh-blobs`).
#[cfg(feature = "iroh-blobs")]
async fn iroh(input: &Path, dir: &Path) -> anyhow::Result<(Phase, Phase)> {
    use iroh_blobs::store::fs::FsStore;
    use tokio::io::AsyncReadExt as _;

    let size = std::fs::metadata(input)?.len();
    let store = FsStore::load(dir)
        .await
        .map_err(|e| anyhow::anyhow!("loading iroh-blobs store {}: {e:#}", dir.display()))?;
    let meter = Meter::start();
    let added = store.blobs().add_path(input).with_named_tag("file").await?;
    store.sync_db().await?;
    let add = meter.stop(size, 1);
    let read_all = || async {
        let mut reader = store.blobs().reader(added.hash);
        let mut buf = vec![0u8; 1 << 20];
        let mut read = 0u64;
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            read += n as u64;
        }
        anyhow::Ok(read)
    };
    read_all().await?;
    let meter = Meter::start();
    let read = read_all().await?;
    let cat = meter.stop(read, 1);
    anyhow::ensure!(read == size, "iroh-blobs read {read} bytes of {size}");
    store.shutdown().await?;
    std::fs::remove_dir_all(dir)?;
    Ok((add, cat))
}

/// Runs the files workload: `repeats` repetitions of the large file, then of the
/// directory (so the memory one input's phases leave with the allocator never shows in the
/// other's RSS).
///
/// # Errors
/// Any store, CAR or I/O error, or a root that differs between repetitions.
pub async fn run(options: &Options, disk_mb_per_sec: f64) -> anyhow::Result<FilesReport> {
    let spec = FilesSpec::of(options);
    let tmp = tempfile::tempdir_in(options.db_dir())?;
    let root = tmp.path().to_path_buf();
    let input_tmp = match &options.files_input_dir {
        Some(dir) => Some(tempfile::tempdir_in(dir)?),
        None => None,
    };
    let input_root = input_tmp
        .as_ref()
        .map_or(root.clone(), |t| t.path().to_path_buf());
    let inputs = {
        let (dir, spec, seed) = (input_root.join("input"), spec.clone(), options.seed);
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_inputs(&dir, &spec, seed)
        })
        .await??
    };
    let mut runs = Vec::new();
    for (case, input) in [
        (FilesCase::Large, &inputs.large),
        (FilesCase::Small, &inputs.small),
    ] {
        for rep in 0..spec.repeats {
            let load_average = sysinfo::load_average();
            let car_path = input_root.join(format!("{}.car", case.name()));
            let first = rep == 0;
            let import_first = !first && rep % 2 == 1;
            let store_dir = root.join("store");
            let expected = runs
                .iter()
                .find(|r: &&FilesRun| r.case == case)
                .map(|r| (r.root.clone(), r.add.bytes, r.add.files, r.car_bytes));
            let mut imported = None;
            if import_first {
                let (root_s, payload, files, _) = expected.clone().expect("first rep ran");
                let cid = Cid::try_from(root_s.as_str())?;
                imported =
                    Some(import(&car_path, &store_dir, payload, files, &cid, options).await?);
            }
            let added =
                add_and_cat(input, &store_dir, first.then_some(&*car_path), options).await?;
            if let Some((root_s, ..)) = &expected {
                anyhow::ensure!(
                    *root_s == added.root.to_string(),
                    "{} root changed between repetitions: {root_s} then {}",
                    case.name(),
                    added.root
                );
            }
            let (import_phase, import_store) = match imported {
                Some(i) => i,
                None => {
                    import(
                        &car_path,
                        &store_dir,
                        added.add.bytes,
                        added.add.files,
                        &added.root,
                        options,
                    )
                    .await?
                }
            };
            #[allow(unused_mut)] // set only with the `iroh-blobs` feature
            let (mut iroh_add, mut iroh_cat) = (None, None);
            #[cfg(feature = "iroh-blobs")]
            if case == FilesCase::Large
                && options
                    .compare
                    .contains(&super::engines::EngineKind::IrohBlobs)
            {
                let (a, c) = iroh(input, &root.join("iroh-blobs")).await?;
                (iroh_add, iroh_cat) = (Some(a), Some(c));
            }
            let run = FilesRun {
                case,
                rep,
                load_average,
                root: added.root.to_string(),
                blocks: added.blocks,
                add: added.add,
                add_store: added.add_store,
                cat: added.cat,
                import: import_phase,
                import_store,
                export: added.export,
                car_bytes: expected.map_or(added.car_bytes, |e| e.3),
                iroh_add,
                iroh_cat,
            };
            if options.progress {
                eprintln!("{}", run_line(&run, spec.repeats));
            }
            runs.push(run);
        }
    }
    drop(tmp);
    drop(input_tmp);
    Ok(FilesReport {
        spec,
        small_bytes: inputs.small_bytes,
        disk_mb_per_sec,
        runs,
    })
}

/// One line per input and repetition, for stderr.
fn run_line(r: &FilesRun, repeats: usize) -> String {
    let mut line = format!(
        "files {} {}/{}: add {:.0} MB/s, import {:.0} MB/s ({:.2}×), cat {:.0} MB/s, RSS {} / {}",
        r.case.name(),
        r.rep + 1,
        repeats,
        r.add.mb_per_sec,
        r.import.mb_per_sec,
        r.add_vs_import(),
        r.cat.mb_per_sec,
        bytes(r.add.peak_rss_bytes),
        bytes(r.cat.peak_rss_bytes),
    );
    if let Some(i) = &r.iroh_add {
        let _ = write!(line, ", iroh-blobs add {:.0} MB/s", i.mb_per_sec);
    }
    let _ = write!(line, "; load avg {}", r.load_average);
    line
}

/// `median [min–max]` of per-run values.
fn spread(values: &[f64], show: impl Fn(f64) -> String) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let m = median(values.iter().copied());
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() == 1 {
        show(m)
    } else {
        format!("{} [{}–{}]", show(m), show(lo), show(hi))
    }
}

fn mb(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

type Row = (&'static str, Box<dyn Fn(&[&FilesRun], f64) -> String>);

fn rows() -> Vec<Row> {
    let of = |f: fn(&FilesRun) -> Option<f64>, show: fn(f64) -> String| {
        Box::new(move |runs: &[&FilesRun], _: f64| {
            let v: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
            spread(&v, show)
        }) as Box<dyn Fn(&[&FilesRun], f64) -> String>
    };
    // The worst run's peak, with the RSS its phase started from.
    let worst = |f: fn(&FilesRun) -> Phase| {
        Box::new(move |runs: &[&FilesRun], _: f64| {
            runs.iter()
                .map(|r| f(r))
                .max_by_key(|p| p.peak_rss_bytes)
                .map_or("–".into(), |p| {
                    format!("{} ({})", bytes(p.peak_rss_bytes), bytes(p.start_rss_bytes))
                })
        }) as Box<dyn Fn(&[&FilesRun], f64) -> String>
    };
    let ratio = |v: f64| format!("{v:.2}×");
    let frac = |v: f64| format!("{v:.2}");
    let per_s = |v: f64| count(v);
    vec![
        ("add MB/s", of(|r| Some(r.add.mb_per_sec), mb)),
        (
            "add files/s",
            of(
                |r| (r.add.files > 1).then(|| r.add.files as f64 / r.add.seconds),
                per_s,
            ),
        ),
        (
            "import of its CAR, MB/s",
            of(|r| Some(r.import.mb_per_sec), mb),
        ),
        ("add / import", of(|r| Some(r.add_vs_import()), ratio)),
        (
            "add / disk line",
            Box::new(move |runs, disk| {
                let v: Vec<f64> = runs
                    .iter()
                    .map(|r| r.add.mb_per_sec / disk.max(1e-9))
                    .collect();
                spread(&v, frac)
            }),
        ),
        (
            "import / disk line",
            Box::new(move |runs, disk| {
                let v: Vec<f64> = runs
                    .iter()
                    .map(|r| r.import.mb_per_sec / disk.max(1e-9))
                    .collect();
                spread(&v, frac)
            }),
        ),
        ("cat MB/s, warm", of(|r| Some(r.cat.mb_per_sec), mb)),
        (
            "cat files/s, warm",
            of(
                |r| (r.cat.files > 1).then(|| r.cat.files as f64 / r.cat.seconds),
                per_s,
            ),
        ),
        (
            "export to CAR, MB/s",
            of(|r| r.export.map(|e| e.mb_per_sec), mb),
        ),
        ("peak RSS add (at start)", worst(|r| r.add)),
        ("peak RSS cat (at start)", worst(|r| r.cat)),
        ("peak RSS import (at start)", worst(|r| r.import)),
        (
            "CPU cores busy, add",
            of(|r| Some(r.add.cpu_seconds / r.add.seconds), frac),
        ),
        (
            "CPU cores busy, import",
            of(|r| Some(r.import.cpu_seconds / r.import.seconds), frac),
        ),
        (
            "lane CPU share, add",
            of(|r| r.add.lane_cpu_seconds.map(|c| c / r.add.seconds), frac),
        ),
        (
            "lane CPU share, import",
            of(
                |r| r.import.lane_cpu_seconds.map(|c| c / r.import.seconds),
                frac,
            ),
        ),
        (
            "disk writes / payload, add",
            of(
                |r| {
                    r.add
                        .disk_write_bytes
                        .map(|w| w as f64 / r.add.bytes.max(1) as f64)
                },
                frac,
            ),
        ),
        (
            "disk writes / payload, imp.",
            of(
                |r| {
                    r.import
                        .disk_write_bytes
                        .map(|w| w as f64 / r.import.bytes.max(1) as f64)
                },
                frac,
            ),
        ),
        (
            "commits, add / import",
            Box::new(|runs, _| {
                let a = median(runs.iter().map(|r| r.add_store.batches as f64));
                let i = median(runs.iter().map(|r| r.import_store.batches as f64));
                format!("{} / {}", count(a), count(i))
            }),
        ),
        (
            "COMMIT p50, add / import",
            Box::new(|runs, _| {
                let a: Vec<f64> = runs
                    .iter()
                    .map(|r| r.add_store.commit_p50_us as f64)
                    .collect();
                let i: Vec<f64> = runs
                    .iter()
                    .map(|r| r.import_store.commit_p50_us as f64)
                    .collect();
                format!(
                    "{} / {}",
                    super::format::ms(median(a) as u64),
                    super::format::ms(median(i) as u64)
                )
            }),
        ),
        (
            "checkpoints P/R/T, add",
            Box::new(|runs, _| {
                runs.first().map_or("–".into(), |r| {
                    let c = r.add_store.checkpoints;
                    format!("{}/{}/{}", c[0], c[1], c[2])
                })
            }),
        ),
        (
            "blocks",
            Box::new(|runs, _| runs.first().map_or("–".into(), |r| count(r.blocks as f64))),
        ),
        (
            "CAR bytes",
            Box::new(|runs, _| runs.first().map_or("–".into(), |r| bytes(r.car_bytes))),
        ),
        (
            "iroh-blobs add_path MB/s",
            of(|r| r.iroh_add.map(|p| p.mb_per_sec), mb),
        ),
        (
            "iroh-blobs read MB/s, warm",
            of(|r| r.iroh_cat.map(|p| p.mb_per_sec), mb),
        ),
        (
            "add / iroh-blobs add_path",
            of(
                |r| {
                    r.iroh_add
                        .map(|p| r.add.mb_per_sec / p.mb_per_sec.max(1e-9))
                },
                ratio,
            ),
        ),
        (
            "runs: add s",
            Box::new(|runs, _| {
                let s: Vec<String> = runs
                    .iter()
                    .map(|r| format!("{:.1}", r.add.seconds))
                    .collect();
                s.join("/")
            }),
        ),
        (
            "load avg (1 min) at runs",
            Box::new(|runs, _| {
                let v: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.load_average.split(' ').next()?.parse().ok())
                    .collect();
                spread(&v, |l| format!("{l:.2}"))
            }),
        ),
    ]
}

/// The files table: figures down, the two inputs across.
pub fn render(report: &FilesReport) -> String {
    const LABEL: usize = 30;
    const CELL: usize = 24;
    let s = &report.spec;
    let mut out = format!(
        "\n## files: {}, store batches ≤ {}; one file of {}; a directory of {} files of {} ({}); {} run(s), median [min–max]\n",
        s.profile,
        bytes(s.batch_bytes as u64),
        bytes(s.file_bytes),
        count(s.small_files as f64),
        s.small_sizes.describe(),
        bytes(report.small_bytes),
        s.repeats,
    );
    let large = report.runs_of(FilesCase::Large);
    let small = report.runs_of(FilesCase::Small);
    let _ = writeln!(
        out,
        "{:LABEL$}{:>CELL$}{:>CELL$}",
        "",
        format!("file of {}", bytes(s.file_bytes)),
        format!("{} files", count(s.small_files as f64))
    );
    let has_iroh = report.runs.iter().any(|r| r.iroh_add.is_some());
    for (label, cell) in rows() {
        if label.contains("iroh-blobs") && !has_iroh {
            continue;
        }
        let _ = writeln!(
            out,
            "{label:LABEL$}{:>CELL$}{:>CELL$}",
            cell(&large, report.disk_mb_per_sec),
            cell(&small, report.disk_mb_per_sec)
        );
    }
    let _ = writeln!(
        out,
        "disk line {:.0} MB/s; inputs read from the page cache; import: `car::import` with the CLI's defaults of the CAR `car::export_dag` wrote",
        report.disk_mb_per_sec
    );
    out
}

/// The files targets, judged on the medians.
pub fn targets(report: &FilesReport) -> Vec<Target> {
    let mut out = Vec::new();
    let disk = report.disk_mb_per_sec;
    for case in [FilesCase::Large, FilesCase::Small] {
        let runs = report.runs_of(case);
        let name = match case {
            FilesCase::Large => format!("files {}", bytes(report.spec.file_bytes)),
            FilesCase::Small => format!("files {} small", count(report.spec.small_files as f64)),
        };
        let mut checks = vec![Check {
            figure: "add vs import of its CAR".into(),
            goal: "≥ 0.90×".into(),
            runs: runs.iter().map(|r| r.add_vs_import()).collect(),
            higher_is_better: true,
            met: |r| r >= 0.90,
            show: |r| format!("{r:.2}×"),
            why_not: "nothing ran",
            beside: String::new(),
        }];
        if case == FilesCase::Large {
            checks.push(Check {
                figure: "sustained add / disk line".into(),
                goal: "≥ 0.30 (on 1 GiB)".into(),
                runs: runs
                    .iter()
                    .filter(|_| disk > 0.0 && report.spec.file_bytes >= 1 << 30)
                    .map(|r| r.add.mb_per_sec / disk)
                    .collect(),
                higher_is_better: true,
                met: |r| r >= 0.30,
                show: |r| format!("{r:.2}"),
                why_not: "sustained means a file of 1 GiB or more (--files-size), and a disk line",
                beside: format!(" (disk {disk:.0} MB/s)"),
            });
            checks.push(Check {
                figure: "cat, warm cache".into(),
                goal: "≥ 500 MB/s".into(),
                runs: runs.iter().map(|r| r.cat.mb_per_sec).collect(),
                higher_is_better: true,
                met: |v| v >= 500.0,
                show: |v| format!("{v:.0} MB/s"),
                why_not: "nothing ran",
                beside: String::new(),
            });
        }
        checks.push(Check {
            figure: "peak RSS, add and cat".into(),
            goal: "≤ 128 MiB".into(),
            runs: runs
                .iter()
                .map(|r| r.add.peak_rss_bytes.max(r.cat.peak_rss_bytes) as f64)
                .filter(|b| *b > 0.0)
                .collect(),
            higher_is_better: false,
            met: |b| b <= (128u64 << 20) as f64,
            show: |b| bytes(b as u64),
            why_not: "the peak RSS cannot be reset here",
            beside: String::new(),
        });
        out.extend(checks.into_iter().map(|c| c.judge(&name)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_show_the_median_and_the_range() {
        assert_eq!(spread(&[], mb), "–");
        assert_eq!(spread(&[120.0], mb), "120");
        assert_eq!(spread(&[120.0, 90.5, 150.0], mb), "120 [90.5–150]");
    }
}
