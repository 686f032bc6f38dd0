//! What a benchmark produced, and its rendering as text tables.

use std::fmt::Write as _;

use serde::Serialize;

use super::disk::DiskFigures;
use super::engines::EngineKind;
use super::figures::Latency;
use super::files::FilesReport;
use super::format::{bytes, count, ms};
use super::run::RunFigures;
use super::scale::ScaleReport;
use super::summary::{EngineReport, WorkloadReport};
use super::sysinfo::Machine;
use super::targets::Target;
use super::Options;

/// Everything one `seedbank bench` measured; `--json` writes this.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Machine, date and SQLite version.
    pub machine: Machine,
    /// The benchmark directory's durable sequential write bandwidth, measured in this run.
    pub disk: DiskFigures,
    /// The files workload, when it ran.
    pub files: Option<FilesReport>,
    /// The scale workload's steps, when it ran.
    pub scale: Option<ScaleReport>,
    /// The settings used.
    pub options: Options,
    /// One entry per workload run.
    pub workloads: Vec<WorkloadReport>,
    /// seedbank's performance targets, checked against the medians.
    pub targets: Vec<Target>,
    /// Wall time of the whole benchmark, s.
    pub total_seconds: f64,
    /// Load averages when the benchmark ended.
    pub load_average_end: String,
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
        (
            "payload / disk",
            Box::new(|w, e| {
                w.disk_mb_per_sec
                    .filter(|d| *d > 0.0)
                    .map_or("–".into(), |d| format!("{:.2}", e.median.mb_per_sec / d))
            }),
        ),
        ("vs limit", ratio(EngineKind::Limit)),
        ("vs limit-bounded", ratio(EngineKind::LimitBounded)),
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
    #[cfg(feature = "iroh-blobs")]
    {
        let at = rows
            .iter()
            .position(|(l, _)| *l == "vs naive")
            .map_or(0, |i| i + 1);
        rows.insert(at, ("vs iroh-blobs", ratio(EngineKind::IrohBlobs)));
    }
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
    rows.extend(where_time_goes(burst));
    rows.extend::<[(&'static str, Cell); 13]>([
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
            // Amplification: every byte goes to the WAL and again through the checkpoint,
            // and a row also dirties index pages.
            "disk writes / payload",
            Box::new(|_, e| {
                e.median.disk_write_bytes.map_or("–".into(), |w| {
                    format!("{:.2}", w as f64 / e.median.bytes.max(1) as f64)
                })
            }),
        ),
        (
            "checkpointer CPU per blob",
            Box::new(|_, e| {
                e.median.checkpointer_cpu_seconds.map_or("–".into(), |c| {
                    format!("{:.1} µs", c * 1e6 / e.median.blobs.max(1) as f64)
                })
            }),
        ),
        (
            // For limit and limit-bounded, the SQL work alone: the floor for the lane's.
            "process CPU per blob",
            Box::new(|_, e| {
                format!(
                    "{:.1} µs",
                    e.median.cpu_seconds * 1e6 / e.median.blobs.max(1) as f64
                )
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
            Box::new(|_, e| {
                e.median
                    .busy_waits
                    .map_or("n/a".into(), |n| count(n as f64))
            }),
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

/// Rows read from seedbank's own `Stats` (the median run's): where a write's time goes,
/// so a missed target can be traced to commits, batch holds or checkpoint pauses.
fn where_time_goes(burst: bool) -> Vec<(&'static str, Cell)> {
    let micros = |pointer: &'static str| -> Cell {
        Box::new(move |_, e| {
            e.median
                .details
                .pointer(pointer)
                .and_then(serde_json::Value::as_u64)
                .map_or("–".into(), ms)
        })
    };
    let mut rows: Vec<(&'static str, Cell)> = vec![
        ("COMMIT p50 (fsync)", micros("/commit_us/p50")),
        ("COMMIT p99 (fsync)", micros("/commit_us/p99")),
        ("batch hold p99", micros("/batch_hold_us/p99")),
        (
            "checkpoints P/R/T",
            Box::new(|_, e| {
                let wal = e.median.details.get("wal");
                let n = |k: &str| {
                    wal.and_then(|w| w.get(k))
                        .and_then(serde_json::Value::as_u64)
                };
                match (n("passive"), n("rewind"), n("truncate")) {
                    (Some(p), Some(r), Some(t)) => format!("{p}/{r}/{t}"),
                    _ => "–".into(),
                }
            }),
        ),
        ("lane waits on the WAL", {
            Box::new(|_, e| {
                e.median
                    .details
                    .pointer("/wal/lane_waits")
                    .and_then(serde_json::Value::as_u64)
                    .map_or("–".into(), |n| count(n as f64))
            })
        }),
    ];
    if burst {
        // Classes are listed in priority order: interactive first.
        rows.push((
            "interactive queue wait p99",
            micros("/classes/0/queue_wait_us/p99"),
        ));
        rows.push((
            "interactive batch hold p99",
            micros("/classes/0/hold_us/p99"),
        ));
    }
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
    let mut out = report
        .files
        .as_ref()
        .map_or(String::new(), super::files::render);
    out.push_str(
        &report
            .scale
            .as_ref()
            .map_or(String::new(), super::scale::render),
    );
    out.push_str(&super::targets::render(&report.targets));
    let d = &report.disk;
    let _ = writeln!(
        out,
        "\ndisk  {:.0} MB/s durable sequential writes ({} in 1 MiB writes, fdatasync every {}); \"payload / disk\" rows divide by it",
        d.mb_per_sec,
        bytes(d.bytes),
        bytes(d.sync_every)
    );
    let _ = writeln!(
        out,
        "\ntotal {:.0} s; load avg {} at end",
        report.total_seconds, report.load_average_end
    );
    out
}
