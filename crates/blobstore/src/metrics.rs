//! [`Stats`] published through the `metrics` facade, so an application picks its exporter
//! (Prometheus, StatsD, ...). Enabled by the `metrics` cargo feature.
//!
//! A snapshot is published as it is: counters with their absolute totals, gauges for
//! levels, and each latency's percentiles as gauges labelled `quantile` (the store keeps its
//! own HDR histograms; re-recording every sample through the facade would put a second
//! histogram on the lane's hot path). Call [`Stats::publish`] periodically, e.g. once per
//! scrape interval.

use metrics::{counter, gauge};

use crate::stats::{Percentiles, Stats};

impl Stats {
    /// Publishes this snapshot through the `metrics` facade under `seedbank_*` names.
    pub fn publish(&self) {
        let totals = [
            ("seedbank_blobs_written_total", self.blobs_written),
            ("seedbank_bytes_written_total", self.bytes_written),
            ("seedbank_dedup_hits_total", self.dedup_hits),
            ("seedbank_batches_total", self.batches),
            ("seedbank_requests_acked_total", self.requests_acked),
            ("seedbank_requests_failed_total", self.requests_failed),
            ("seedbank_requests_cancelled_total", self.requests_cancelled),
            ("seedbank_coalesced_total", self.coalesced),
            ("seedbank_sqlite_busy_total", self.sqlite_busy),
            ("seedbank_storage_errors_total", self.storage_errors),
            ("seedbank_lane_panics_total", self.lane_panics),
            ("seedbank_transactions_ended_total", self.transactions_ended),
            ("seedbank_reads_expired_total", self.reads_expired),
            ("seedbank_disk_full_total", self.disk_full),
            ("seedbank_wal_checkpoints_passive_total", self.wal.passive),
            ("seedbank_wal_checkpoints_rewind_total", self.wal.rewind),
            ("seedbank_wal_checkpoints_truncate_total", self.wal.truncate),
            ("seedbank_wal_checkpoint_failures_total", self.wal.failures),
            ("seedbank_wal_lane_waits_total", self.wal.lane_waits),
        ];
        for (name, value) in totals {
            counter!(name).absolute(value);
        }
        gauge!("seedbank_lane_utilisation").set(self.lane_utilisation);
        gauge!("seedbank_wal_bytes").set(self.wal.bytes as f64);
        gauge!("seedbank_wal_peak_bytes").set(self.wal.peak_bytes as f64);
        gauge!("seedbank_wal_cap_bytes").set(self.wal.cap_bytes as f64);
        quantiles("seedbank_batch_blobs", &[], &self.batch_blobs);
        quantiles("seedbank_batch_hold_us", &[], &self.batch_hold_us);
        quantiles("seedbank_commit_us", &[], &self.commit_us);
        for (kind, groups) in [("class", &self.classes), ("source", &self.sources)] {
            for g in groups {
                let labels = [(kind, g.name.clone())];
                counter!("seedbank_lane_acks_total", &labels).absolute(g.acks);
                counter!("seedbank_lane_blobs_total", &labels).absolute(g.blobs);
                counter!("seedbank_lane_bytes_total", &labels).absolute(g.bytes);
                counter!("seedbank_lane_errors_total", &labels).absolute(g.errors);
                gauge!("seedbank_lane_queued_requests", &labels).set(g.queued_requests as f64);
                gauge!("seedbank_lane_queued_bytes", &labels).set(g.queued_bytes as f64);
                quantiles("seedbank_lane_queue_wait_us", &labels, &g.queue_wait_us);
                quantiles("seedbank_lane_hold_us", &labels, &g.hold_us);
            }
        }
        for p in &self.pools {
            let labels = [("pool", p.name.clone())];
            gauge!("seedbank_pool_size", &labels).set(p.size as f64);
            counter!("seedbank_pool_reads_total", &labels).absolute(p.reads);
            quantiles("seedbank_pool_wait_us", &labels, &p.wait_us);
            quantiles("seedbank_pool_latency_us", &labels, &p.latency_us);
        }
    }
}

/// One gauge per percentile, labelled `quantile` as Prometheus summaries are.
fn quantiles(name: &'static str, labels: &[(&'static str, String)], p: &Percentiles) {
    for (q, v) in [
        ("0.5", p.p50),
        ("0.9", p.p90),
        ("0.99", p.p99),
        ("1", p.max),
    ] {
        let mut all: Vec<(&'static str, String)> = labels.to_vec();
        all.push(("quantile", q.to_string()));
        gauge!(name, &all).set(v as f64);
    }
}
