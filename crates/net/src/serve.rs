//! The serving side: the iroh protocol handler answering requests on seedbank's ALPN from
//! the local [`Peer`] (usually a `Responder`), with admission, policy and caps.
//!
//! What one remote can hold is bounded by its own limits, beside the node-wide ones:
//!
//! - connections: `max_connections_per_remote` of `max_connections` (past either, a new
//!   connection is closed at once);
//! - requests being read and answered: `max_inbound_per_remote` of `max_inbound`, taken
//!   after the frame header and before the body (a refused request is answered `Busy`, its
//!   body never read) and given back as soon as the answer is built;
//! - answers being written: `max_send_bytes_per_remote` of `max_send_bytes`, reserved once
//!   the answer is built and held until the remote has it (a remote that does not read
//!   holds its own budget, not the node's slots); an answer with no room is dropped and
//!   `Busy` sent instead;
//! - haves builds: its reconcile requests run inside
//!   [`Responder::serving`](seedbank_discovery::Responder::serving), so the haves cache
//!   bounds the builds it causes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use iroh::EndpointId;
use parking_lot::Mutex;
use seedbank_discovery::{with_causes, Error as DError, Peer, Responder, Scope};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::config::NodeConfig;
use crate::frame::{self, code, FrameError};
use crate::policy::ServePolicy;
use crate::protocol::{FailCode, Kind, Request, Response, MAX_BLOBS_BYTES, MAX_PEERS};
use crate::ticket::Ticket;

/// Counters of a node's serving side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServeStats {
    /// Connections accepted (after the allowlist and the connection limits).
    pub connections: u64,
    /// Connections refused by the allowlist.
    pub refused: u64,
    /// Connections closed at once because `max_connections` or
    /// `max_connections_per_remote` was reached.
    pub connections_limited: u64,
    /// Requests answered (any response, `Busy` and failures included).
    pub requests: u64,
    /// Requests answered `Busy` (a node-wide or per-remote limit, the responder's limit,
    /// no room to send the answer, or shutting down).
    pub busy: u64,
    /// Of those, requests whose remote was at its own limit (`max_inbound_per_remote`, or
    /// `max_send_bytes_per_remote` for the answer).
    pub remote_limited: u64,
    /// Of those, answers built and then dropped because the send budget (the remote's or
    /// the node's) had no room for them.
    pub unsent: u64,
    /// Requests refused by the serving policy.
    pub denied: u64,
    /// Streams closed because of a malformed frame or body, or a timeout.
    pub bad_requests: u64,
    /// Answer bytes held for sending now (a gauge, at most `max_send_bytes`).
    pub send_bytes: u64,
    /// The most answer bytes ever held for sending at once.
    pub send_bytes_peak: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    connections_limited: AtomicU64,
    requests: AtomicU64,
    busy: AtomicU64,
    remote_limited: AtomicU64,
    unsent: AtomicU64,
    denied: AtomicU64,
    bad_requests: AtomicU64,
    send_bytes: AtomicU64,
    send_bytes_peak: AtomicU64,
}

/// Permits held for every admitted request until its answer is delivered, so a graceful
/// shutdown can wait for them all (a count, never a limit).
const ACTIVE: u32 = u32::MAX >> 2;

/// What one remote endpoint id holds across its connections.
struct Remote {
    connections: usize,
    limits: Arc<RemoteLimits>,
}

/// One remote's own admission: requests being answered, and answer bytes being sent.
struct RemoteLimits {
    inbound: Arc<Semaphore>,
    send: Arc<Semaphore>,
}

/// The protocol handler the node's router runs for every connection.
pub(crate) struct Handler {
    local: Arc<dyn Peer>,
    policy: Arc<dyn ServePolicy>,
    config: NodeConfig,
    /// Requests being read and answered; `try_acquire` only, so nothing waits for a slot.
    inbound: Arc<Semaphore>,
    /// Bytes of answers being written, node-wide; `try_acquire` only.
    send: Arc<Semaphore>,
    /// Admitted requests whose answer is not delivered yet (see [`ACTIVE`]).
    active: Arc<Semaphore>,
    /// Remotes with a connection open, and connections open.
    remotes: Mutex<(HashMap<EndpointId, Remote>, usize)>,
    closing: AtomicBool,
    known: Mutex<Vec<Ticket>>,
    counters: Counters,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("local", &self.local.id())
            .finish_non_exhaustive()
    }
}

/// A connection counted against its remote and the node until dropped.
struct ConnSlot<'a> {
    handler: &'a Handler,
    remote: EndpointId,
    limits: Arc<RemoteLimits>,
}

impl Drop for ConnSlot<'_> {
    fn drop(&mut self) {
        let mut remotes = self.handler.remotes.lock();
        let (map, open) = &mut *remotes;
        *open -= 1;
        if let Some(remote) = map.get_mut(&self.remote) {
            remote.connections -= 1;
            if remote.connections == 0 {
                map.remove(&self.remote);
            }
        }
    }
}

/// What an admitted request holds while it is read and answered.
struct Admitted {
    _remote: OwnedSemaphorePermit,
    _node: OwnedSemaphorePermit,
}

/// Answer bytes reserved against the remote's and the node's send budgets.
struct Reserved<'a> {
    _remote: OwnedSemaphorePermit,
    _node: OwnedSemaphorePermit,
    gauge: &'a AtomicU64,
    bytes: u64,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(self.bytes, Relaxed);
    }
}

impl Handler {
    pub(crate) fn new(
        local: Arc<dyn Peer>,
        policy: Arc<dyn ServePolicy>,
        config: NodeConfig,
    ) -> Self {
        Handler {
            local,
            policy,
            inbound: Arc::new(Semaphore::new(config.max_inbound)),
            send: Arc::new(Semaphore::new(config.max_send_bytes)),
            active: Arc::new(Semaphore::new(ACTIVE as usize)),
            remotes: Mutex::new((HashMap::new(), 0)),
            config,
            closing: AtomicBool::new(false),
            known: Mutex::new(Vec::new()),
            counters: Counters::default(),
        }
    }

    pub(crate) fn stats(&self) -> ServeStats {
        let c = &self.counters;
        ServeStats {
            connections: c.connections.load(Relaxed),
            refused: c.refused.load(Relaxed),
            connections_limited: c.connections_limited.load(Relaxed),
            requests: c.requests.load(Relaxed),
            busy: c.busy.load(Relaxed),
            remote_limited: c.remote_limited.load(Relaxed),
            unsent: c.unsent.load(Relaxed),
            denied: c.denied.load(Relaxed),
            bad_requests: c.bad_requests.load(Relaxed),
            send_bytes: c.send_bytes.load(Relaxed),
            send_bytes_peak: c.send_bytes_peak.load(Relaxed),
        }
    }

    /// Remembers a peer to hand out in peer exchange (newest first, capped).
    pub(crate) fn add_known(&self, ticket: Ticket) {
        let mut known = self.known.lock();
        known.retain(|t| t.id() != ticket.id());
        known.insert(0, ticket);
        known.truncate(MAX_PEERS);
    }

    /// Stops admitting requests and waits (up to the grace period) until every admitted
    /// request's answer is delivered (or given up).
    pub(crate) async fn drain(&self) {
        self.closing.store(true, Relaxed);
        let _ = tokio::time::timeout(self.config.shutdown_grace, self.active.acquire_many(ACTIVE))
            .await;
    }

    /// Counts a new connection from `remote`; `None` past `max_connections` or
    /// `max_connections_per_remote`.
    fn connect(&self, remote: EndpointId) -> Option<ConnSlot<'_>> {
        let mut remotes = self.remotes.lock();
        let (map, open) = &mut *remotes;
        if *open >= self.config.max_connections {
            return None;
        }
        let entry = map.entry(remote).or_insert_with(|| Remote {
            connections: 0,
            limits: Arc::new(RemoteLimits {
                inbound: Arc::new(Semaphore::new(
                    self.config
                        .max_inbound_per_remote
                        .min(self.config.max_inbound),
                )),
                send: Arc::new(Semaphore::new(
                    self.config
                        .max_send_bytes_per_remote
                        .min(self.config.max_send_bytes),
                )),
            }),
        });
        if entry.connections >= self.config.max_connections_per_remote {
            // Never empty here: a fresh entry has room for one connection.
            return None;
        }
        entry.connections += 1;
        *open += 1;
        Some(ConnSlot {
            handler: self,
            remote,
            limits: entry.limits.clone(),
        })
    }

    async fn serve_stream(
        self: Arc<Self>,
        remote: EndpointId,
        limits: Arc<RemoteLimits>,
        scopes: Arc<Mutex<HashSet<Scope>>>,
        mut send: SendStream,
        mut recv: RecvStream,
    ) {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let header =
            tokio::time::timeout_at(deadline, frame::read_header(&mut recv, Kind::is_request))
                .await;
        let (kind, len) = match header {
            Ok(Ok(header)) => header,
            Ok(Err(FrameError::Eof)) => return,
            Ok(Err(e)) => return self.bad_frame(&remote, &mut send, e),
            Err(_) => return self.timed_out(&mut send, &mut recv),
        };
        // Admission comes before the body: a refused request costs no buffer. A request
        // admitted is tracked until its answer is delivered, so a graceful shutdown (which
        // takes every tracking permit) waits for it; during one, nothing is admitted.
        let active = self.active.clone().try_acquire_owned().ok();
        let Some((admitted, active)) = active.and_then(|a| Some((self.admit(&limits)?, a))) else {
            let _ = recv.stop(VarInt::from_u32(code::BUSY));
            self.counters.requests.fetch_add(1, Relaxed);
            return self.respond_busy(&mut send).await;
        };
        let body = tokio::time::timeout_at(deadline, frame::read_body(&mut recv, len)).await;
        let body = match body {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => return self.bad_frame(&remote, &mut send, e),
            Err(_) => return self.timed_out(&mut send, &mut recv),
        };
        self.counters.requests.fetch_add(1, Relaxed);
        let response = match Request::decode(kind, &body) {
            Err(e) => {
                self.counters.bad_requests.fetch_add(1, Relaxed);
                Response::Failed(FailCode::BadRequest, with_causes(&e))
            }
            Ok(request) => {
                drop(body);
                let answering = self.answer(&remote, &scopes, request);
                tokio::time::timeout(self.config.request_timeout, answering)
                    .await
                    .unwrap_or_else(|_| Response::Failed(FailCode::Internal, "timed out".into()))
            }
        };
        // The answer is built: its slots go back, and its bytes are what it holds now.
        drop(admitted);
        let (kind, body) = response.encode_parts();
        drop(response);
        let len: usize = body.iter().map(Bytes::len).sum();
        let Some(reserved) = self.reserve(&limits, frame::HEADER_LEN + len) else {
            self.counters.unsent.fetch_add(1, Relaxed);
            drop(body);
            return self.respond_busy(&mut send).await;
        };
        // Held until the remote has the answer, so a graceful shutdown waits for it.
        self.respond(&mut send, kind, body).await;
        drop((reserved, active));
    }

    fn bad_frame(&self, remote: &EndpointId, send: &mut SendStream, e: FrameError) {
        tracing::debug!(remote = %remote.fmt_short(), "bad frame: {e}");
        self.counters.bad_requests.fetch_add(1, Relaxed);
        let _ = send.reset(VarInt::from_u32(code::BAD_FRAME));
    }

    fn timed_out(&self, send: &mut SendStream, recv: &mut RecvStream) {
        self.counters.bad_requests.fetch_add(1, Relaxed);
        let _ = recv.stop(VarInt::from_u32(code::TIMEOUT));
        let _ = send.reset(VarInt::from_u32(code::TIMEOUT));
    }

    /// A slot for one request: the remote's first, then the node's. `None` when either is
    /// taken, or the node is shutting down.
    fn admit(&self, limits: &RemoteLimits) -> Option<Admitted> {
        if self.closing.load(Relaxed) {
            return None;
        }
        let Ok(remote) = limits.inbound.clone().try_acquire_owned() else {
            self.counters.remote_limited.fetch_add(1, Relaxed);
            return None;
        };
        let node = self.inbound.clone().try_acquire_owned().ok()?;
        Some(Admitted {
            _remote: remote,
            _node: node,
        })
    }

    /// Reserves `bytes` of answer against the remote's send budget, then the node's.
    fn reserve(&self, limits: &RemoteLimits, bytes: usize) -> Option<Reserved<'_>> {
        let n = u32::try_from(bytes).ok()?;
        let Ok(remote) = limits.send.clone().try_acquire_many_owned(n) else {
            self.counters.remote_limited.fetch_add(1, Relaxed);
            return None;
        };
        let node = self.send.clone().try_acquire_many_owned(n).ok()?;
        let c = &self.counters;
        let now = c.send_bytes.fetch_add(bytes as u64, Relaxed) + bytes as u64;
        c.send_bytes_peak.fetch_max(now, Relaxed);
        Some(Reserved {
            _remote: remote,
            _node: node,
            gauge: &c.send_bytes,
            bytes: bytes as u64,
        })
    }

    async fn respond_busy(&self, send: &mut SendStream) {
        self.counters.busy.fetch_add(1, Relaxed);
        let (kind, body) = Response::Busy.encode_parts();
        self.respond(send, kind, body).await;
    }

    async fn respond(&self, send: &mut SendStream, kind: Kind, mut body: Vec<Bytes>) {
        let sent = async {
            frame::write_parts(send, kind, &mut body).await?;
            send.finish().map_err(FrameError::stream)?;
            Ok::<_, FrameError>(())
        };
        match tokio::time::timeout(self.config.request_timeout, sent).await {
            Ok(Ok(())) => {
                // Wait for the peer to acknowledge the data (or stop the stream).
                let _ = tokio::time::timeout(self.config.request_timeout, send.stopped()).await;
            }
            Ok(Err(e)) => tracing::debug!("answer not delivered: {e}"),
            Err(_) => {
                let _ = send.reset(VarInt::from_u32(code::TIMEOUT));
            }
        }
    }

    async fn answer(
        &self,
        remote: &EndpointId,
        scopes: &Mutex<HashSet<Scope>>,
        request: Request,
    ) -> Response {
        match request {
            Request::Reconcile(scope, message) => {
                {
                    let mut seen = scopes.lock();
                    if !seen.contains(&scope) {
                        if seen.len() >= self.config.max_scopes_per_connection {
                            self.counters.bad_requests.fetch_add(1, Relaxed);
                            return Response::Failed(
                                FailCode::BadRequest,
                                "too many scopes on one connection".into(),
                            );
                        }
                        seen.insert(scope.clone());
                    }
                }
                if !self.policy.may_read_scope(remote, &scope).await {
                    self.counters.denied.fetch_add(1, Relaxed);
                    return Response::Failed(FailCode::Denied, "scope not served to you".into());
                }
                // Haves builds this causes count against the remote's own build limit.
                let reconcile = self.local.reconcile(&scope, message);
                match Responder::serving(remote.to_string(), reconcile).await {
                    Ok(reply) => Response::Reconciled(reply),
                    Err(e) => self.failure(e),
                }
            }
            Request::Fetch(cids) => {
                let verdicts = self.policy.may_read_blobs(remote, &cids).await;
                let allowed: Vec<Cid> = cids
                    .into_iter()
                    .zip(verdicts)
                    .filter_map(|(cid, ok)| ok.then_some(cid))
                    .collect();
                match self.local.fetch(&allowed).await {
                    Ok(blobs) => Response::Blobs(fit_blobs(&allowed, blobs)),
                    Err(e) => self.failure(e),
                }
            }
            // Peer exchange obeys the policy: a remote it does not let have the known
            // peers gets an empty list (the same answer as a node that knows nobody).
            Request::Peers if !self.policy.may_list_peers(remote).await => {
                Response::PeerList(Vec::new())
            }
            Request::Peers => Response::PeerList(
                self.known
                    .lock()
                    .iter()
                    .filter(|t| t.id() != *remote)
                    .map(|t| t.to_string())
                    .collect(),
            ),
        }
    }

    fn failure(&self, e: DError) -> Response {
        match e {
            DError::Busy => {
                self.counters.busy.fetch_add(1, Relaxed);
                Response::Busy
            }
            DError::Protocol { reason, source, .. } => {
                self.counters.bad_requests.fetch_add(1, Relaxed);
                // The peer gets the words, causes included (it cannot have our types).
                let text = match source {
                    Some(cause) => format!("{reason}: {}", with_causes(&*cause)),
                    None => reason,
                };
                Response::Failed(FailCode::BadRequest, text)
            }
            // Only the top line: our internal causes (SQLite's, the disk's) stay here.
            e => Response::Failed(FailCode::Internal, e.to_string()),
        }
    }
}

/// Keeps the blobs that were asked for and fit one `Blobs` frame (the rest are left out,
/// which the protocol allows: the client asks again).
fn fit_blobs(asked: &[Cid], blobs: Vec<(Cid, Bytes)>) -> Vec<(Cid, Bytes)> {
    let asked: HashSet<&Cid> = asked.iter().collect();
    let mut total = 0usize;
    blobs
        .into_iter()
        .filter(|(cid, _)| asked.contains(cid))
        .take_while(|(_, data)| {
            total += data.len();
            total <= MAX_BLOBS_BYTES
        })
        .collect()
}

/// The router's handle on the handler.
#[derive(Clone, Debug)]
pub(crate) struct Protocol(pub(crate) Arc<Handler>);

impl ProtocolHandler for Protocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        self.0.clone().accept(conn).await;
        Ok(())
    }

    async fn shutdown(&self) {
        self.0.drain().await;
    }
}

impl Handler {
    async fn accept(self: Arc<Self>, conn: Connection) {
        let remote = conn.remote_id();
        if let Some(allow) = &self.config.allow {
            if !allow.contains(&remote) {
                self.counters.refused.fetch_add(1, Relaxed);
                conn.close(VarInt::from_u32(code::NOT_ALLOWED), b"not allowed");
                return;
            }
        }
        let Some(slot) = self.connect(remote) else {
            self.counters.connections_limited.fetch_add(1, Relaxed);
            conn.close(VarInt::from_u32(code::BUSY), b"too many connections");
            return;
        };
        self.counters.connections.fetch_add(1, Relaxed);
        let scopes = Arc::new(Mutex::new(HashSet::new()));
        // A JoinSet, so stream tasks end with this future when the router cancels it.
        let mut streams = JoinSet::new();
        loop {
            tokio::select! {
                accepted = conn.accept_bi() => match accepted {
                    Ok((send, recv)) => {
                        let this = Arc::clone(&self);
                        let limits = slot.limits.clone();
                        streams.spawn(this.serve_stream(remote, limits, scopes.clone(), send, recv));
                    }
                    Err(e) => {
                        tracing::debug!(remote = %remote.fmt_short(), "connection ended: {e}");
                        break;
                    }
                },
                Some(_) = streams.join_next(), if !streams.is_empty() => {}
            }
        }
        while streams.join_next().await.is_some() {}
        drop(slot);
    }
}
