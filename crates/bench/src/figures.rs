//! Small statistics: latency percentiles, medians across runs, Jain's fairness index.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles, µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median, µs.
    pub p50: u64,
    /// 99th percentile, µs.
    pub p99: u64,
    /// Largest sample, µs.
    pub max: u64,
}

impl Latency {
    /// Percentiles of a histogram of µs.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }

    /// Percentiles of raw µs samples.
    pub fn of_samples(samples: impl IntoIterator<Item = u64>) -> Self {
        let mut h = histogram();
        for s in samples {
            record(&mut h, s);
        }
        Latency::of(&h)
    }

    /// Field-wise median across runs (runs without samples are left out).
    pub fn median(runs: &[Latency]) -> Latency {
        let runs: Vec<&Latency> = runs.iter().filter(|l| l.count > 0).collect();
        if runs.is_empty() {
            return Latency::default();
        }
        let pick = |f: fn(&Latency) -> u64| median_u64(runs.iter().map(|l| f(l)));
        Latency {
            count: pick(|l| l.count),
            p50: pick(|l| l.p50),
            p99: pick(|l| l.p99),
            max: pick(|l| l.max),
        }
    }
}

/// An auto-resizing HDR histogram with 3 significant figures. Record with [`record`]:
/// `saturating_record` never resizes, so on this histogram it would clamp every value past
/// the initial range (about 2,000) to 2.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is valid")
}

/// Records one value, growing the histogram as needed.
pub fn record(h: &mut Histogram<u64>, value: u64) {
    h.record(value)
        .expect("an auto-resizing histogram grows to any u64");
}

/// Median of floats (mean of the middle two for an even count); 0 for none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Median of integers (rounded).
pub fn median_u64(values: impl IntoIterator<Item = u64>) -> u64 {
    median(values.into_iter().map(|x| x as f64)).round() as u64
}

/// Median of optional floats; `None` when no run has a value.
pub fn median_opt(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.into_iter().flatten().collect();
    (!v.is_empty()).then(|| median(v))
}

/// Jain's fairness index of shares: 1 when all are equal, 1/n when one gets everything.
pub fn jain(shares: &[f64]) -> f64 {
    let sum: f64 = shares.iter().sum();
    let squares: f64 = shares.iter().map(|x| x * x).sum();
    if squares == 0.0 {
        return 1.0;
    }
    sum * sum / (shares.len() as f64 * squares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_for_equal_shares_and_one_over_n_for_a_monopoly() {
        assert!((jain(&[5.0; 16]) - 1.0).abs() < 1e-12);
        let mut monopoly = [0.0; 16];
        monopoly[3] = 10.0;
        assert!((jain(&monopoly) - 1.0 / 16.0).abs() < 1e-12);
    }

    #[test]
    fn latencies_past_two_thousand_are_kept() {
        let l = Latency::of_samples([6_725, 21_614, 19_492]);
        assert_eq!((l.count, l.max / 100), (3, 216));
        assert!((19_400..19_600).contains(&l.p50), "{l:?}");
    }

    #[test]
    fn median_of_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_opt([None, Some(2.0)]), Some(2.0));
    }
}
