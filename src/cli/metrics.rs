//! `serve --metrics ADDR`: the stats in Prometheus text format, through the `metrics`
//! facade and metrics-exporter-prometheus's HTTP listener.

use std::net::SocketAddr;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;

/// Installs the Prometheus recorder and starts its HTTP listener on `addr` (on the current
/// tokio runtime). Fails if the address cannot be bound.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .with_context(|| format!("cannot serve metrics on {addr}"))
}
