//! The serving side: the iroh protocol handler answering requests on seedbank's ALPN from
//! the local [`Peer`] (usually a `Responder`), with admission, policy and caps.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use iroh::endpoint::{Connection, RecvStream, SendStream, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use iroh::EndpointId;
use parking_lot::Mutex;
use seedbank_discovery::{Error as DError, Peer, Scope};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::NodeConfig;
use crate::frame::{self, code, FrameError};
use crate::policy::ServePolicy;
use crate::protocol::{FailCode, Kind, Request, Response, MAX_BLOBS_BYTES, MAX_PEERS};
use crate::ticket::Ticket;

/// Counters of a node's serving side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServeStats {
    /// Connections accepted (after the allowlist).
    pub connections: u64,
    /// Connections refused by the allowlist.
    pub refused: u64,
    /// Requests answered (any response, `Busy` and failures included).
    pub requests: u64,
    /// Requests answered `Busy` (inbound cap, responder limit or shutting down).
    pub busy: u64,
    /// Requests refused by the serving policy.
    pub denied: u64,
    /// Streams closed because of a malformed frame or body, or a timeout.
    pub bad_requests: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    refused: AtomicU64,
    requests: AtomicU64,
    busy: AtomicU64,
    denied: AtomicU64,
    bad_requests: AtomicU64,
}

/// The protocol handler the node's router runs for every connection.
pub(crate) struct Handler {
    local: Arc<dyn Peer>,
    policy: Arc<dyn ServePolicy>,
    config: NodeConfig,
    /// In-flight requests; `try_acquire` only, so nothing waits for a slot.
    inbound: Arc<Semaphore>,
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
            requests: c.requests.load(Relaxed),
            busy: c.busy.load(Relaxed),
            denied: c.denied.load(Relaxed),
            bad_requests: c.bad_requests.load(Relaxed),
        }
    }

    /// Remembers a peer to hand out in peer exchange (newest first, capped).
    pub(crate) fn add_known(&self, ticket: Ticket) {
        let mut known = self.known.lock();
        known.retain(|t| t.id() != ticket.id());
        known.insert(0, ticket);
        known.truncate(MAX_PEERS);
    }

    /// Stops admitting requests and waits (up to the grace period) for those in flight.
    pub(crate) async fn drain(&self) {
        self.closing.store(true, Relaxed);
        let all = u32::try_from(self.config.max_inbound).unwrap_or(u32::MAX);
        let _ =
            tokio::time::timeout(self.config.shutdown_grace, self.inbound.acquire_many(all)).await;
    }

    async fn serve_stream(
        self: Arc<Self>,
        remote: EndpointId,
        scopes: Arc<Mutex<HashSet<Scope>>>,
        mut send: SendStream,
        mut recv: RecvStream,
    ) {
        let read = tokio::time::timeout(
            self.config.request_timeout,
            frame::read(&mut recv, Kind::is_request),
        )
        .await;
        let request = match read {
            Ok(Ok((kind, body))) => Request::decode(kind, &body),
            Ok(Err(FrameError::Eof)) => return,
            Ok(Err(e)) => {
                tracing::debug!(remote = %remote.fmt_short(), "bad frame: {e}");
                self.counters.bad_requests.fetch_add(1, Relaxed);
                let _ = send.reset(VarInt::from_u32(code::BAD_FRAME));
                return;
            }
            Err(_) => {
                self.counters.bad_requests.fetch_add(1, Relaxed);
                let _ = recv.stop(VarInt::from_u32(code::TIMEOUT));
                let _ = send.reset(VarInt::from_u32(code::TIMEOUT));
                return;
            }
        };
        self.counters.requests.fetch_add(1, Relaxed);
        let response = match request {
            Err(e) => {
                self.counters.bad_requests.fetch_add(1, Relaxed);
                Response::Failed(FailCode::BadRequest, e.to_string())
            }
            Ok(request) => match self.admit() {
                None => Response::Busy,
                Some(_permit) => {
                    let answer = tokio::time::timeout(
                        self.config.request_timeout,
                        self.answer(&remote, &scopes, request),
                    )
                    .await
                    .unwrap_or_else(|_| Response::Failed(FailCode::Internal, "timed out".into()));
                    // Held until the client has the answer, so a graceful shutdown waits.
                    self.respond(&mut send, &answer).await;
                    return;
                }
            },
        };
        self.respond(&mut send, &response).await;
    }

    fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = if self.closing.load(Relaxed) {
            None
        } else {
            self.inbound.clone().try_acquire_owned().ok()
        };
        if permit.is_none() {
            self.counters.busy.fetch_add(1, Relaxed);
        }
        permit
    }

    async fn respond(&self, send: &mut SendStream, response: &Response) {
        let (kind, body) = response.encode();
        let sent = async {
            frame::write(send, kind, &body).await?;
            send.finish()
                .map_err(|e| FrameError::Stream(e.to_string()))?;
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
                match self.local.reconcile(&scope, message).await {
                    Ok(reply) => Response::Reconciled(reply),
                    Err(e) => self.failure(e),
                }
            }
            Request::Fetch(cids) => {
                let mut allowed = Vec::with_capacity(cids.len());
                for cid in cids {
                    if self.policy.may_read_blob(remote, &cid).await {
                        allowed.push(cid);
                    }
                }
                match self.local.fetch(&allowed).await {
                    Ok(blobs) => Response::Blobs(fit_blobs(&allowed, blobs)),
                    Err(e) => self.failure(e),
                }
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
            DError::Protocol { reason, .. } => {
                self.counters.bad_requests.fetch_add(1, Relaxed);
                Response::Failed(FailCode::BadRequest, reason)
            }
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
        self.counters.connections.fetch_add(1, Relaxed);
        let scopes = Arc::new(Mutex::new(HashSet::new()));
        // A JoinSet, so stream tasks end with this future when the router cancels it.
        let mut streams = JoinSet::new();
        loop {
            tokio::select! {
                accepted = conn.accept_bi() => match accepted {
                    Ok((send, recv)) => {
                        let this = Arc::clone(&self);
                        streams.spawn(this.serve_stream(remote, scopes.clone(), send, recv));
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
    }
}
