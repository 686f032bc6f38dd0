//! Node and peer configuration, and binding the iroh endpoint they share.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::{presets, PortmapperConfig, QuicTransportConfig, VarInt};
use iroh::{Endpoint, EndpointId, RelayMode, SecretKey};

use crate::error::{Error, Result};
use crate::ALPN;

/// How a [`Node`](crate::Node) binds and serves. Start from [`NodeConfig::default`].
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Address to bind (default `127.0.0.1:0`: loopback, a free port).
    pub listen: SocketAddr,
    /// The node's identity; `None` generates a fresh one (the ticket then changes on every
    /// start: persist a key for a stable ticket).
    pub secret_key: Option<SecretKey>,
    /// Use iroh's public relays and address lookup (pkarr + DNS, n0's servers) so nodes
    /// behind NATs can reach each other over the internet (default `false`: offline first,
    /// nothing but the bound address is ever contacted or published).
    pub internet: bool,
    /// Only these remote endpoints may connect (default `None`: anyone).
    pub allow: Option<HashSet<EndpointId>>,
    /// Requests being read and answered at once across all connections (default 64): a
    /// request holds a slot from its header until its answer is built, not while the answer
    /// is written (see `max_send_bytes`). Past it a request is answered `Busy` at once, its
    /// body unread: nothing queues.
    pub max_inbound: usize,
    /// Requests being read and answered at once for one remote endpoint id, all its
    /// connections together (default 16; `max_inbound` if that is smaller). Past it that remote's
    /// requests are answered `Busy`, so one remote cannot take every slot.
    pub max_inbound_per_remote: usize,
    /// Answer bytes held for sending at once, across all answers being written (default
    /// 128 MiB): an answer reserves its size once built and keeps it until the remote has
    /// it (acknowledged, or stopped, or `request_timeout`). An answer that does not fit is
    /// dropped and `Busy` is sent instead. This bounds what remotes that do not read can
    /// pin, separately from `max_inbound`.
    pub max_send_bytes: usize,
    /// As `max_send_bytes`, for the answers to one remote endpoint id (default 40 MiB, two
    /// full fetch answers; `max_send_bytes` if that is smaller). Keep it above the largest answer the
    /// local peer gives (a default `Responder`'s fetch answers up to 16 MiB plus framing):
    /// a larger answer is always refused.
    pub max_send_bytes_per_remote: usize,
    /// Connections open at once (default 256). Past it a new connection is closed at once.
    pub max_connections: usize,
    /// Connections one remote endpoint id may have open at once (default 8;
    /// `max_connections` if that is smaller). Past it that remote's new connection is
    /// closed at once.
    pub max_connections_per_remote: usize,
    /// Streams (requests) one connection may have open at once (default 16; the QUIC
    /// stream limit, so a client past it waits for credit).
    pub max_streams_per_connection: u32,
    /// Distinct scopes one connection may ask about (default 1,024): bounds the haves
    /// snapshots one remote can make us build.
    pub max_scopes_per_connection: usize,
    /// A connection without traffic is closed after this (default 10 s; iroh keeps live
    /// connections alive). Also bounds a dial to an address nobody answers on.
    pub idle_timeout: Duration,
    /// Longest time to receive one request and to answer it (default 30 s).
    pub request_timeout: Duration,
    /// On shutdown, longest wait for in-flight requests (default 5 s).
    pub shutdown_grace: Duration,
    /// Outgoing requests (peers made with [`Node::peer`](crate::Node::peer)).
    pub peer: PeerConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret_key: None,
            internet: false,
            allow: None,
            max_inbound: 64,
            max_inbound_per_remote: 16,
            max_send_bytes: 128 << 20,
            max_send_bytes_per_remote: 40 << 20,
            max_connections: 256,
            max_connections_per_remote: 8,
            max_streams_per_connection: 16,
            max_scopes_per_connection: 1024,
            idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            peer: PeerConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Checks the limits: every count and budget at least 1, `max_inbound` within `u32`.
    /// (A per-remote limit larger than its node-wide one is the node-wide one.)
    ///
    /// # Errors
    /// [`Error::Config`] naming the first value out of range.
    pub fn validate(&self) -> Result<()> {
        let pairs = [
            ("max_inbound", self.max_inbound_per_remote, self.max_inbound),
            (
                "max_send_bytes",
                self.max_send_bytes_per_remote,
                self.max_send_bytes,
            ),
            (
                "max_connections",
                self.max_connections_per_remote,
                self.max_connections,
            ),
        ];
        for (name, per_remote, all) in pairs {
            if per_remote == 0 || all == 0 {
                return Err(Error::Config(format!(
                    "{name} and {name}_per_remote must be at least 1"
                )));
            }
        }
        if self.max_inbound > u32::MAX as usize {
            return Err(Error::Config("max_inbound must fit in a u32".into()));
        }
        if self.max_streams_per_connection == 0 {
            return Err(Error::Config(
                "max_streams_per_connection must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// How a [`NetPeer`](crate::NetPeer) talks to its remote.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Longest wait for a connection (default 3 s).
    pub connect_timeout: Duration,
    /// Longest wait for one answer, stream opening included (default 10 s). Discovery's
    /// own `round_timeout` usually cuts in first.
    pub request_timeout: Duration,
    /// After a failed connect, calls fail at once for this long instead of dialling again
    /// (default 1 s).
    pub retry_after: Duration,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Binds an iroh endpoint as `config` says, speaking seedbank's [`ALPN`].
///
/// Offline (the default): only `config.listen` is bound, relays are off, no address
/// lookup, no port mapping, so nothing leaves the given interface. With
/// `config.internet`, n0's relays and pkarr/DNS address lookup are enabled (what iroh's
/// `N0` preset does); this never waits for the relay.
///
/// # Errors
/// [`Error::Bind`] if the address cannot be bound.
pub async fn bind_endpoint(config: &NodeConfig) -> Result<Endpoint> {
    let transport = QuicTransportConfig::builder()
        .max_concurrent_bidi_streams(VarInt::from_u32(config.max_streams_per_connection))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .max_idle_timeout(Some(
            config
                .idle_timeout
                .try_into()
                .map_err(|_| Error::Config("idle_timeout out of range".into()))?,
        ))
        .build();
    let mut builder = if config.internet {
        Endpoint::builder(presets::N0)
    } else {
        Endpoint::builder(presets::Minimal)
            .relay_mode(RelayMode::Disabled)
            .clear_address_lookup()
            .portmapper_config(PortmapperConfig::Disabled)
    };
    builder = builder
        .clear_ip_transports()
        .bind_addr(config.listen)
        .map_err(|e| Error::Bind(Box::new(e)))?
        .transport_config(transport)
        .alpns(vec![ALPN.to_vec()]);
    if let Some(key) = &config.secret_key {
        builder = builder.secret_key(key.clone());
    }
    builder.bind().await.map_err(|e| Error::Bind(Box::new(e)))
}
