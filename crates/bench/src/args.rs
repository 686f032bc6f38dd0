//! Command-line options of the benchmark, shared by `seedbank bench` and `cargo bench`.

use std::path::PathBuf;
use std::time::Duration;

use super::engines::EngineKind;
use super::workload::WorkloadKind;
use super::Options;
use seedbank_blobstore::Synchronous;

/// A workload to run, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadArg {
    /// 1 KiB blobs.
    Small,
    /// 100 B – 64 KiB, mostly small.
    Mixed,
    /// 256 KiB – 2 MiB.
    Large,
    /// Background import + interactive puts + peer-row writes.
    SyncBurst,
    /// 1 GiB of 4 KiB blobs (not part of `all`).
    Sustained,
    /// 1 GiB of mixed sizes (not part of `all`).
    SustainedMixed,
    /// 10 steps of 1M blobs of 1 KiB: cost as the store grows (not part of `all`).
    Scale,
    /// UnixFS add and cat of a 1 GiB file and of 10,000 small files, against the disk line
    /// and `car::import` of the same blocks (not part of `all`).
    Files,
    /// Every workload.
    All,
}

/// `synchronous` for every engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncArg {
    /// An acknowledged write survives power loss (seedbank's default).
    Full,
    /// Consistent, but the last commits may roll back on power loss.
    Normal,
}

/// Options of `seedbank bench` (and of `cargo bench -p seedbank-bench --bench ingest -- …`).
///
/// A single short storm of small puts is `--workload small --rounds 1 --blobs-per-put 10`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Workloads to run, comma-separated.
    #[arg(
        long = "workload",
        value_enum,
        value_delimiter = ',',
        default_value = "all"
    )]
    pub workloads: Vec<WorkloadArg>,
    #[cfg_attr(
        not(feature = "iroh-blobs"),
        doc = "Engines to compare, comma-separated (default: limit, limit-bounded, naive, seedbank)."
    )]
    #[cfg_attr(
        feature = "iroh-blobs",
        doc = "Engines to compare, comma-separated (default: limit, limit-bounded, naive, seedbank, \
               iroh-blobs)."
    )]
    #[arg(long = "engine", value_enum, value_delimiter = ',')]
    pub engines: Vec<EngineKind>,
    /// Concurrent producers (1 to 1024).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub producers: u16,
    /// `put_many` calls per producer (default: per workload).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Blobs per `put_many` (default: 10; large: 1).
    #[arg(long)]
    pub blobs_per_put: Option<usize>,
    /// Fixed blob size in bytes instead of the workload's distribution.
    #[arg(long)]
    pub size: Option<usize>,
    /// Equal sources the producers are spread over (fairness figure).
    #[arg(long, default_value_t = 16)]
    pub sources: usize,
    /// Concurrent `info` readers.
    #[arg(long, default_value_t = 16)]
    pub info_readers: usize,
    /// Pause between one reader's `info` calls, µs.
    #[arg(long, default_value_t = 1000)]
    pub info_interval_us: u64,
    /// Blobs of the sync-burst background import.
    #[arg(long)]
    pub import_blobs: Option<usize>,
    /// Steps of `--workload scale` (default 10; quick 3).
    #[arg(long)]
    pub scale_steps: Option<usize>,
    /// Blobs per step of `--workload scale` (default 1,000,000; quick 3,000).
    #[arg(long)]
    pub scale_step_blobs: Option<usize>,
    /// Bytes of the files workload's large file, e.g. `256MiB` (default 1 GiB; quick 16 MiB).
    #[arg(long, value_parser = parse_bytes)]
    pub files_size: Option<u64>,
    /// Small files of the files workload (default 10,000; quick 200).
    #[arg(long)]
    pub files_count: Option<usize>,
    /// UnixFS profile of the files workload: unixfs-v1-2025, unixfs-v0-2015 or kubo-cidv1.
    #[arg(long, default_value = "unixfs-v1-2025")]
    pub files_profile: seedbank_files::Profile,
    /// The store's batch byte budget in the files workload, e.g. `16MiB` (default: the
    /// store's 4 MiB); the CAR import then reads batches of that size too. Shows what fewer,
    /// larger commits buy.
    #[arg(long, value_parser = parse_bytes)]
    pub files_batch_bytes: Option<u64>,
    /// Directory for the files workload's inputs and CAR (default: beside the databases),
    /// e.g. `/dev/shm` to keep 2 GiB of them off the disk under test. They are read from
    /// the page cache either way.
    #[arg(long)]
    pub files_input_dir: Option<PathBuf>,
    /// Runs per engine and workload; figures are medians (default 3, quick 1).
    #[arg(long)]
    pub repeat: Option<usize>,
    /// Small sizes and one run each: finishes in under a minute (CI smoke run).
    #[arg(long)]
    pub quick: bool,
    /// `synchronous` for every engine.
    #[arg(long, value_enum, default_value = "full")]
    pub synchronous: SyncArg,
    /// Connections in the naive engine's shared pool.
    #[arg(long, default_value_t = 16)]
    pub naive_pool: usize,
    /// Page size `limit-bounded` runs at (default: the store's, 4096); e.g. 65536 for 4 KiB
    /// blobs, which spill into overflow pages at 4 KiB.
    #[arg(long, value_parser = parse_page_size)]
    pub bounded_page_size: Option<u32>,
    /// Skip the seedbank run with detailed stats off (the stats overhead figure).
    #[arg(long)]
    pub no_stats_overhead: bool,
    /// Directory for the temporary databases (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw info latency over time (naive vs seedbank) as SVG to this file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

impl BenchArgs {
    /// The benchmark options these arguments ask for.
    pub fn options(&self) -> Options {
        let mut o = if self.quick {
            Options::quick()
        } else {
            Options::default()
        };
        o.scale = self.workloads.contains(&WorkloadArg::Scale);
        o.files = self.workloads.contains(&WorkloadArg::Files);
        if !self.workloads.contains(&WorkloadArg::All) {
            o.workloads = self
                .workloads
                .iter()
                .filter(|w| !matches!(w, WorkloadArg::Scale | WorkloadArg::Files))
                .map(|w| match w {
                    WorkloadArg::Small => WorkloadKind::Small,
                    WorkloadArg::Mixed => WorkloadKind::Mixed,
                    WorkloadArg::Large => WorkloadKind::Large,
                    WorkloadArg::SyncBurst
                    | WorkloadArg::All
                    | WorkloadArg::Scale
                    | WorkloadArg::Files => WorkloadKind::SyncBurst,
                    WorkloadArg::Sustained => WorkloadKind::Sustained,
                    WorkloadArg::SustainedMixed => WorkloadKind::SustainedMixed,
                })
                .collect();
        }
        if !self.engines.is_empty() {
            o.compare = self.engines.clone();
        }
        o.producers = self.producers.into();
        o.rounds = self.rounds;
        o.blobs_per_put = self.blobs_per_put;
        o.size = self.size;
        o.sources = self.sources.max(1);
        o.info_readers = self.info_readers;
        o.info_interval = Duration::from_micros(self.info_interval_us);
        if let Some(n) = self.import_blobs {
            o.import_blobs = n;
        }
        o.scale_steps = self.scale_steps.map(|n| n.max(1));
        o.scale_step_blobs = self.scale_step_blobs.map(|n| n.max(1));
        o.files_size = self.files_size;
        o.files_count = self.files_count;
        o.files_profile = self.files_profile;
        o.files_input_dir = self.files_input_dir.clone();
        o.files_batch_bytes = self.files_batch_bytes.map(|b| b.clamp(1, 1 << 30) as usize);
        if let Some(n) = self.repeat {
            o.repeats = n.max(1);
        }
        o.engines.synchronous = match self.synchronous {
            SyncArg::Full => Synchronous::Full,
            SyncArg::Normal => Synchronous::Normal,
        };
        o.engines.naive_pool = self.naive_pool.max(1);
        o.engines.bounded_page_size = self.bounded_page_size;
        o.stats_overhead = !self.no_stats_overhead;
        o.dir = self.dir.clone();
        o.progress = !self.no_progress;
        o
    }
}

/// A SQLite page size: a power of two from 512 to 65536.
fn parse_page_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if (512..=65536).contains(&n) && n.is_power_of_two() {
        Ok(n)
    } else {
        Err(format!("{n} is not a power of two from 512 to 65536"))
    }
}

/// A byte count: a number with an optional binary unit (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => return Err(format!("unknown unit {other:?} (K, M or G: binary)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_take_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("16 k"), Ok(16 << 10));
        assert!(parse_bytes("1.5G").is_err());
        assert!(parse_bytes("MiB").is_err());
    }
}
