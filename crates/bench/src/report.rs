//! What a benchmark produced: per-workload, per-engine figures (medians across repeats), the
//! targets of issues 3 and 6, and their rendering as text tables.

use std::fmt::Write as _;

use serde::Serialize;

use super::engines::EngineKind;
use super::figures::{median, median_opt, median_u64, Latency};
use super::run::{PeerFigures, RunFigures};
use super::sysinfo::Machine;
use super::targets::Target;
use super::workload::{bytes, Spec, WorkloadKind};
use super::Options;

/// Everything one `seedbank bench` measured; `--json` writes this.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Machine, date and SQLite version.
    pub machine: Machine,
    /// The settings used.
    pub options: Options,
    /// One entry per workload run.
    pub workloads: Vec<WorkloadReport>,
    /// The targets of issues 3 and 6, checked against the medians.
    pub targets: Vec<Target>,
    /// Wall time of the whole benchmark, s.
    pub total_seconds: f64,
    /// Load averages when the benchmark ended.
    pub load_average_end: String,
}

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
    };
    m.busy_errors = worst(|r| r.busy_errors);
    m.busy_waits = u(|r| r.busy_waits);
    m.transactions = u(|r| r.transactions);
    m.wal_peak_bytes = worst(|r| r.wal_peak_bytes);
    m.peak_rss_bytes = worst(|r| r.peak_rss_bytes);
    m.cpu_seconds = f(|r| r.cpu_seconds);
    m.lane_cpu_seconds = median_opt(runs.iter().map(|r| r.lane_cpu_seconds));
    m.checkpointer_cpu_seconds = median_opt(runs.iter().map(|r| r.checkpointer_cpu_seconds));
    m.jain = median_opt(runs.iter().map(|r| r.jain));
    m
}

/// A latency in µs, ms or s, whichever reads best.
pub fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if us < 1000 {
        format!("{us} µs")
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// Thousands separated by commas.
fn count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

type Cell = Box<dyn Fn(&WorkloadReport, &EngineReport) -> String>;

/// The table rows: label and how to render one engine's cell.
fn rows(burst: bool) -> Vec<(&'static str, Cell)> {
    let lat = |f: fn(&RunFigures) -> Latency, p: fn(&Latency) -> u64| -> Cell {
        Box::new(move |_, e| {
            let l = f(&e.median);
            if l.count == 0 {
                "–".into()
            } else {
                ms(p(&l))
            }
        })
    };
    let ratio = |to: EngineKind| -> Cell {
        Box::new(move |w, e| {
            w.ratio(e.engine, to)
                .map_or("–".into(), |r| format!("{r:.2}×"))
        })
    };
    let mut rows: Vec<(&'static str, Cell)> = vec![
        ("blobs/s", Box::new(|_, e| count(e.median.blobs_per_sec))),
        (
            "MB/s",
            Box::new(|_, e| format!("{:.1}", e.median.mb_per_sec)),
        ),
        ("vs limit", ratio(EngineKind::Limit)),
        ("vs naive", ratio(EngineKind::Naive)),
        ("info p50, storm", lat(|r| r.info_storm_us, |l| l.p50)),
        ("info p99, storm", lat(|r| r.info_storm_us, |l| l.p99)),
        ("info max, storm", lat(|r| r.info_storm_us, |l| l.max)),
        ("info p50, idle", lat(|r| r.info_idle_us, |l| l.p50)),
        ("info p99, idle", lat(|r| r.info_idle_us, |l| l.p99)),
        ("info max, idle", lat(|r| r.info_idle_us, |l| l.max)),
        (
            "interactive put p50",
            lat(|r| r.interactive_put_us, |l| l.p50),
        ),
        (
            "interactive put p99",
            lat(|r| r.interactive_put_us, |l| l.p99),
        ),
    ];
    if burst {
        rows.push((
            "peer rows applied/asked",
            Box::new(|_, e| {
                let p = &e.median.peer_writes;
                format!("{}/{}", count(p.applied as f64), count(p.issued as f64))
            }),
        ));
        rows.push((
            "peer rows coalesced",
            Box::new(|_, e| count(e.median.peer_writes.coalesced as f64)),
        ));
        rows.push((
            "peer rows dropped (BUSY)",
            Box::new(|_, e| count(e.median.peer_writes.dropped as f64)),
        ));
        rows.push((
            "peer row write p99",
            lat(|r| r.peer_writes.latency_us, |l| l.p99),
        ));
    }
    rows.extend::<[(&'static str, Cell); 10]>([
        (
            "CPU, cores busy",
            Box::new(|_, e| format!("{:.2}", e.median.cpu_seconds / e.median.seconds)),
        ),
        (
            "lane CPU, share of storm",
            Box::new(|_, e| {
                e.median.lane_cpu_seconds.map_or("–".into(), |c| {
                    format!("{:.0}%", c / e.median.seconds * 100.0)
                })
            }),
        ),
        (
            "lane CPU per blob",
            Box::new(|_, e| {
                e.median
                    .lane_us_per_blob()
                    .map_or("–".into(), |us| format!("{us:.1} µs"))
            }),
        ),
        (
            "SQLITE_BUSY (worst run)",
            Box::new(|_, e| count(e.median.busy_errors as f64)),
        ),
        (
            "busy-handler sleeps",
            Box::new(|_, e| count(e.median.busy_waits as f64)),
        ),
        (
            "write transactions",
            Box::new(|_, e| count(e.median.transactions as f64)),
        ),
        (
            "WAL peak (worst run)",
            Box::new(|_, e| bytes(e.median.wal_peak_bytes)),
        ),
        (
            "Jain's index, sources",
            Box::new(|_, e| e.median.jain.map_or("–".into(), |j| format!("{j:.3}"))),
        ),
        (
            "peak RSS (worst run)",
            Box::new(|_, e| bytes(e.median.peak_rss_bytes)),
        ),
        (
            "runs",
            Box::new(|_, e| {
                let secs: Vec<String> =
                    e.runs.iter().map(|r| format!("{:.1}", r.seconds)).collect();
                format!("{} ({} s)", e.runs.len(), secs.join("/"))
            }),
        ),
    ]);
    rows
}

/// Renders one workload as a table: figures down, engines across.
pub fn render_workload(w: &WorkloadReport) -> String {
    const LABEL: usize = 26;
    const CELL: usize = 18;
    let mut out = String::new();
    let _ = writeln!(out, "\n## {}: {}", w.workload.name(), w.spec.describe());
    let _ = write!(out, "{:LABEL$}", "");
    for e in &w.engines {
        let _ = write!(out, "{:>CELL$}", e.engine.name());
    }
    out.push('\n');
    for (label, cell) in rows(w.spec.burst.is_some()) {
        let _ = write!(out, "{label:LABEL$}");
        for e in &w.engines {
            let _ = write!(out, "{:>CELL$}", cell(w, e));
        }
        out.push('\n');
    }
    if let Some(o) = &w.stats_overhead {
        let _ = write!(out, "detailed stats cost: {}", o.describe());
        if let Some(c) = o.lane_cpu_per_blob {
            let _ = write!(out, "; lane CPU per blob {:+.1}%", c * 100.0);
        }
        out.push('\n');
    }
    out
}

/// The header: machine, SQLite and settings.
pub fn render_header(machine: &Machine, options: &Options) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# seedbank ingest benchmark — {}", machine.date);
    let _ = writeln!(
        out,
        "machine   {} × {} ({} RAM), {}",
        machine.cpus,
        machine.cpu,
        bytes(machine.memory_bytes),
        machine.os
    );
    let _ = writeln!(
        out,
        "sqlite    {} (bundled), databases in {}",
        machine.sqlite, machine.db_dir
    );
    let _ = writeln!(out, "load avg  {} at start", machine.load_average);
    for line in options.describe() {
        let _ = writeln!(out, "settings  {line}");
    }
    out
}

/// The whole report as text.
pub fn render(report: &BenchReport) -> String {
    let mut out = render_header(&report.machine, &report.options);
    for w in &report.workloads {
        out.push_str(&render_workload(w));
    }
    out.push_str(&render_footer(report));
    out
}

/// The targets and the closing line.
pub fn render_footer(report: &BenchReport) -> String {
    let mut out = super::targets::render(&report.targets);
    let _ = writeln!(
        out,
        "\ntotal {:.0} s; load avg {} at end",
        report.total_seconds, report.load_average_end
    );
    out
}
