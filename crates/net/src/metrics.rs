//! The node's counters on the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`), beside the store's and discovery's `seedbank_*` names.

use metrics::{counter, gauge};

use crate::ServeStats;

impl ServeStats {
    /// Publishes this snapshot as `seedbank_serve_*` counters.
    pub fn publish(&self) {
        for (name, value) in [
            ("seedbank_serve_connections_total", self.connections),
            ("seedbank_serve_refused_total", self.refused),
            (
                "seedbank_serve_connections_limited_total",
                self.connections_limited,
            ),
            ("seedbank_serve_requests_total", self.requests),
            ("seedbank_serve_busy_total", self.busy),
            ("seedbank_serve_remote_limited_total", self.remote_limited),
            ("seedbank_serve_unsent_total", self.unsent),
            ("seedbank_serve_denied_total", self.denied),
            ("seedbank_serve_bad_requests_total", self.bad_requests),
        ] {
            counter!(name).absolute(value);
        }
        gauge!("seedbank_serve_send_bytes").set(self.send_bytes as f64);
        gauge!("seedbank_serve_send_bytes_peak").set(self.send_bytes_peak as f64);
    }
}
