//! Discovery's counters on the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`), under `seedbank_*` names beside the store's: an application installs the
//! exporter it likes and calls `publish` periodically, e.g. once per scrape interval.

use metrics::{counter, gauge};

use crate::{DiscoveryStats, HavesStats, ResponderStats};

impl ResponderStats {
    /// Publishes this snapshot as `seedbank_responder_*` counters.
    pub fn publish(&self) {
        for (name, value) in [
            ("seedbank_responder_reconciles_total", self.reconciles),
            ("seedbank_responder_busy_total", self.busy),
            ("seedbank_responder_fetches_total", self.fetches),
            ("seedbank_responder_blobs_sent_total", self.blobs_sent),
            ("seedbank_responder_bytes_sent_total", self.bytes_sent),
        ] {
            counter!(name).absolute(value);
        }
    }
}

impl HavesStats {
    /// Publishes this snapshot as `seedbank_haves_*` counters.
    pub fn publish(&self) {
        for (name, value) in [
            ("seedbank_haves_builds_total", self.builds),
            ("seedbank_haves_full_builds_total", self.full),
            ("seedbank_haves_incremental_builds_total", self.incremental),
            ("seedbank_haves_reused_builds_total", self.reused),
            ("seedbank_haves_hits_total", self.hits),
            ("seedbank_haves_empty_total", self.empty),
        ] {
            counter!(name).absolute(value);
        }
    }
}

impl DiscoveryStats {
    /// Publishes this snapshot as `seedbank_discovery_*` counters and a gauge of runs in
    /// flight.
    pub fn publish(&self) {
        counter!("seedbank_discovery_runs_total").absolute(self.runs);
        counter!("seedbank_discovery_joined_total").absolute(self.joined);
        counter!("seedbank_discovery_negative_hits_total").absolute(self.negative_hits);
        gauge!("seedbank_discovery_runs_in_flight").set(self.in_flight as f64);
    }
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn published_counters_carry_the_snapshot_values() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            ResponderStats {
                reconciles: 3,
                busy: 1,
                fetches: 2,
                blobs_sent: 40,
                bytes_sent: 4096,
            }
            .publish();
            DiscoveryStats {
                runs: 5,
                joined: 2,
                negative_hits: 1,
                in_flight: 1,
            }
            .publish();
        });
        let values: std::collections::HashMap<String, DebugValue> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| (key.key().name().to_string(), value))
            .collect();
        assert_eq!(
            values["seedbank_responder_bytes_sent_total"],
            DebugValue::Counter(4096)
        );
        assert_eq!(
            values["seedbank_discovery_runs_total"],
            DebugValue::Counter(5)
        );
        assert_eq!(
            values["seedbank_discovery_runs_in_flight"],
            DebugValue::Gauge(1.0.into())
        );
    }
}
