//! Helpers for tests of this workspace (and of applications embedding it): an endpoint for
//! speaking the protocol by hand. Not part of the stable API.

use iroh::endpoint::{presets, PortmapperConfig};
use iroh::Endpoint;

/// A bare iroh endpoint on 127.0.0.1 (no relay, no port mapping, no ALPN of its own), for a
/// test that opens connections to a [`Node`](crate::Node) and writes frames itself.
///
/// # Panics
/// If the endpoint cannot be bound (a test cannot go on without it).
pub async fn loopback_endpoint() -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("127.0.0.1:0 is a valid bind address")
        .portmapper_config(PortmapperConfig::Disabled)
        .bind()
        .await
        .expect("binding an endpoint on 127.0.0.1")
}
