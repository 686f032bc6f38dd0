//! seedbank over the network: serve a store's blobs to other nodes and discover missing
//! blobs from them, over [iroh](https://docs.rs/iroh) QUIC connections (ed25519 endpoint
//! ids as the TLS identity). Offline first: by default a node binds only the address it is
//! given, with no relays, no address lookup and no port mapping, so it works on loopback
//! and air-gapped LANs; [`NodeConfig::internet`] turns on iroh's relays and lookup.
//!
//! - [`Node`]: owns the endpoint, serves the local [`Peer`](seedbank_discovery::Peer)
//!   (a [`Responder`](seedbank_discovery::Responder)) on [`ALPN`] with node-wide and
//!   per-remote limits on connections, requests being answered and answer bytes being sent
//!   (`Busy` past them, never a queue), per-connection stream and scope limits, an optional
//!   allowlist, a [`ServePolicy`] that also decides who gets the known peers (peer
//!   exchange); shuts down gracefully. [`SharePolicy`] serves only what named pins and scopes hold.
//! - [`NetPeer`]: discovery's `Peer` over one reused connection per remote, one stream per
//!   call, with timeouts and reconnects; every failure is a discovery error.
//! - [`Ticket`]: a printable node address (endpoint id + direct addresses).
//! - [`frame`], [`protocol`]: length-prefixed, versioned frames with a hard cap per kind,
//!   checked before anything is read or allocated.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use seedbank_blobstore::{Config, Store};
//! use seedbank_discovery::{
//!     Discovery, DiscoveryConfig, HavesCache, HavesConfig, Peer, Responder, ResponderConfig,
//!     Scope,
//! };
//! use seedbank_index::{Index, IndexConfig};
//! use seedbank_net::{Node, NodeConfig, Ticket};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let index = Index::open(Store::open("node.db", Config::default())?, IndexConfig::default())
//!     .await?;
//! let haves = HavesCache::new(index.clone(), HavesConfig::default());
//! let responder = Responder::new("local", haves.clone(), ResponderConfig::default());
//!
//! // Serve the store on 127.0.0.1 and print the ticket other nodes use to reach us.
//! let node = Node::spawn(Arc::new(responder), NodeConfig::default()).await?;
//! println!("{}", node.ticket());
//!
//! // Fetch a scope's missing blobs from a remote node given its ticket.
//! let ticket: Ticket = "endpoint...".parse()?;
//! let peers: Vec<Arc<dyn Peer>> = vec![Arc::new(node.peer(&ticket))];
//! let discovery = Discovery::new(haves, DiscoveryConfig::default());
//! let report = discovery.discover(&Scope::named("doc:1"), &peers).await?;
//! println!("complete: {}", report.complete);
//!
//! node.shutdown().await?;
//! index.store().close().await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
pub mod frame;
#[cfg(feature = "metrics")]
mod metrics;
mod node;
mod peer;
mod policy;
pub mod protocol;
mod serve;
mod share;
#[doc(hidden)]
pub mod testing;
mod ticket;

pub use config::{bind_endpoint, NodeConfig, PeerConfig};
pub use error::{Error, Result};
pub use iroh::{Endpoint, EndpointId, SecretKey};
pub use node::Node;
pub use peer::{NetPeer, PeerStats};
pub use policy::{ServeAll, ServePolicy};
pub use serve::ServeStats;
pub use share::SharePolicy;
pub use ticket::{Ticket, TicketError};

/// The ALPN of seedbank's sync protocol, version 1.
pub const ALPN: &[u8] = b"seedbank/sync/1";
