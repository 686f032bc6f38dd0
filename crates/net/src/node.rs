//! A [`Node`]: one iroh endpoint serving the local peer on seedbank's ALPN, and dialling
//! remote nodes through the same endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, EndpointId, TransportAddr};
use seedbank_discovery::Peer;

use crate::config::{bind_endpoint, NodeConfig};
use crate::error::{Error, Result};
use crate::peer::NetPeer;
use crate::policy::{ServeAll, ServePolicy};
use crate::serve::{Handler, Protocol, ServeStats};
use crate::ticket::Ticket;
use crate::ALPN;

/// A seedbank node on the network: owns an iroh endpoint and serves `local` (usually the
/// store's `Responder`) to remote nodes on [`ALPN`]. Remote nodes are reached with
/// [`Node::peer`], through the same endpoint.
#[derive(Debug)]
pub struct Node {
    endpoint: Endpoint,
    router: Router,
    handler: Arc<Handler>,
    config: NodeConfig,
}

impl Node {
    /// Binds as `config` says and starts serving `local` to everyone (see
    /// [`Node::spawn_with_policy`] to restrict what remotes may read).
    ///
    /// # Errors
    /// [`Error::Bind`] if the endpoint cannot be bound, [`Error::Config`] for an invalid
    /// configuration.
    pub async fn spawn(local: Arc<dyn Peer>, config: NodeConfig) -> Result<Node> {
        Node::spawn_with_policy(local, Arc::new(ServeAll), config).await
    }

    /// Binds as `config` says and serves `local` to the remotes `policy` lets read.
    ///
    /// # Errors
    /// [`Error::Bind`] if the endpoint cannot be bound, [`Error::Config`] for an invalid
    /// configuration.
    pub async fn spawn_with_policy(
        local: Arc<dyn Peer>,
        policy: Arc<dyn ServePolicy>,
        config: NodeConfig,
    ) -> Result<Node> {
        config.validate()?;
        let endpoint = bind_endpoint(&config).await?;
        let handler = Arc::new(Handler::new(local, policy, config.clone()));
        let router = Router::builder(endpoint.clone())
            .accept(ALPN, Protocol(handler.clone()))
            .spawn();
        Ok(Node {
            endpoint,
            router,
            handler,
            config,
        })
    }

    /// This node's endpoint id (its public key).
    pub fn id(&self) -> EndpointId {
        self.endpoint.id()
    }

    /// The iroh endpoint, for apps that serve other protocols beside seedbank's.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The node's ticket: its id and the addresses it is bound to (for an unspecified bind
    /// address such as `0.0.0.0`, the addresses iroh found on the local interfaces; online,
    /// also its relay).
    pub fn ticket(&self) -> Ticket {
        let bound: Vec<SocketAddr> = self
            .endpoint
            .bound_sockets()
            .into_iter()
            .filter(|a| !a.ip().is_unspecified())
            .collect();
        if bound.is_empty() || self.config.internet {
            return Ticket::new(self.endpoint.addr());
        }
        Ticket::new(EndpointAddr::from_parts(
            self.id(),
            bound.into_iter().map(TransportAddr::Ip),
        ))
    }

    /// A [`Peer`] for the node behind `ticket`, dialling from this node's endpoint (so the
    /// remote sees this node's id, which its allowlist and policy judge).
    pub fn peer(&self, ticket: &Ticket) -> NetPeer {
        NetPeer::new(
            self.endpoint.clone(),
            ticket.clone(),
            self.config.peer.clone(),
        )
    }

    /// Remembers `ticket` to hand out when remotes ask for peers (peer exchange; newest
    /// first, at most [`MAX_PEERS`](crate::protocol::MAX_PEERS)).
    pub fn add_known_peer(&self, ticket: Ticket) {
        if ticket.id() != self.id() {
            self.handler.add_known(ticket);
        }
    }

    /// Counters of the serving side.
    pub fn stats(&self) -> ServeStats {
        self.handler.stats()
    }

    /// Stops gracefully: stops accepting connections, answers new requests `Busy`, waits
    /// up to `shutdown_grace` for requests in flight to be delivered, then closes the
    /// endpoint (bounded too: a dial still pending would hold it for seconds).
    ///
    /// # Errors
    /// [`Error::Shutdown`] if the router task failed.
    pub async fn shutdown(self) -> Result<()> {
        let grace = self.config.shutdown_grace + Duration::from_secs(1);
        match tokio::time::timeout(grace, self.router.shutdown()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Shutdown(Box::new(e))),
            Err(_) => {
                tracing::debug!("endpoint close took longer than the grace period");
                Ok(())
            }
        }
    }
}
