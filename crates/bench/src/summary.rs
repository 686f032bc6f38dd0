//! What one workload measured: per-engine figures, medians across repeats.

use serde::Serialize;

use super::engines::EngineKind;
use super::figures::{median, median_opt, median_u64, Latency};
use super::run::{PeerFigures, RunFigures};
use super::workload::{Spec, WorkloadKind};

/// The engines' figures on one workload.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    /// Which workload.
    pub workload: WorkloadKind,
    /// Its parameters.
    pub spec: Spec,
    /// One entry per engine, in table order.
    pub engines: Vec<EngineReport>,
    /// The cost of detailed stats, when seedbank also ran with them off.
    pub stats_overhead: Option<StatsOverhead>,
    /// The disk's durable sequential write bandwidth measured in the same run, MB/s.
    pub disk_mb_per_sec: Option<f64>,
}

/// The cost of `Config::detailed_stats`, from runs of seedbank with it on and off made back
/// to back (one pair per repeat).
#[derive(Clone, Debug, Serialize)]
pub struct StatsOverhead {
    /// Median over pairs of `1 - on / off` throughput (0.02 = 2% slower with stats).
    pub throughput: f64,
    /// Each pair's `1 - on / off`, in repeat order: their spread is this machine's noise.
    pub pairs: Vec<f64>,
    /// Median lane CPU per blob with stats over without, minus 1.
    pub lane_cpu_per_blob: Option<f64>,
}

impl StatsOverhead {
    /// Pairs the runs of `seedbank` and `seedbank-nostats` by repeat.
    pub fn of(w: &WorkloadReport) -> Option<StatsOverhead> {
        let on = w.engine(EngineKind::Seedbank)?;
        let off = w.engine(EngineKind::SeedbankNoStats)?;
        let pairs: Vec<f64> = on
            .runs
            .iter()
            .zip(&off.runs)
            .map(|(a, b)| 1.0 - a.blobs_per_sec / b.blobs_per_sec.max(1e-9))
            .collect();
        let cpu = |e: &EngineReport| median_opt(e.runs.iter().map(|r| r.lane_us_per_blob()));
        Some(StatsOverhead {
            throughput: median(pairs.iter().copied()),
            pairs,
            lane_cpu_per_blob: cpu(on).zip(cpu(off)).map(|(a, b)| a / b - 1.0),
        })
    }

    /// `1.6% (pairs -5.1%, 1.6%, 9.0%)`.
    pub fn describe(&self) -> String {
        let pairs: Vec<String> = self
            .pairs
            .iter()
            .map(|p| format!("{:.1}%", p * 100.0))
            .collect();
        format!(
            "{:.1}% of throughput (median of pairs: {})",
            self.throughput * 100.0,
            pairs.join(", ")
        )
    }
}

/// One engine's figures on one workload.
#[derive(Clone, Debug, Serialize)]
pub struct EngineReport {
    /// The engine.
    pub engine: EngineKind,
    /// Medians across runs (worst run for SQLITE_BUSY, WAL peak and RSS). The timeline,
    /// source shares and engine details are those of the run with the median throughput.
    pub median: RunFigures,
    /// Every run, timelines left out.
    pub runs: Vec<RunFigures>,
}

impl EngineReport {
    /// Summarises the runs of one engine.
    pub fn new(engine: EngineKind, mut runs: Vec<RunFigures>) -> EngineReport {
        let median = median_run(&runs);
        for r in &mut runs {
            r.timeline.clear();
            r.details = serde_json::Value::Null;
        }
        EngineReport {
            engine,
            median,
            runs,
        }
    }
}

impl WorkloadReport {
    /// The report of `engine`, if it ran.
    pub fn engine(&self, engine: EngineKind) -> Option<&EngineReport> {
        self.engines.iter().find(|e| e.engine == engine)
    }

    /// Median throughput of `a` over that of `b`.
    pub fn ratio(&self, a: EngineKind, b: EngineKind) -> Option<f64> {
        let (a, b) = (self.engine(a)?, self.engine(b)?);
        (b.median.blobs_per_sec > 0.0).then(|| a.median.blobs_per_sec / b.median.blobs_per_sec)
    }
}

impl RunFigures {
    /// Lane CPU per blob, µs (seedbank only).
    pub fn lane_us_per_blob(&self) -> Option<f64> {
        Some(self.lane_cpu_seconds? * 1e6 / self.blobs.max(1) as f64)
    }
}

/// Field-wise medians; bounds (busy, WAL, RSS, errors) take the worst run.
fn median_run(runs: &[RunFigures]) -> RunFigures {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| runs[a].blobs_per_sec.total_cmp(&runs[b].blobs_per_sec));
    let mut m = runs[order[runs.len() / 2]].clone();
    let f = |g: fn(&RunFigures) -> f64| median(runs.iter().map(g));
    let u = |g: fn(&RunFigures) -> u64| median_u64(runs.iter().map(g));
    let worst = |g: fn(&RunFigures) -> u64| runs.iter().map(g).max().unwrap_or(0);
    let lat =
        |g: fn(&RunFigures) -> Latency| Latency::median(&runs.iter().map(g).collect::<Vec<_>>());
    m.seconds = f(|r| r.seconds);
    m.blobs_per_sec = f(|r| r.blobs_per_sec);
    m.mb_per_sec = f(|r| r.mb_per_sec);
    m.info_storm_us = lat(|r| r.info_storm_us);
    m.info_idle_us = lat(|r| r.info_idle_us);
    m.interactive_put_us = lat(|r| r.interactive_put_us);
    m.info_errors = worst(|r| r.info_errors);
    m.peer_writes = PeerFigures {
        issued: u(|r| r.peer_writes.issued),
        applied: u(|r| r.peer_writes.applied),
        coalesced: u(|r| r.peer_writes.coalesced),
        dropped: u(|r| r.peer_writes.dropped),
        latency_us: lat(|r| r.peer_writes.latency_us),
        rows_stored: u(|r| r.peer_writes.rows_stored),
        writes_stored: u(|r| r.peer_writes.writes_stored),
    };
    m.busy_errors = worst(|r| r.busy_errors);
    m.busy_waits =
        median_opt(runs.iter().map(|r| r.busy_waits.map(|n| n as f64))).map(|n| n as u64);
    m.transactions = u(|r| r.transactions);
    m.wal_peak_bytes = worst(|r| r.wal_peak_bytes);
    m.peak_rss_bytes = worst(|r| r.peak_rss_bytes);
    m.cpu_seconds = f(|r| r.cpu_seconds);
    m.lane_cpu_seconds = median_opt(runs.iter().map(|r| r.lane_cpu_seconds));
    m.checkpointer_cpu_seconds = median_opt(runs.iter().map(|r| r.checkpointer_cpu_seconds));
    m.disk_write_bytes =
        median_opt(runs.iter().map(|r| r.disk_write_bytes.map(|b| b as f64))).map(|b| b as u64);
    m.jain = median_opt(runs.iter().map(|r| r.jain));
    m
}
