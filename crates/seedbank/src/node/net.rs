//! A [`Node`] on the network (feature `net`): serving it and syncing it from peers over
//! iroh (QUIC), with peer exchange and teardown handled here rather than by each app.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use seedbank_discovery::{Peer, Report, Responder, Scope};
use seedbank_net::{bind_endpoint, Endpoint, NetPeer, NodeConfig, ServeStats, Ticket};

use super::key::{load_or_create_key_at, write_atomically};
use super::Node;
use crate::error::{Error, Result};

/// How [`Node::serve`] serves.
#[derive(Clone, Debug, Default)]
pub struct ServeConfig {
    /// The transport's settings (listen address, allowlist, limits). Its `secret_key` is
    /// used when set; otherwise see `key_file`.
    pub net: NodeConfig,
    /// Where the node's key lives, created with mode 0600 on first use, so the ticket is
    /// the same across restarts (e.g. `<db>.key`, [`Node::key_file`]). `None` and no
    /// `net.secret_key`: a fresh identity each time.
    pub key_file: Option<PathBuf>,
    /// Tickets of other nodes to hand out when peers ask (peer exchange).
    pub known_peers: Vec<Ticket>,
    /// Also write the ticket, alone, to this file (atomically, mode 0644) once serving.
    pub ticket_file: Option<PathBuf>,
    /// Serve only what these pins reach and these scopes hold (`serve --share`; see
    /// [`SharePolicy`](seedbank_net::SharePolicy)); empty: everything. Under a share, the
    /// known peers (peer exchange) go only to the remotes of `net.allow`.
    pub share: Vec<String>,
}

/// A node being served: its ticket, its stats, and a graceful stop.
#[derive(Debug)]
pub struct Server {
    node: seedbank_net::Node,
    responder: Responder,
}

impl Server {
    /// The ticket peers dial this node with.
    pub fn ticket(&self) -> Ticket {
        self.node.ticket()
    }

    /// What serving did so far (connections, requests, refusals).
    pub fn stats(&self) -> ServeStats {
        self.node.stats()
    }

    /// The responder answering peers (its stats: reconciliations, blobs sent, builds).
    pub fn responder(&self) -> &Responder {
        &self.responder
    }

    /// Adds a ticket to hand out when peers ask (peer exchange).
    pub fn add_known_peer(&self, ticket: Ticket) {
        self.node.add_known_peer(ticket);
    }

    /// Stops accepting, lets requests in flight finish (up to the configured grace), and
    /// closes the endpoint. The store stays open.
    ///
    /// # Errors
    /// [`Error::Net`](crate::Error::Net) if the endpoint did not close cleanly.
    pub async fn shutdown(self) -> Result<()> {
        Ok(self.node.shutdown().await?)
    }
}

/// How [`Node::sync`] dials.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// The transport's settings for the dialing endpoint (default: any local address, a
    /// free port, offline).
    pub net: NodeConfig,
    /// Most peers one sync uses, given and learned by peer exchange together (default 64).
    pub max_peers: usize,
    /// Longest wait for a peer's peer-exchange answer (default 2 s).
    pub exchange_timeout: Duration,
    /// Most peers learned by peer exchange that one sync dials (default 16), taken in turn
    /// from each answering peer's list so one peer's list cannot fill them all. Given peers
    /// come first and never count against it.
    pub max_learned_dials: usize,
    /// IPFS Trustless Gateways to fetch from as well (`sync --gateway`): each is a peer of
    /// the same run (see [`seedbank_gateway::client`]). DAG scopes only. Default none.
    pub gateways: Vec<seedbank_gateway::client::Url>,
    /// Limits of the gateway requests (its `max_block_size` is raised or lowered to the
    /// store's `max_blob_size`).
    pub gateway: seedbank_gateway::client::GatewayClientConfig,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            net: NodeConfig {
                listen: SocketAddr::from(([0, 0, 0, 0], 0)),
                ..NodeConfig::default()
            },
            max_peers: 64,
            exchange_timeout: Duration::from_secs(2),
            max_learned_dials: 16,
            gateways: Vec::new(),
            gateway: Default::default(),
        }
    }
}

impl Node {
    /// `<db>.key` for the database at `db`: where [`ServeConfig::key_file`] usually points.
    pub fn key_file(db: &std::path::Path) -> PathBuf {
        super::key::key_path(db)
    }

    /// Serves this node (its [`Node::responder`]) over QUIC until [`Server::shutdown`].
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) for the key or ticket file,
    /// [`Error::Net`](crate::Error::Net) if the endpoint cannot bind.
    pub async fn serve(&self, config: ServeConfig) -> Result<Server> {
        let responder = self.responder("local");
        self.serve_peer(Arc::new(responder.clone()), responder, config)
            .await
    }

    /// Serves `local` (`responder` itself, or a test's wrapper of it that misbehaves) over
    /// QUIC.
    #[doc(hidden)]
    pub async fn serve_peer(
        &self,
        local: Arc<dyn Peer>,
        responder: Responder,
        mut config: ServeConfig,
    ) -> Result<Server> {
        if config.net.secret_key.is_none() {
            if let Some(file) = &config.key_file {
                config.net.secret_key = Some(load_or_create_key_at(file)?);
            }
        }
        let node = if config.share.is_empty() {
            seedbank_net::Node::spawn(local, config.net).await?
        } else {
            let allowed = config.net.allow.iter().flatten().copied();
            let policy = seedbank_net::SharePolicy::new(self.index().clone(), config.share)
                .with_peers_to(allowed);
            seedbank_net::Node::spawn_with_policy(local, Arc::new(policy), config.net).await?
        };
        for ticket in config.known_peers {
            node.add_known_peer(ticket);
        }
        let server = Server { node, responder };
        if let Some(file) = &config.ticket_file {
            let ticket = server.ticket().to_string();
            write_atomically(file, ticket.as_bytes(), 0o644).map_err(|source| Error::File {
                what: "write the ticket",
                path: file.clone(),
                source,
            })?;
        }
        Ok(server)
    }

    /// Fetches what `scope` is missing from the nodes of `tickets` and those they tell about
    /// (one bounded peer-exchange round), and from [`SyncConfig::gateways`], all in one
    /// discovery run, then closes every connection it opened. [`Report::complete`] says
    /// whether the scope is complete here now.
    ///
    /// # Errors
    /// [`Error::Net`](crate::Error::Net) if the dialing endpoint cannot bind,
    /// [`Error::Discovery`](crate::Error::Discovery) as [`Node::discover`], or with
    /// [`Config`](seedbank_discovery::Error::Config) for a gateway URL that is not http(s).
    pub async fn sync(
        &self,
        scope: &Scope,
        tickets: &[Ticket],
        config: &SyncConfig,
    ) -> Result<Report> {
        let endpoint = bind_endpoint(&config.net).await?;
        let peers = gather_peers(&endpoint, config, tickets).await;
        let mut dyn_peers: Vec<Arc<dyn Peer>> =
            peers.iter().map(|p| p.clone() as Arc<dyn Peer>).collect();
        match self.gateway_peers(config) {
            Ok(gateways) => dyn_peers.extend(gateways),
            Err(e) => {
                for p in &peers {
                    p.close().await;
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.close()).await;
                return Err(e);
            }
        }
        let result = self.discover(scope, &dyn_peers).await;
        for p in &peers {
            p.close().await;
        }
        // A dial still pending would hold the close for seconds: bound it.
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.close()).await;
        result
    }
}

impl Node {
    /// One [`GatewayPeer`](seedbank_gateway::client::GatewayPeer) per configured gateway,
    /// taking blocks up to this store's `max_blob_size`.
    fn gateway_peers(&self, config: &SyncConfig) -> Result<Vec<Arc<dyn Peer>>> {
        use seedbank_gateway::client::GatewayPeer;
        let mut limits = config.gateway.clone();
        limits.max_block_size = self.store().config().max_blob_size;
        config
            .gateways
            .iter()
            .map(|url| {
                GatewayPeer::new(url.clone(), limits.clone())
                    .map(|g| Arc::new(g) as Arc<dyn Peer>)
                    .map_err(|e| {
                        // The client's error stays the source (its text is still the reason).
                        Error::Discovery(seedbank_discovery::Error::config_caused(
                            "gateways",
                            e.to_string(),
                            e,
                        ))
                    })
            })
            .collect()
    }
}

/// The given peers plus those they tell about (one peer-exchange round, bounded by time
/// and by `max_peers`; learned peers never crowd out given ones).
async fn gather_peers(
    endpoint: &Endpoint,
    config: &SyncConfig,
    tickets: &[Ticket],
) -> Vec<Arc<NetPeer>> {
    let mut seen = HashSet::new();
    let mut peers = Vec::new();
    let dial = |ticket: Ticket| {
        Arc::new(NetPeer::new(
            endpoint.clone(),
            ticket,
            config.net.peer.clone(),
        ))
    };
    for t in tickets {
        if peers.len() < config.max_peers && seen.insert(t.id()) {
            peers.push(dial(t.clone()));
        }
    }
    let mut asks = tokio::task::JoinSet::new();
    for p in peers.clone() {
        let wait = config.exchange_timeout;
        asks.spawn(async move {
            tokio::time::timeout(wait, p.peers())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = asks.join_next().await {
        answers.push(answer.unwrap_or_default().into_iter());
    }
    // Round-robin over the answers: each answering peer's first ticket, then each one's
    // second, ... so a peer answering with many tickets cannot take every learned slot.
    let mut learned = 0;
    while learned < config.max_learned_dials && peers.len() < config.max_peers {
        let mut any = false;
        for answer in answers.iter_mut() {
            let Some(ticket) = answer.next() else {
                continue;
            };
            any = true;
            if learned < config.max_learned_dials
                && peers.len() < config.max_peers
                && seen.insert(ticket.id())
            {
                peers.push(dial(ticket));
                learned += 1;
            }
        }
        if !any {
            break;
        }
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedbank_gateway::client::ClientError;
    use std::error::Error as _;

    #[tokio::test]
    async fn a_gateway_url_the_client_refuses_keeps_the_clients_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path().join("db"), Default::default())
            .await
            .unwrap();
        let config = SyncConfig {
            gateways: vec!["ftp://gateway.example/".parse().unwrap()],
            ..SyncConfig::default()
        };
        let err = node.gateway_peers(&config).err().expect("ftp is refused");
        assert_eq!(
            err.to_string(),
            "invalid configuration: gateways: not a gateway URL (http:// or https://): \
             ftp://gateway.example/"
        );
        let cause = err.source().expect("the client's error is kept");
        assert!(
            matches!(
                cause.downcast_ref::<ClientError>(),
                Some(ClientError::BadUrl(_))
            ),
            "{cause:?}"
        );
        node.close().await.unwrap();
    }
}
