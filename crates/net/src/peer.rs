//! [`NetPeer`]: discovery's [`Peer`] over an iroh connection to a remote node.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cid::Cid;
use iroh::endpoint::Connection;
use iroh::Endpoint;
use seedbank_discovery::{Error, Message, Peer, PeerCall, Result, Scope};
use tokio::sync::Mutex;

use crate::config::PeerConfig;
use crate::frame::{self, FrameError, HEADER_LEN};
use crate::protocol::{FailCode, Request, Response, MAX_FETCH_CIDS};
use crate::ticket::Ticket;
use crate::ALPN;

/// Traffic counters of a [`NetPeer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerStats {
    /// Connections established (1 while the first one lives; more after reconnects).
    pub connects: u64,
    /// Time spent establishing those connections (QUIC and TLS handshakes), all together.
    pub connect_time: Duration,
    /// Requests sent.
    pub requests: u64,
    /// Frame bytes sent (headers and bodies).
    pub frame_bytes_sent: u64,
    /// Frame bytes received.
    pub frame_bytes_received: u64,
    /// UDP bytes sent on this peer's connections (QUIC and TLS overhead included).
    pub udp_bytes_sent: u64,
    /// UDP bytes received on this peer's connections.
    pub udp_bytes_received: u64,
}

/// A remote node as a discovery [`Peer`]: one QUIC connection, opened on first use and
/// reused, reopened after it failed (failing fast for `retry_after` after a failed
/// dial); one bidirectional stream per call; every call bounded by `request_timeout`.
/// Failures are discovery errors: [`Error::Transport`] (unreachable, refused, reset),
/// [`Error::Timeout`], [`Error::Busy`], [`Error::Protocol`] (malformed answer).
///
/// [`Peer::id`] is the remote's endpoint id (64 hex characters).
pub struct NetPeer {
    endpoint: Endpoint,
    ticket: Ticket,
    id: String,
    config: PeerConfig,
    conn: Mutex<ConnState>,
    counters: Counters,
}

enum ConnState {
    Idle,
    Open(Connection),
    Failed(Instant),
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    connect_micros: AtomicU64,
    requests: AtomicU64,
    frame_sent: AtomicU64,
    frame_received: AtomicU64,
    /// UDP bytes of connections already replaced.
    udp_sent_done: AtomicU64,
    udp_received_done: AtomicU64,
}

impl std::fmt::Debug for NetPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPeer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl NetPeer {
    /// A peer for the node behind `ticket`, dialling from `endpoint` (see
    /// [`bind_endpoint`](crate::bind_endpoint), or use [`Node::peer`](crate::Node::peer)).
    pub fn new(endpoint: Endpoint, ticket: Ticket, config: PeerConfig) -> Self {
        NetPeer {
            endpoint,
            id: ticket.id().to_string(),
            ticket,
            config,
            conn: Mutex::new(ConnState::Idle),
            counters: Counters::default(),
        }
    }

    /// The remote's ticket.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    /// Asks the remote for other peers it knows (peer exchange). Unparsable tickets in the
    /// answer are skipped.
    ///
    /// # Errors
    /// As any call: [`Error::Transport`], [`Error::Timeout`], [`Error::Busy`],
    /// [`Error::Protocol`].
    pub async fn peers(&self) -> Result<Vec<Ticket>> {
        match self.request(&Request::Peers, PeerCall::Peers).await? {
            Response::PeerList(tickets) => Ok(tickets
                .iter()
                .filter_map(|t| t.parse::<Ticket>().ok())
                .collect()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Traffic so far.
    pub async fn stats(&self) -> PeerStats {
        let c = &self.counters;
        let (mut sent, mut received) = (
            c.udp_sent_done.load(Relaxed),
            c.udp_received_done.load(Relaxed),
        );
        if let ConnState::Open(conn) = &*self.conn.lock().await {
            let s = conn.stats();
            sent += s.udp_tx.bytes;
            received += s.udp_rx.bytes;
        }
        PeerStats {
            connects: c.connects.load(Relaxed),
            connect_time: Duration::from_micros(c.connect_micros.load(Relaxed)),
            requests: c.requests.load(Relaxed),
            frame_bytes_sent: c.frame_sent.load(Relaxed),
            frame_bytes_received: c.frame_received.load(Relaxed),
            udp_bytes_sent: sent,
            udp_bytes_received: received,
        }
    }

    /// Closes the connection, if any (the next call reconnects).
    pub async fn close(&self) {
        let mut state = self.conn.lock().await;
        if let ConnState::Open(conn) = &*state {
            self.retire(conn);
            conn.close(0u32.into(), b"done");
        }
        *state = ConnState::Idle;
    }

    fn retire(&self, conn: &Connection) {
        let s = conn.stats();
        self.counters
            .udp_sent_done
            .fetch_add(s.udp_tx.bytes, Relaxed);
        self.counters
            .udp_received_done
            .fetch_add(s.udp_rx.bytes, Relaxed);
    }

    async fn connection(&self) -> Result<Connection> {
        let mut state = self.conn.lock().await;
        match &*state {
            ConnState::Open(conn) if conn.close_reason().is_none() => return Ok(conn.clone()),
            ConnState::Open(conn) => self.retire(conn),
            ConnState::Failed(at) if at.elapsed() < self.config.retry_after => {
                return Err(Error::transport(format!("{} unreachable", self.short())));
            }
            _ => {}
        }
        let dial = self.endpoint.connect(self.ticket.addr().clone(), ALPN);
        let started = Instant::now();
        match tokio::time::timeout(self.config.connect_timeout, dial).await {
            Ok(Ok(conn)) => {
                self.counters.connects.fetch_add(1, Relaxed);
                self.counters
                    .connect_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
                *state = ConnState::Open(conn.clone());
                Ok(conn)
            }
            Ok(Err(e)) => {
                *state = ConnState::Failed(Instant::now());
                Err(Error::transport_caused(
                    format!("cannot connect to {}", self.short()),
                    e,
                ))
            }
            Err(_) => {
                *state = ConnState::Failed(Instant::now());
                Err(Error::transport(format!(
                    "connecting to {} timed out",
                    self.short()
                )))
            }
        }
    }

    fn short(&self) -> &str {
        &self.id[..10]
    }

    async fn request(&self, request: &Request, op: PeerCall) -> Result<Response> {
        let conn = self.connection().await?;
        self.counters.requests.fetch_add(1, Relaxed);
        let (kind, body) = request.encode();
        let exchange = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(FrameError::stream)?;
            let written = async {
                frame::write(&mut send, kind, &body).await?;
                send.finish().map_err(FrameError::stream)
            }
            .await;
            self.counters
                .frame_sent
                .fetch_add((HEADER_LEN + body.len()) as u64, Relaxed);
            match written {
                Ok(()) => frame::read(&mut recv, |k| !k.is_request()).await,
                // A server at its limit answers `Busy` after the header and stops reading
                // the body: its answer is still there to read.
                Err(e) => frame::read(&mut recv, |k| !k.is_request())
                    .await
                    .map_err(|_| e),
            }
        };
        let (kind, body) = match tokio::time::timeout(self.config.request_timeout, exchange).await {
            Err(_) => {
                return Err(Error::Timeout {
                    peer: self.id.clone(),
                    op,
                })
            }
            Ok(Err(e)) if e.is_malformed() => return Err(self.protocol_caused("bad frame", e)),
            Ok(Err(e)) => {
                if let Some(reason) = conn.close_reason() {
                    return Err(Error::transport_caused(self.short(), reason));
                }
                return Err(Error::transport_caused(self.short(), e));
            }
            Ok(Ok(frame)) => frame,
        };
        self.counters
            .frame_received
            .fetch_add((HEADER_LEN + body.len()) as u64, Relaxed);
        let response = Response::decode_shared(kind, &body)
            .map_err(|e| self.protocol_caused("bad answer", e))?;
        match response {
            Response::Busy => Err(Error::Busy),
            Response::Failed(code, reason) => Err(Error::transport(format!(
                "{} refused: {}{reason}",
                self.short(),
                match code {
                    FailCode::Denied => "denied: ",
                    FailCode::BadRequest => "bad request: ",
                    FailCode::Internal => "",
                }
            ))),
            response => Ok(response),
        }
    }

    fn protocol(&self, reason: String) -> Error {
        Error::Protocol {
            peer: Some(self.id.clone()),
            reason,
            source: None,
        }
    }

    /// A protocol error of this peer caused by what decoding its answer found.
    fn protocol_caused(
        &self,
        reason: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::protocol_caused(Some(self.id.clone()), reason, source)
    }

    fn unexpected(&self, response: &Response) -> Error {
        self.protocol(format!("unexpected answer {:?}", response.encode().0))
    }
}

#[async_trait::async_trait]
impl Peer for NetPeer {
    fn id(&self) -> &str {
        &self.id
    }

    async fn reconcile(&self, scope: &Scope, message: Message) -> Result<Message> {
        match self
            .request(
                &Request::Reconcile(scope.clone(), message),
                PeerCall::Reconcile,
            )
            .await?
        {
            Response::Reconciled(reply) => Ok(reply),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        let mut out = Vec::new();
        // Requests stay within the protocol's per-request cap.
        for chunk in cids.chunks(MAX_FETCH_CIDS) {
            match self
                .request(&Request::Fetch(chunk.to_vec()), PeerCall::Fetch)
                .await?
            {
                Response::Blobs(blobs) => out.extend(blobs),
                other => return Err(self.unexpected(&other)),
            }
        }
        Ok(out)
    }
}
