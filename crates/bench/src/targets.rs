//! seedbank's performance targets, checked against a report's medians.

use std::fmt::Write as _;

use serde::Serialize;

use super::engines::EngineKind;
use super::format::bytes;
use super::format::ms;
use super::run::RunFigures;
use super::summary::WorkloadReport;
use super::workload::WorkloadKind;
use seedbank_blobstore::Config;

/// Whether a run met a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// The difference to measure is smaller than the run-to-run noise seen in this run.
    Inconclusive,
}

impl From<bool> for Verdict {
    fn from(met: bool) -> Self {
        if met {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }
}

/// One target and whether the run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// Workload the figure comes from.
    pub workload: String,
    /// What is measured.
    pub figure: String,
    /// The goal, in words.
    pub goal: String,
    /// What this run measured (with naive's figure alongside where useful).
    pub measured: String,
    /// Met, missed, or lost in the noise.
    pub verdict: Verdict,
}

/// WAL bound: the cap plus one full batch of blob bytes, with a quarter more for page
/// headers and index pages.
pub fn wal_bound() -> u64 {
    let c = Config::default();
    // A batch closes once its bytes reach the budget: at most the budget plus the request
    // that crossed it; a quarter more for page headers and index pages.
    let batch = (c.batch.max_bytes + c.request_max_bytes) as u64;
    c.wal_cap_bytes + batch * 5 / 4
}

/// Checks every target that applies to the workloads that ran.
pub fn evaluate(workloads: &[WorkloadReport]) -> Vec<Target> {
    let mut out = Vec::new();
    for w in workloads {
        let Some(sb) = w.engine(EngineKind::Seedbank) else {
            continue;
        };
        let naive = w.engine(EngineKind::Naive).map(|e| &e.median);
        let m = &sb.median;
        let name = format!("{} @ {}", w.workload.name(), w.spec.producers);
        let mut push = |figure: &str, goal: &str, measured: String, met: bool| {
            let verdict = Verdict::from(met);
            out.push(Target {
                workload: name.clone(),
                figure: figure.into(),
                goal: goal.into(),
                measured,
                verdict,
            });
        };
        // "(naive X)" beside a seedbank latency, when naive ran.
        let naive_beside = |f: fn(&RunFigures) -> u64| {
            naive.map_or(String::new(), |n| format!(" (naive {})", ms(f(n))))
        };
        let storm = !matches!(w.workload, WorkloadKind::SyncBurst);
        // Throughput ratios have goals for `small` and `mixed`; the other tables show theirs
        // without one.
        let ratio_goal = matches!(w.workload, WorkloadKind::Small | WorkloadKind::Mixed);
        let ratio = |to| w.ratio(EngineKind::Seedbank, to).filter(|_| ratio_goal);
        if let Some(r) = ratio(EngineKind::Limit) {
            push(
                "throughput vs limit",
                "≥ 0.90×",
                format!("{r:.2}×"),
                r >= 0.90,
            );
        }
        if let Some(r) = ratio(EngineKind::Naive) {
            push("throughput vs naive", "≥ 3×", format!("{r:.2}×"), r >= 3.0);
        }
        if m.info_storm_us.count > 0 {
            let naive_p99 = naive_beside(|n| n.info_storm_us.p99);
            push(
                "info p99 during the storm",
                "≤ 1 ms",
                format!("{}{naive_p99}", ms(m.info_storm_us.p99)),
                m.info_storm_us.p99 <= 1000,
            );
        }
        if !storm && m.interactive_put_us.count > 0 {
            let naive_p99 = naive_beside(|n| n.interactive_put_us.p99);
            push(
                "interactive put p99 during bulk import",
                "≤ 20 ms",
                format!("{}{naive_p99}", ms(m.interactive_put_us.p99)),
                m.interactive_put_us.p99 <= 20_000,
            );
        }
        let naive_busy = naive.map_or(String::new(), |n| {
            format!(" (naive {}, {} busy sleeps)", n.busy_errors, n.busy_waits)
        });
        push(
            "SQLITE_BUSY",
            "0",
            format!("{}{naive_busy}", m.busy_errors),
            m.busy_errors == 0,
        );
        if let Some(j) = m.jain {
            let naive_j = naive
                .and_then(|n| n.jain)
                .map_or(String::new(), |j| format!(" (naive {j:.3})"));
            push(
                &format!("Jain's index, {} equal sources", w.spec.sources),
                "≥ 0.98",
                format!("{j:.3}{naive_j}"),
                j >= 0.98,
            );
        }
        let bound = wal_bound();
        push(
            "WAL peak",
            &format!("≤ cap + one batch ({})", bytes(bound)),
            bytes(m.wal_peak_bytes),
            m.wal_peak_bytes <= bound,
        );
        if let Some(o) = &w.stats_overhead {
            push(
                "detailed stats overhead",
                "< 2% of throughput",
                o.describe(),
                o.throughput < 0.02,
            );
            // Pairs that disagree by more than twice the target cannot resolve it.
            let spread = o.pairs.iter().copied().fold(f64::NAN, f64::max)
                - o.pairs.iter().copied().fold(f64::NAN, f64::min);
            if o.pairs.len() < 2 || spread > 0.04 {
                if let Some(t) = out.last_mut() {
                    t.verdict = Verdict::Inconclusive;
                }
            }
        }
    }
    out
}

/// Renders the targets as a list.
pub fn render(targets: &[Target]) -> String {
    let mut out = String::from("\n## targets (seedbank, medians)\n");
    for t in targets {
        let _ = writeln!(
            out,
            "{:6} {:14} {:40} {:28} {}",
            match t.verdict {
                Verdict::Met => "ok",
                Verdict::Missed => "MISSED",
                Verdict::Inconclusive => "noise",
            },
            t.workload,
            t.figure,
            t.goal,
            t.measured
        );
    }
    out
}
