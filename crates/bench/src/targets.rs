//! seedbank's performance targets, checked against a report's medians.

use std::fmt::Write as _;

use serde::Serialize;

use super::engines::EngineKind;
use super::figures::median;
use super::format::bytes;
use super::format::ms;
use super::run::RunFigures;
use super::summary::{StatsOverhead, WorkloadReport};
use super::workload::WorkloadKind;
use seedbank_blobstore::Config;

/// Whether a run met a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The median met the goal.
    Met,
    /// The median missed the goal.
    Missed,
    /// The run could not measure the figure; [`Target::measured`] says why.
    NotMeasured,
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
    /// The median and the worst run (with naive's figure alongside where useful), or why
    /// nothing was measured.
    pub measured: String,
    /// Met or missed by the median, or not measured.
    pub verdict: Verdict,
}

/// WAL bound in WAL bytes: the store's own promise, [`Config::wal_bound_bytes`].
pub fn wal_bound() -> u64 {
    Config::default().wal_bound_bytes()
}

/// One figure per run of seedbank, and how to judge and print it.
pub(crate) struct Check {
    pub(crate) figure: String,
    pub(crate) goal: String,
    /// One value per run; empty when nothing was measured.
    pub(crate) runs: Vec<f64>,
    /// Larger values are better (throughput ratios, fairness).
    pub(crate) higher_is_better: bool,
    pub(crate) met: fn(f64) -> bool,
    pub(crate) show: fn(f64) -> String,
    /// Said instead of a figure when `runs` is empty.
    pub(crate) why_not: &'static str,
    /// Naive's figure (or another reference), shown beside.
    pub(crate) beside: String,
}

impl Check {
    pub(crate) fn judge(self, workload: &str) -> Target {
        let (measured, verdict) = if self.runs.is_empty() {
            (
                format!("not measured: {}", self.why_not),
                Verdict::NotMeasured,
            )
        } else {
            let median = median(self.runs.iter().copied());
            let worst = self.runs.iter().copied().fold(median, |w, v| {
                if self.higher_is_better {
                    w.min(v)
                } else {
                    w.max(v)
                }
            });
            let show = self.show;
            let text = format!(
                "{} (worst run {}){}",
                show(median),
                show(worst),
                self.beside
            );
            (text, Verdict::from((self.met)(median)))
        };
        Target {
            workload: workload.to_string(),
            figure: self.figure,
            goal: self.goal,
            measured,
            verdict,
        }
    }
}

/// Checks every target that applies to the workloads that ran.
pub fn evaluate(workloads: &[WorkloadReport]) -> Vec<Target> {
    let mut out = Vec::new();
    for w in workloads {
        let Some(sb) = w.engine(EngineKind::Seedbank) else {
            continue;
        };
        let naive = w.engine(EngineKind::Naive).map(|e| &e.median);
        let name = format!("{} @ {}", w.workload.name(), w.spec.producers);
        let runs = |f: fn(&RunFigures) -> Option<f64>| -> Vec<f64> {
            sb.runs.iter().filter_map(f).collect()
        };
        let us = |us: f64| ms(us as u64);
        let naive_beside = |f: fn(&RunFigures) -> u64| {
            naive.map_or(String::new(), |n| format!(" (naive {})", ms(f(n))))
        };
        let storm = !matches!(w.workload, WorkloadKind::SyncBurst);
        let mut checks = Vec::new();
        // Throughput ratios have goals for `small` and `mixed`; the other tables show theirs
        // without one. Ratios pair the runs of one repeat.
        if !matches!(w.workload, WorkloadKind::Large | WorkloadKind::SyncBurst) {
            for (to, goal, met) in [
                (
                    EngineKind::Limit,
                    "≥ 0.90×",
                    (|r| r >= 0.90) as fn(f64) -> bool,
                ),
                (EngineKind::LimitBounded, "≥ 1.0×", |r| r >= 1.0),
                (EngineKind::Naive, "≥ 3×", |r| r >= 3.0),
            ] {
                let Some(other) = w.engine(to) else { continue };
                checks.push(Check {
                    figure: format!("throughput vs {}", to.name()),
                    goal: goal.into(),
                    runs: sb
                        .runs
                        .iter()
                        .zip(&other.runs)
                        .filter(|(_, o)| o.blobs_per_sec > 0.0)
                        .map(|(s, o)| s.blobs_per_sec / o.blobs_per_sec)
                        .collect(),
                    higher_is_better: true,
                    met,
                    show: |r| format!("{r:.2}×"),
                    why_not: "the other engine stored nothing",
                    beside: String::new(),
                });
            }
        }
        // Every workload is a storm for the readers: sync-burst included.
        checks.push(Check {
            figure: "info p99 during the storm".into(),
            goal: "≤ 200 µs".into(),
            runs: runs(|r| (r.info_storm_us.count > 0).then_some(r.info_storm_us.p99 as f64)),
            higher_is_better: false,
            met: |p99| p99 <= 200.0,
            show: us,
            why_not: "no info call completed during the storm",
            beside: naive_beside(|n| n.info_storm_us.p99),
        });
        if !storm {
            checks.push(Check {
                figure: "interactive put p99 during bulk import".into(),
                goal: "≤ 15 ms".into(),
                runs: runs(|r| {
                    (r.interactive_put_us.count > 0).then_some(r.interactive_put_us.p99 as f64)
                }),
                higher_is_better: false,
                met: |p99| p99 <= 15_000.0,
                show: us,
                why_not: "no interactive put completed during the import",
                beside: naive_beside(|n| n.interactive_put_us.p99),
            });
        }
        checks.push(Check {
            figure: "SQLITE_BUSY".into(),
            goal: "0".into(),
            runs: runs(|r| Some(r.busy_errors as f64)),
            higher_is_better: false,
            met: |n| n == 0.0,
            show: |n| format!("{n:.0}"),
            why_not: "",
            beside: naive.map_or(String::new(), |n| {
                let sleeps = n.busy_waits.map_or("n/a".into(), |s| s.to_string());
                format!(" (naive {}, {sleeps} busy sleeps)", n.busy_errors)
            }),
        });
        if storm {
            checks.push(Check {
                figure: format!("Jain's index, {} equal sources", w.spec.sources),
                goal: "≥ 0.98".into(),
                runs: runs(|r| r.jain),
                higher_is_better: true,
                met: |j| j >= 0.98,
                show: |j| format!("{j:.3}"),
                why_not: "no source finished a put",
                beside: naive
                    .and_then(|n| n.jain)
                    .map_or(String::new(), |j| format!(" (naive {j:.3})")),
            });
        }
        checks.push(Check {
            figure: "WAL peak".into(),
            goal: format!("≤ {} (cap + one batch, WAL bytes)", bytes(wal_bound())),
            runs: runs(|r| Some(r.wal_peak_bytes as f64)),
            higher_is_better: false,
            met: |peak| peak <= wal_bound() as f64,
            show: |b| bytes(b as u64),
            why_not: "",
            beside: String::new(),
        });
        out.extend(checks.into_iter().map(|c| c.judge(&name)));
        if let Some(o) = &w.stats_overhead {
            out.push(stats_overhead_target(&name, o));
        }
    }
    out
}

/// The cost of detailed stats. Throughput pairs that disagree by more than twice the target
/// cannot show it is met; they can still show it is missed.
fn stats_overhead_target(workload: &str, o: &StatsOverhead) -> Target {
    let spread = o.pairs.iter().copied().fold(f64::NAN, f64::max)
        - o.pairs.iter().copied().fold(f64::NAN, f64::min);
    let (verdict, measured) = if o.throughput >= 0.02 {
        (Verdict::Missed, o.describe())
    } else if o.pairs.len() < 2 || spread.is_nan() || spread > 0.04 {
        let why = format!(
            "not measured: pairs spread {:.1}% > 4%, too noisy to show < 2% ({})",
            spread * 100.0,
            o.describe()
        );
        (Verdict::NotMeasured, why)
    } else {
        (Verdict::Met, o.describe())
    };
    Target {
        workload: workload.to_string(),
        figure: "detailed stats overhead".into(),
        goal: "< 2% of throughput".into(),
        measured,
        verdict,
    }
}

/// Renders the targets as a list.
pub fn render(targets: &[Target]) -> String {
    let mut out = String::from("\n## targets (seedbank: median, worst run)\n");
    for t in targets {
        let _ = writeln!(
            out,
            "{:6} {:14} {:40} {:34} {}",
            match t.verdict {
                Verdict::Met => "ok",
                Verdict::Missed => "MISSED",
                Verdict::NotMeasured => "n/m",
            },
            t.workload,
            t.figure,
            t.goal,
            t.measured
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overhead(pairs: &[f64]) -> StatsOverhead {
        StatsOverhead {
            throughput: median(pairs.iter().copied()),
            pairs: pairs.to_vec(),
            lane_cpu_per_blob: None,
        }
    }

    #[test]
    fn noise_never_hides_a_missed_stats_overhead() {
        let t = stats_overhead_target("w", &overhead(&[0.30, 0.35]));
        assert_eq!(t.verdict, Verdict::Missed);
        let t = stats_overhead_target("w", &overhead(&[0.30]));
        assert_eq!(t.verdict, Verdict::Missed);
    }

    #[test]
    fn an_unresolvable_small_overhead_is_not_measured_with_the_reason() {
        let t = stats_overhead_target("w", &overhead(&[-0.05, 0.01, 0.09]));
        assert_eq!(t.verdict, Verdict::NotMeasured);
        assert!(
            t.measured.starts_with("not measured: pairs spread"),
            "{}",
            t.measured
        );
        let t = stats_overhead_target("w", &overhead(&[0.005]));
        assert_eq!(t.verdict, Verdict::NotMeasured);
        let t = stats_overhead_target("w", &overhead(&[0.005, 0.01, 0.0]));
        assert_eq!(t.verdict, Verdict::Met);
    }

    #[test]
    fn a_check_without_samples_says_so_and_shows_the_worst_run_otherwise() {
        let check = |runs: Vec<f64>| Check {
            figure: "info p99".into(),
            goal: "≤ 1 ms".into(),
            runs,
            higher_is_better: false,
            met: |p99| p99 <= 1000.0,
            show: |us| ms(us as u64),
            why_not: "no info call completed",
            beside: String::new(),
        };
        let t = check(Vec::new()).judge("w");
        assert_eq!(t.verdict, Verdict::NotMeasured);
        assert_eq!(t.measured, "not measured: no info call completed");
        let t = check(vec![100.0, 200.0, 5000.0]).judge("w");
        assert_eq!(t.verdict, Verdict::Met);
        assert!(t.measured.contains("worst run 5.00 ms"), "{}", t.measured);
    }

    #[test]
    fn the_wal_target_checks_the_number_it_states() {
        let c = Config::default();
        let batch = (c.batch.max_bytes + c.request_max_bytes) as u64;
        assert_eq!(wal_bound(), c.wal_cap_bytes + batch + batch / 4);
    }
}
