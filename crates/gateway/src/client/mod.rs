//! Syncing from IPFS Trustless Gateways (feature `client`): [`GatewayPeer`] is a discovery
//! [`Peer`] over HTTP, so one discovery run mixes QUIC peers and gateways.
//!
//! **How a run uses it.** A gateway serves blocks by CID but cannot list what it holds, so
//! it cannot reconcile: for a DAG scope it answers as a peer holding nothing
//! ([`answer_holding_nothing`]), and the run *probes* it, through [`Peer::fetch`], for the
//! open wants no other live peer offers. A fetch is answered in the order asked:
//!
//! - a non-raw block (a missing subtree's root) opens a CAR stream of its whole DAG
//!   (`GET /ipfs/{cid}?format=car&dag-scope=all`, `Accept:
//!   application/vnd.ipld.car;version=1;order=dfs;dups=n`); the blocks the run asks for next
//!   are read from that stream as they come, and blocks it sends before they are asked for
//!   wait in a small look-ahead buffer ([`GatewayClientConfig::lookahead_bytes`]);
//! - what the stream does not bring within that look-ahead (blocks out of its order, raw
//!   leaves of other subtrees) is fetched one by one with `?format=raw` (stragglers), a few
//!   at once.
//!
//! **Trust.** Every block is checked against its CID as it arrives, and a CAR stream
//! accepts only its root and blocks linked from blocks it sent before (the DAG asked for);
//! the run verifies what it stores again. A gateway that sends bytes that do not hash to
//! their CID ([`Error::HashMismatch`]), a block outside the DAG or a malformed answer
//! ([`Error::Protocol`]: a lie), a truncated CAR or an error status ([`Error::Transport`]),
//! or that stalls — no response headers within [`GatewayClientConfig::request_timeout`], a
//! read waiting longer than [`GatewayClientConfig::idle_timeout`] ([`Error::Timeout`]) — is
//! dropped for the rest of the run: every later call returns that error, and the run scores
//! it as it scores a lying or failing QUIC peer. A 404 is not a fault: the block is left
//! out of the answer (the gateway lacks it). A 429 or 503 is [`Error::Busy`].
//!
//! **Bounds.** Nothing is allocated by a length the gateway sent beyond
//! [`GatewayClientConfig::max_block_size`] (the CAR reader and the raw body reader check
//! lengths before reading); a CAR stream remembers at most
//! [`GatewayClientConfig::max_stream_links`] block ids, past which it is given up (no
//! blame); the look-ahead holds at most `lookahead_bytes` plus one block. The run's budgets
//! (`max_run_bytes`, `max_open_wants`, `run_timeout`, `round_timeout`) apply as for any
//! peer: an answer returns after [`GatewayClientConfig::answer_time`] with what it has.
//!
//! HTTPS uses rustls with the platform's certificate verifier; the crate installs rustls'
//! `ring` provider as the process default if none is installed when a client is built.

mod http;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cid::Cid;
use futures_util::{StreamExt, TryStreamExt};
use seedbank_blobstore::codec;
pub use seedbank_discovery::answer_holding_nothing;
use seedbank_discovery::{Error, ItemId, Message, Peer, Result, Scope};

use stream::{DagStream, Event};

/// A gateway's base URL (`http://127.0.0.1:8080`, `https://ipfs.example`), the `url`
/// crate's type.
pub use reqwest::Url;

const CAR_ACCEPT: &str = "application/vnd.ipld.car;version=1;order=dfs;dups=n";
const RAW_ACCEPT: &str = "application/vnd.ipld.raw";

/// Limits of a [`GatewayPeer`]. `Default` gives the documented values.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GatewayClientConfig {
    /// Deadline of a request up to its response headers, and of a raw block's whole
    /// answer. Default 30 s.
    pub request_timeout: Duration,
    /// Longest wait for the next bytes of a body. Default 15 s.
    pub idle_timeout: Duration,
    /// A CAR stream open longer than this is closed (without blame) and a new one opened
    /// as needed. Default 10 minutes.
    pub max_stream_time: Duration,
    /// Largest block accepted, in bytes: set it to the store's `max_blob_size`. Default
    /// 2 MiB.
    pub max_block_size: usize,
    /// Bytes of blocks a CAR stream may bring before the run asks for them. Default 16 MiB.
    pub lookahead_bytes: usize,
    /// Block ids a CAR stream remembers (received, and linked but not received); past it
    /// the stream is given up. Default 262,144.
    pub max_stream_links: usize,
    /// Raw block requests in flight at once. Default 8.
    pub raw_concurrency: usize,
    /// Raw block requests one fetch sends at most; later CIDs are left for the run to ask
    /// again. Default 64.
    pub max_raw_per_fetch: usize,
    /// A fetch stops taking more blocks after this long and answers with what it has (the
    /// run asks again for the rest); keep it under the run's `round_timeout`. Default 2 s.
    pub answer_time: Duration,
}

impl Default for GatewayClientConfig {
    fn default() -> Self {
        GatewayClientConfig {
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(15),
            max_stream_time: Duration::from_secs(600),
            max_block_size: 2 << 20,
            lookahead_bytes: 16 << 20,
            max_stream_links: 1 << 18,
            raw_concurrency: 8,
            max_raw_per_fetch: 64,
            answer_time: Duration::from_secs(2),
        }
    }
}

/// Why a [`GatewayPeer`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://` or `https://`, or cannot be a base.
    #[error("not a gateway URL (http:// or https://): {0}")]
    BadUrl(String),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Counters of a [`GatewayPeer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayPeerStats {
    /// CAR requests sent.
    pub car_requests: u64,
    /// Raw block requests sent.
    pub raw_requests: u64,
    /// Blocks answered from CAR streams.
    pub streamed_blocks: u64,
    /// Blocks answered from raw requests.
    pub raw_blocks: u64,
    /// Blocks received from CAR streams that no fetch asked for before they were dropped
    /// (taken by another peer, or past the look-ahead).
    pub unused_blocks: u64,
}

#[derive(Default)]
struct Counters {
    car_requests: AtomicU64,
    raw_requests: AtomicU64,
    streamed_blocks: AtomicU64,
    raw_blocks: AtomicU64,
    unused_blocks: AtomicU64,
}

/// A trustless gateway as a discovery [`Peer`] (see the [module docs](self)).
pub struct GatewayPeer {
    id: String,
    base: Url,
    client: reqwest::Client,
    config: GatewayClientConfig,
    /// Set once the gateway misbehaved: it is dropped for the run.
    dropped: Mutex<Option<Error>>,
    reading: tokio::sync::Mutex<Reading>,
    counters: Counters,
}

impl std::fmt::Debug for GatewayPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayPeer")
            .field("base", &self.base.as_str())
            .field("config", &self.config)
            .finish()
    }
}

/// The CAR stream in progress and the blocks it brought ahead of the run's asking.
#[derive(Default)]
struct Reading {
    stream: Option<DagStream>,
    lookahead: Lookahead,
    /// The gateway answered a CAR request 406/501: raw requests only.
    no_car: bool,
}

/// Blocks a stream brought before they were asked for, in arrival order.
#[derive(Default)]
struct Lookahead {
    blocks: HashMap<ItemId, (u64, Bytes)>,
    order: BTreeMap<u64, ItemId>,
    next: u64,
    bytes: usize,
}

impl Lookahead {
    fn insert(&mut self, cid: &Cid, data: Bytes) {
        let id = ItemId::of(cid);
        let seq = self.next;
        self.next += 1;
        self.bytes += data.len();
        if let Some((old, data)) = self.blocks.insert(id, (seq, data)) {
            self.order.remove(&old);
            self.bytes -= data.len();
        }
        self.order.insert(seq, id);
    }

    /// Takes `cid`'s block; blocks that arrived before it were passed over by the run's
    /// asking (another peer took them) and are dropped. Returns the block and how many
    /// were dropped.
    fn take(&mut self, cid: &Cid) -> Option<(Bytes, u64)> {
        let (seq, data) = self.blocks.remove(&ItemId::of(cid))?;
        self.order.remove(&seq);
        self.bytes -= data.len();
        let older: Vec<u64> = self.order.range(..seq).map(|(s, _)| *s).collect();
        for s in &older {
            let id = self.order.remove(s).expect("listed");
            let (_, d) = self.blocks.remove(&id).expect("indexed");
            self.bytes -= d.len();
        }
        Some((data, older.len() as u64))
    }

    fn clear(&mut self) -> u64 {
        let n = self.blocks.len() as u64;
        *self = Lookahead {
            next: self.next,
            ..Lookahead::default()
        };
        n
    }
}

/// A gateway's answer to a GET, by status.
enum Answer {
    /// 200.
    Ok(reqwest::Response),
    /// 404, 410 or 412: it does not have the block (not a fault).
    Lacks,
    /// 406 or 501 to a CAR request: it serves no CAR (raw requests only from then on).
    Unsupported,
}

/// One CID of a fetch, as it is being answered.
enum Slot {
    Have(Bytes),
    Raw,
    Lacking,
}

impl GatewayPeer {
    /// A gateway at `base` (`http://host:port` or `https://host/prefix`): requests go to
    /// `{base}/ipfs/{cid}`. Its [`Peer::id`] is the URL.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] for a URL that is not http(s), [`ClientError::Http`] if the
    /// client cannot be built.
    pub fn new(base: Url, config: GatewayClientConfig) -> Result<GatewayPeer, ClientError> {
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::BadUrl(base.to_string()));
        }
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        // reqwest is built without a crypto provider of its own (iroh's choice in this
        // workspace): use ring's unless the application installed one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(config.request_timeout)
            .user_agent(concat!("seedbank/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(GatewayPeer {
            id: base.to_string(),
            base,
            client,
            config,
            dropped: Mutex::new(None),
            reading: tokio::sync::Mutex::new(Reading::default()),
            counters: Counters::default(),
        })
    }

    /// The base URL requests go under.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// What this peer did so far.
    pub fn stats(&self) -> GatewayPeerStats {
        let c = &self.counters;
        GatewayPeerStats {
            car_requests: c.car_requests.load(Relaxed),
            raw_requests: c.raw_requests.load(Relaxed),
            streamed_blocks: c.streamed_blocks.load(Relaxed),
            raw_blocks: c.raw_blocks.load(Relaxed),
            unused_blocks: c.unused_blocks.load(Relaxed),
        }
    }

    /// The error that dropped this gateway for the run, if it misbehaved.
    pub fn dropped(&self) -> Option<Error> {
        self.dropped.lock().expect("not poisoned").clone()
    }

    fn drop_for_run(&self, err: &Error) {
        if matches!(err, Error::Busy) {
            return;
        }
        tracing::info!(gateway = %self.id, "gateway dropped for the run: {err}");
        let mut dropped = self.dropped.lock().expect("not poisoned");
        dropped.get_or_insert_with(|| err.clone());
    }

    fn url(&self, cid: &Cid, query: &str) -> Url {
        let mut url = self
            .base
            .join(&format!("ipfs/{cid}"))
            .expect("a CID is a valid path segment");
        url.set_query(Some(query));
        url
    }

    /// Sends a GET, waiting at most `request_timeout` for the headers.
    async fn get(&self, cid: &Cid, query: &str, accept: &str) -> Result<Answer> {
        let request = self
            .client
            .get(self.url(cid, query))
            .header(reqwest::header::ACCEPT, accept)
            .send();
        let response = tokio::time::timeout(self.config.request_timeout, request)
            .await
            .map_err(|_| http::stalled(&self.id))?
            .map_err(|e| http::send_error(&self.id, e))?;
        use reqwest::StatusCode as S;
        match response.status() {
            S::OK => Ok(Answer::Ok(response)),
            S::NOT_FOUND | S::GONE | S::PRECONDITION_FAILED => Ok(Answer::Lacks),
            S::TOO_MANY_REQUESTS | S::SERVICE_UNAVAILABLE => Err(Error::Busy),
            S::NOT_ACCEPTABLE | S::NOT_IMPLEMENTED if accept == CAR_ACCEPT => {
                Ok(Answer::Unsupported)
            }
            status => Err(http::failed(
                &self.id,
                format!("answered {status} for {cid}"),
            )),
        }
    }

    /// Opens a CAR stream of `root`'s DAG; `None` if the gateway lacks it or serves no CAR.
    async fn open_stream(&self, reading: &mut Reading, root: &Cid) -> Result<Option<DagStream>> {
        self.counters.car_requests.fetch_add(1, Relaxed);
        let response = match self
            .get(root, "format=car&dag-scope=all", CAR_ACCEPT)
            .await?
        {
            Answer::Ok(response) => response,
            Answer::Lacks => return Ok(None),
            Answer::Unsupported => {
                reading.no_car = true;
                return Ok(None);
            }
        };
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !content_type.starts_with("application/vnd.ipld.car") {
            // A gateway that ignores the format and answers something else serves no CAR.
            reading.no_car = true;
            return Ok(None);
        }
        let body = http::body(response, self.config.idle_timeout);
        let stream = DagStream::start(
            &self.id,
            *root,
            body,
            &content_type,
            self.config.max_block_size,
            self.config.max_stream_links,
        )
        .await?;
        Ok(Some(stream))
    }

    /// Reads the stream until it brings `cid`, keeping what comes before in the look-ahead.
    /// `None` when the look-ahead is full first, the stream ends, or `deadline` passes.
    async fn read_until(
        &self,
        reading: &mut Reading,
        cid: &Cid,
        deadline: Instant,
    ) -> Result<Option<Bytes>> {
        loop {
            let Some(stream) = reading.stream.as_ref() else {
                return Ok(None);
            };
            if !stream.covers(cid)
                || reading.lookahead.bytes >= self.config.lookahead_bytes
                || Instant::now() >= deadline
            {
                return Ok(None);
            }
            if stream.opened().elapsed() >= self.config.max_stream_time {
                reading.stream = None;
                return Ok(None);
            }
            // Out of `reading` while it reads: if this fetch is cancelled mid-block, the
            // half-read stream is dropped, never resumed.
            let mut stream = reading.stream.take().expect("checked");
            match stream.next(&self.id).await? {
                Event::Block(got, data) => {
                    reading.stream = Some(stream);
                    if got == *cid || ItemId::of(&got) == ItemId::of(cid) {
                        return Ok(Some(data));
                    }
                    reading.lookahead.insert(&got, data);
                }
                Event::End | Event::Abandon => return Ok(None),
            }
        }
    }

    /// Fetches one raw block; `None` if the gateway lacks it.
    async fn fetch_raw(&self, cid: Cid) -> Result<Option<Bytes>> {
        self.counters.raw_requests.fetch_add(1, Relaxed);
        let max = self.config.max_block_size;
        let work = async {
            let Answer::Ok(response) = self.get(&cid, "format=raw", RAW_ACCEPT).await? else {
                return Ok(None);
            };
            if response.content_length().is_some_and(|n| n > max as u64) {
                return Err(http::lied(
                    &self.id,
                    format!("announced a block over {max} bytes for {cid}"),
                ));
            }
            let mut body = http::body(response, self.config.idle_timeout);
            // Grown as bytes arrive, never reserved at a size the gateway announced.
            let mut data = Vec::new();
            while let Some(chunk) = body
                .try_next()
                .await
                .map_err(|e| http::read_error(&self.id, e))?
            {
                if data.len() + chunk.len() > max {
                    return Err(http::lied(
                        &self.id,
                        format!("sent more than {max} bytes for {cid}"),
                    ));
                }
                data.extend_from_slice(&chunk);
            }
            let data = Bytes::from(data);
            stream::verify(&self.id, cid, &data)?;
            Ok(Some(data))
        };
        tokio::time::timeout(self.config.request_timeout, work)
            .await
            .map_err(|_| http::stalled(&self.id))?
    }

    async fn fetch_all(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        let deadline = Instant::now() + self.config.answer_time;
        let mut reading = self.reading.lock().await;
        let mut slots: Vec<Slot> = Vec::with_capacity(cids.len());
        let (mut raws, mut have) = (0usize, 0usize);
        // True once the current stream brought a block this fetch asked for: it follows
        // the run's order, so CIDs it does not reach go raw rather than replace it.
        let mut stream_useful = false;
        for cid in cids {
            if (have > 0 && Instant::now() >= deadline) || raws >= self.config.max_raw_per_fetch {
                // Later CIDs are left out: the run asks again for them.
                break;
            }
            if let Some((data, dropped)) = reading.lookahead.take(cid) {
                self.counters.unused_blocks.fetch_add(dropped, Relaxed);
                self.counters.streamed_blocks.fetch_add(1, Relaxed);
                slots.push(Slot::Have(data));
                have += 1;
                continue;
            }
            if let Some(data) = self.read_until(&mut reading, cid, deadline).await? {
                stream_useful = true;
                self.counters.streamed_blocks.fetch_add(1, Relaxed);
                slots.push(Slot::Have(data));
                have += 1;
                continue;
            }
            if cid.codec() != codec::RAW && !stream_useful && !reading.no_car {
                // A missing subtree: its whole DAG in one stream.
                let unused = reading.lookahead.clear();
                self.counters.unused_blocks.fetch_add(unused, Relaxed);
                reading.stream = None;
                match self.open_stream(&mut reading, cid).await? {
                    Some(stream) => {
                        reading.stream = Some(stream);
                        if let Some(data) = self.read_until(&mut reading, cid, deadline).await? {
                            stream_useful = true;
                            self.counters.streamed_blocks.fetch_add(1, Relaxed);
                            slots.push(Slot::Have(data));
                            have += 1;
                            continue;
                        }
                    }
                    None if reading.no_car => {}
                    // 404: the gateway lacks it; a raw request would say the same.
                    None => {
                        slots.push(Slot::Lacking);
                        continue;
                    }
                }
            }
            slots.push(Slot::Raw);
            raws += 1;
        }
        drop(reading);
        // Stragglers, a few at once, answered in the order asked.
        let asked: Vec<Cid> = cids[..slots.len()]
            .iter()
            .zip(&slots)
            .filter(|(_, s)| matches!(s, Slot::Raw))
            .map(|(c, _)| *c)
            .collect();
        let mut raw = futures_util::stream::iter(asked)
            .map(|cid| self.fetch_raw(cid))
            .buffered(self.config.raw_concurrency.max(1));
        let mut answer = Vec::with_capacity(slots.len());
        for (cid, slot) in cids.iter().zip(slots) {
            let data = match slot {
                Slot::Have(data) => Some(data),
                Slot::Raw => {
                    let got = raw.next().await.expect("one answer per raw slot")?;
                    if got.is_some() {
                        self.counters.raw_blocks.fetch_add(1, Relaxed);
                    }
                    got
                }
                Slot::Lacking => None,
            };
            if let Some(data) = data {
                answer.push((*cid, data));
            }
        }
        Ok(answer)
    }
}

#[async_trait::async_trait]
impl Peer for GatewayPeer {
    fn id(&self) -> &str {
        &self.id
    }

    /// A gateway cannot list what it holds: for a DAG scope it answers as a peer holding
    /// nothing, and the run probes it for its wants. Named scopes are refused.
    async fn reconcile(&self, scope: &Scope, message: Message) -> Result<Message> {
        if let Some(err) = self.dropped() {
            return Err(err);
        }
        match scope {
            Scope::Dag(_) => answer_holding_nothing(&message),
            Scope::Named(name) => Err(Error::transport(format!(
                "gateway {}: an HTTP gateway serves DAGs by CID; it cannot resolve the named scope {name:?}",
                self.id
            ))),
        }
    }

    async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        if let Some(err) = self.dropped() {
            return Err(err);
        }
        let result = self.fetch_all(cids).await;
        if let Err(err) = &result {
            self.drop_for_run(err);
        }
        result
    }
}
