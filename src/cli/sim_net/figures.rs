//! Figures of the multi-process simulation: one [`RunFigures`] per repetition, then
//! medians with their min–max spread.

use serde::Serialize;

/// The local baseline: the same DAG imported from a CAR file into a fresh store.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ImportFigures {
    pub seconds: f64,
    pub cpu_seconds: Option<f64>,
}

/// One sync from the serving processes.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct SyncFigures {
    pub seconds: f64,
    pub blobs: u64,
    pub payload_bytes: u64,
    pub udp_bytes_sent: u64,
    pub udp_bytes_received: u64,
    pub reconcile_bytes: u64,
    pub rounds: u64,
    pub fetches: u64,
    pub peers_contacted: u64,
    pub client_cpu_seconds: Option<f64>,
    pub servers_cpu_seconds: Option<f64>,
    /// New connections in this sync, and the time their handshakes took together.
    pub connects: u64,
    pub connect_seconds: f64,
}

impl SyncFigures {
    pub fn wire_bytes(&self) -> u64 {
        self.udp_bytes_sent + self.udp_bytes_received
    }

    /// Bytes on the wire past the payload, in % of the payload.
    pub fn overhead_percent(&self) -> f64 {
        self.wire_bytes() as f64 * 100.0 / self.payload_bytes.max(1) as f64 - 100.0
    }

    pub fn mean_connect_ms(&self) -> Option<f64> {
        (self.connects > 0).then(|| self.connect_seconds * 1e3 / self.connects as f64)
    }
}

/// One repetition: the baseline, the first sync, and syncs with nothing missing.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RunFigures {
    pub import: ImportFigures,
    pub first: SyncFigures,
    /// The DAG again: complete here, so no peer is asked.
    pub again_dag: SyncFigures,
    /// The named scope holding the same blobs again: one reconciliation per peer.
    pub again_named: SyncFigures,
}

impl RunFigures {
    /// The first sync's speed as a fraction of the local import's.
    pub fn ratio(&self) -> f64 {
        self.import.seconds / self.first.seconds.max(1e-9)
    }
}

/// Median and range of one figure over the runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        Spread {
            median: seedbank_bench::median(v.iter().copied()),
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// `median (min–max)` with `decimals`, or the median alone for one run.
    pub fn show(&self, decimals: usize) -> String {
        if self.min == self.max {
            format!("{:.decimals$}", self.median)
        } else {
            format!(
                "{:.decimals$} ({:.decimals$}–{:.decimals$})",
                self.median, self.min, self.max
            )
        }
    }
}

/// Lines of text: one row per figure, medians and ranges over `runs`.
pub fn render(runs: &[RunFigures], dag_bytes: u64) -> Vec<String> {
    let s = |f: &dyn Fn(&RunFigures) -> f64| Spread::of(runs.iter().map(f));
    let mb = |bytes: u64, secs: f64| bytes as f64 / 1e6 / secs.max(1e-9);
    let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let mut out = vec![format!(
        "figures         median (min–max) over {} run(s)",
        runs.len()
    )];
    out.push(format!(
        "local import    {} s, {} MB/s (the same DAG from a CAR file into a fresh store)",
        s(&|r| r.import.seconds).show(3),
        s(&|r| mb(dag_bytes, r.import.seconds)).show(1),
    ));
    out.push(format!(
        "sync            {} s, {} blobs/s, {} MB/s, {}× local import",
        s(&|r| r.first.seconds).show(3),
        s(&|r| r.first.blobs as f64 / r.first.seconds.max(1e-9)).show(0),
        s(&|r| mb(r.first.payload_bytes, r.first.seconds)).show(1),
        s(&RunFigures::ratio).show(2),
    ));
    out.push(format!(
        "  on the wire   {} MB (UDP, both ways), overhead {} % of the payload",
        s(&|r| r.first.wire_bytes() as f64 / 1e6).show(2),
        s(&|r| r.first.overhead_percent()).show(1),
    ));
    out.push(format!(
        "  reconcile     {} KB in {} rounds; {} fetch requests",
        s(&|r| r.first.reconcile_bytes as f64 / 1e3).show(1),
        s(&|r| r.first.rounds as f64).show(0),
        s(&|r| r.first.fetches as f64).show(0),
    ));
    out.push(format!(
        "  cpu           client {} s, servers {} s (import: {} s)",
        s(&|r| opt(r.first.client_cpu_seconds)).show(2),
        s(&|r| opt(r.first.servers_cpu_seconds)).show(2),
        s(&|r| opt(r.import.cpu_seconds)).show(2),
    ));
    out.push(format!(
        "  connections   {} set up, {} ms each (QUIC + TLS handshake on loopback)",
        s(&|r| r.first.connects as f64).show(0),
        s(&|r| opt(r.first.mean_connect_ms())).show(2),
    ));
    let again = |name: &str, f: &dyn Fn(&RunFigures) -> SyncFigures| {
        format!(
            "{name:<15} {} ms, {} blobs, {} peers, {} rounds, {} KB on the wire, {} KB reconcile",
            s(&|r| f(r).seconds * 1e3).show(1),
            s(&|r| f(r).blobs as f64).show(0),
            s(&|r| f(r).peers_contacted as f64).show(0),
            s(&|r| f(r).rounds as f64).show(0),
            s(&|r| f(r).wire_bytes() as f64 / 1e3).show(1),
            s(&|r| f(r).reconcile_bytes as f64 / 1e3).show(1),
        )
    };
    out.push("nothing missing (a second sync, same connections):".to_string());
    out.push(again("  DAG", &|r| r.again_dag));
    out.push(again("  named scope", &|r| r.again_named));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_shows_its_median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.show(1), "2.0 (1.0–3.0)");
        assert_eq!(Spread::of([5.0]).show(0), "5");
    }

    #[test]
    fn overhead_is_wire_bytes_past_the_payload() {
        let f = SyncFigures {
            payload_bytes: 1000,
            udp_bytes_sent: 100,
            udp_bytes_received: 1150,
            ..SyncFigures::default()
        };
        assert!((f.overhead_percent() - 25.0).abs() < 1e-9);
    }
}
