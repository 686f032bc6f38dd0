//! Workloads: who writes what, and the blob size distributions they draw from.
//!
//! Every engine of a workload gets the very same blobs (generated and hashed once, before any
//! clock starts), split the same way between producers.

use std::sync::Arc;

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use seedbank_blobstore::{codec, Blob, Priority};

use super::format::bytes;

/// The workloads of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// 1 KiB blobs from many producers.
    Small,
    /// 100 B – 64 KiB, log-uniform: mostly small, like document change blobs.
    Mixed,
    /// 256 KiB – 2 MiB, log-uniform: file chunks.
    Large,
    /// A background bulk import, interactive puts and best-effort peer-row writes at once.
    SyncBurst,
    /// 1 GiB of 4 KiB blobs: long enough for the WAL to cycle through its cap many times.
    Sustained,
    /// 1 GiB of `mixed` sizes, sustained.
    SustainedMixed,
}

impl WorkloadKind {
    /// The long workloads, run only when named (`--workload sustained,sustained-mixed`).
    pub const SUSTAINED: [WorkloadKind; 2] =
        [WorkloadKind::Sustained, WorkloadKind::SustainedMixed];

    /// The default workloads, in report order.
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::Small,
        WorkloadKind::Mixed,
        WorkloadKind::Large,
        WorkloadKind::SyncBurst,
    ];

    /// Name used in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Small => "small",
            WorkloadKind::Mixed => "mixed",
            WorkloadKind::Large => "large",
            WorkloadKind::SyncBurst => "sync-burst",
            WorkloadKind::Sustained => "sustained",
            WorkloadKind::SustainedMixed => "sustained-mixed",
        }
    }

    /// The workload's own blob sizes.
    pub fn sizes(self) -> SizeDist {
        match self {
            WorkloadKind::Small => SizeDist::Fixed(1024),
            WorkloadKind::Sustained => SizeDist::Fixed(4096),
            WorkloadKind::Mixed | WorkloadKind::SyncBurst | WorkloadKind::SustainedMixed => {
                SizeDist::LogUniform {
                    min: 100,
                    max: 64 * 1024,
                }
            }
            WorkloadKind::Large => SizeDist::LogUniform {
                min: 256 * 1024,
                max: 2 * 1024 * 1024,
            },
        }
    }
}

/// How blob sizes are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SizeDist {
    /// Every blob has this many bytes.
    Fixed(usize),
    /// `exp(uniform(ln min, ln max))` bytes: as many blobs of 100–1,000 B as of
    /// 1,000–10,000 B. For 100 B – 64 KiB the median is 2.5 KiB and the mean 10 KB.
    LogUniform {
        /// Smallest size, bytes.
        min: usize,
        /// Largest size, bytes (inclusive).
        max: usize,
    },
}

impl SizeDist {
    /// Draws one size.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::LogUniform { min, max } => {
                let (lo, hi) = ((min.max(1) as f64).ln(), (max.max(min) as f64).ln());
                let size = rng.gen_range(lo..=hi).exp().round() as usize;
                size.clamp(min, max)
            }
        }
    }

    /// Human description for the settings line.
    pub fn describe(&self) -> String {
        match *self {
            SizeDist::Fixed(n) => format!("{} each", bytes(n as u64)),
            SizeDist::LogUniform { min, max } => {
                format!("{}–{} log-uniform", bytes(min as u64), bytes(max as u64))
            }
        }
    }
}

/// The sync-burst scenario's extra writers.
#[derive(Clone, Debug, Serialize)]
pub struct Burst {
    /// Tasks writing "peer seen" rows (best effort, coalesced per peer in seedbank).
    pub peer_tasks: usize,
    /// Distinct peers those rows are about.
    pub peers: usize,
    /// Pause between one task's peer-row writes, µs.
    pub peer_interval_us: u64,
}

/// One workload, resolved to numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Spec {
    /// Which workload.
    pub kind: WorkloadKind,
    /// Concurrent producer tasks.
    pub producers: usize,
    /// `put_many` calls per producer.
    pub rounds: usize,
    /// Blobs per `put_many`.
    pub blobs_per_put: usize,
    /// Blob sizes.
    pub sizes: SizeDist,
    /// Producers are spread round-robin over this many equal sources (fairness figure).
    pub sources: usize,
    /// Priority class of the producers' puts.
    pub priority: Priority,
    /// Extra writers of the sync-burst scenario.
    pub burst: Option<Burst>,
}

impl Spec {
    /// Blobs the producers submit in total.
    pub fn total_blobs(&self) -> usize {
        self.producers * self.rounds * self.blobs_per_put
    }

    /// Source name of producer `p`.
    pub fn source_of(&self, p: usize) -> usize {
        p % self.sources.max(1)
    }

    /// Source label used in `PutOptions`.
    pub fn source_name(&self, source: usize) -> String {
        if self.burst.is_some() {
            "import".to_string()
        } else {
            format!("src-{source:02}")
        }
    }

    /// One line describing the workload.
    pub fn describe(&self) -> String {
        let who = if self.burst.is_some() {
            "import tasks"
        } else {
            "producers"
        };
        let mut line = format!(
            "{} {who} × {} put_many × {} blobs ({}), {} {} blobs",
            self.producers,
            self.rounds,
            self.blobs_per_put,
            self.sizes.describe(),
            self.total_blobs(),
            self.priority.name(),
        );
        if let Some(b) = &self.burst {
            line.push_str(&format!(
                "; {} peer-row writers over {} peers every {} µs",
                b.peer_tasks, b.peers, b.peer_interval_us
            ));
        } else if self.sources > 1 {
            line.push_str(&format!(" in {} equal sources", self.sources));
        }
        line
    }
}

/// The blobs of one workload, made and hashed before any engine runs.
pub struct BlobSet {
    /// `producers[p][r]` is producer `p`'s `r`-th `put_many`.
    pub producers: Vec<Vec<Vec<Blob>>>,
    /// Blobs that `info` readers look up, stored before the clock starts.
    pub targets: Arc<Vec<Blob>>,
    /// Single blobs for interactive puts (reused cyclically if a run needs more).
    pub interactive: Arc<Vec<Blob>>,
    /// Total blobs of the producers.
    pub blobs: u64,
    /// Total bytes of the producers' blobs.
    pub bytes: u64,
}

/// Blobs for interactive puts made per workload; a run needing more cycles through them.
const INTERACTIVE_POOL: usize = 2048;
/// Blobs the `info` readers look up.
const TARGETS: usize = 64;

impl BlobSet {
    /// Generates the workload's blobs, reproducibly from `seed`.
    pub fn generate(spec: &Spec, seed: u64) -> BlobSet {
        let producers: Vec<Vec<Vec<Blob>>> = (0..spec.producers)
            .map(|p| {
                let mut rng = StdRng::seed_from_u64(seed ^ (p as u64 + 1).wrapping_mul(0x9e37));
                (0..spec.rounds)
                    .map(|_| {
                        (0..spec.blobs_per_put)
                            .map(|_| {
                                let size = spec.sizes.sample(&mut rng);
                                random_blob(&mut rng, size)
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let (mut blobs, mut bytes) = (0u64, 0u64);
        for b in producers.iter().flatten().flatten() {
            blobs += 1;
            bytes += b.len() as u64;
        }
        let mut rng = StdRng::seed_from_u64(seed ^ 0x7a46e7);
        let targets = (0..TARGETS).map(|_| random_blob(&mut rng, 256)).collect();
        let interactive = (0..INTERACTIVE_POOL)
            .map(|_| random_blob(&mut rng, 1024))
            .collect();
        BlobSet {
            producers,
            targets: Arc::new(targets),
            interactive: Arc::new(interactive),
            blobs,
            bytes,
        }
    }
}

fn random_blob(rng: &mut StdRng, size: usize) -> Blob {
    let mut data = vec![0u8; size];
    rng.fill(&mut data[..]);
    Blob::new(codec::RAW, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_uniform_sizes_stay_in_range_and_are_mostly_small() {
        let dist = WorkloadKind::Mixed.sizes();
        let mut rng = StdRng::seed_from_u64(1);
        let sizes: Vec<usize> = (0..10_000).map(|_| dist.sample(&mut rng)).collect();
        assert!(sizes.iter().all(|&s| (100..=65536).contains(&s)));
        // Log-uniform over 100 B – 64 KiB: 57% of blobs are at most 4 KiB.
        let small = sizes.iter().filter(|&&s| s <= 4096).count();
        assert!(
            (5_400..6_000).contains(&small),
            "{small} of 10000 at most 4 KiB"
        );
    }

    #[test]
    fn byte_counts_print_with_binary_units() {
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
