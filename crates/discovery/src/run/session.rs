//! One peer session of a run: reconcile against the run's haves snapshot, then claim,
//! fetch, verify and ingest what the peer has and the scope wants.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use cid::Cid;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::time::Instant;

use super::ingest::{self, Parsed};
use super::owner::Run;
use super::state::Idle;
use crate::error::{Error, PeerCall};
use crate::item::ItemId;
use crate::peer::Peer;
use crate::reconcile::Initiator;

const RECONCILE: PeerCall = PeerCall::Reconcile;
const FETCH: PeerCall = PeerCall::Fetch;

/// Why a session stopped early.
pub(crate) enum Stop {
    /// The run is over: the scope completed (possibly thanks to another session) or the
    /// run reached a limit. Nothing more to send.
    Ended,
    /// The peer failed, timed out, was busy or lied.
    Peer(Error),
    /// Our own store or index failed: the whole run fails.
    Local(Error),
}

/// Counters of one session, shared with the run so a cancelled session still reports.
#[derive(Default)]
pub(crate) struct SessionStats {
    pub rounds: AtomicU64,
    pub fetches: AtomicU64,
    pub blobs: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub reconcile_bytes: AtomicU64,
    pub needed: AtomicU64,
    calls: AtomicU64,
    call_micros: AtomicU64,
}

impl SessionStats {
    /// Mean round trip of this session's calls, if it made any.
    pub fn mean_latency(&self) -> Option<Duration> {
        let calls = self.calls.load(Relaxed);
        (calls > 0).then(|| Duration::from_micros(self.call_micros.load(Relaxed) / calls))
    }

    fn sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Relaxed);
    }

    fn received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Relaxed);
    }
}

/// One session: the peer, its id in the run, its reconciliation time budget. Everything it
/// knows of the run it learns from [`Run`], and everything it learns it tells [`Run`].
pub(crate) struct Session<'a> {
    run: &'a Run,
    peer: &'a dyn Peer,
    id: u64,
    stats: &'a SessionStats,
    /// Time left for reconciliation calls to this peer. Fetches are bounded by the round
    /// timeout alone: a peer that keeps delivering is never cut off.
    budget: Duration,
    /// True once the peer failed to send something it claimed to have.
    lacked: AtomicBool,
    /// Fetches kept in flight: `fetches_in_flight`, or 1 from a pipelined fetch answered
    /// `Busy` until the peer's next answer.
    depth: AtomicUsize,
    /// CIDs claimed per fetch: `fetch_batch`, or as many as the peer's last answer carried
    /// when it cut that answer at its count or byte limit (see [`Session::adapt_batch`]).
    batch: AtomicUsize,
    /// Bytes of the last answer the peer cut (0: none yet).
    cut_bytes: AtomicUsize,
}

/// A fetch answer on its way in: verified and parsed, or nothing sent.
type FetchFuture<'s> = Pin<Box<dyn Future<Output = Result<Option<Vec<Parsed>>, Stop>> + Send + 's>>;

impl<'a> Session<'a> {
    pub fn new(run: &'a Run, peer: &'a dyn Peer, id: u64, stats: &'a SessionStats) -> Self {
        Session {
            budget: run.config().peer_timeout,
            run,
            peer,
            id,
            stats,
            lacked: AtomicBool::new(false),
            depth: AtomicUsize::new(run.config().fetches_in_flight.max(1)),
            batch: AtomicUsize::new(run.config().fetch_batch.max(1)),
            cut_bytes: AtomicUsize::new(0),
        }
    }

    /// Runs the session to its end.
    pub async fn run(mut self) -> Result<(), Stop> {
        let run = self.run;
        let _live = run.join(self.id);
        let (resolved, offered) = self.reconcile().await?;
        run.offered(self.id, resolved, offered)
            .await
            .map_err(Stop::Local)?;
        self.fetch_all().await?;
        run.finished(self.id, self.lacked.load(Relaxed));
        Ok(())
    }

    /// Sends one call of `bytes` to the peer within `limit`. Nothing is sent (or counted)
    /// once the run is over. Returns the answer and the time it took.
    async fn call<T>(
        &self,
        op: PeerCall,
        bytes: usize,
        limit: Duration,
        call: impl Future<Output = crate::Result<T>>,
    ) -> Result<(T, Duration), Stop> {
        if self.run.is_over() {
            return Err(Stop::Ended);
        }
        let counter = if op == RECONCILE {
            &self.stats.rounds
        } else {
            &self.stats.fetches
        };
        counter.fetch_add(1, Relaxed);
        self.stats.sent(bytes);
        let peer = self.peer.id().to_string();
        if limit.is_zero() {
            return Err(Stop::Peer(Error::Timeout { peer, op }));
        }
        let started = Instant::now();
        let result = tokio::time::timeout(limit, call).await;
        let spent = started.elapsed();
        self.stats.calls.fetch_add(1, Relaxed);
        self.stats
            .call_micros
            .fetch_add(spent.as_micros() as u64, Relaxed);
        match result {
            Err(_) => Err(Stop::Peer(Error::Timeout { peer, op })),
            Ok(Err(e)) => Err(self.blame(e)),
            Ok(Ok(v)) => Ok((v, spent)),
        }
    }

    /// Reconciles the run's snapshot with the peer's. Returns the CIDs the peer resolved
    /// (named scopes) and, for DAG scopes, the ids it has that the snapshot lacks.
    async fn reconcile(&mut self) -> Result<(Vec<Cid>, Vec<ItemId>), Stop> {
        let run = self.run;
        let config = run.config();
        let dag = run.dag();
        let (mut initiator, mut request) =
            Initiator::start(run.haves(), config.frame_limit, !dag, config.max_want)
                .map_err(Stop::Local)?;
        let (mut resolved, mut offered) = (Vec::new(), Vec::new());
        for _ in 0..config.max_rounds {
            let sent = request.encoded_len();
            let limit = self.budget.min(config.round_timeout);
            let call = self.peer.reconcile(run.scope(), request);
            let (answer, spent) = self.call(RECONCILE, sent, limit, call).await?;
            self.budget = self.budget.saturating_sub(spent);
            run.answered(self.id);
            let received = answer.encoded_len();
            self.stats.received(received);
            self.stats
                .reconcile_bytes
                .fetch_add((sent + received) as u64, Relaxed);
            let (learned, next) = initiator.receive(answer).map_err(|e| self.blame(e))?;
            let needed = self
                .stats
                .needed
                .fetch_add(learned.need.len() as u64, Relaxed)
                + learned.need.len() as u64;
            if needed > config.max_peer_ids as u64 {
                return Err(
                    self.over_budget(format!("claims more than {} ids", config.max_peer_ids))
                );
            }
            if dag {
                offered.extend(learned.need);
            }
            resolved.extend(learned.resolved);
            match next {
                Some(next) => request = next,
                None => return Ok((resolved, offered)),
            }
        }
        Err(Stop::Peer(Error::transport(format!(
            "reconciliation not done after {} rounds",
            config.max_rounds
        ))))
    }

    fn over_budget(&self, what: String) -> Stop {
        Stop::Peer(Error::OverBudget {
            peer: self.peer.id().to_string(),
            what,
        })
    }

    fn blame(&self, err: Error) -> Stop {
        match err {
            Error::Protocol {
                peer: None,
                reason,
                source,
            } => Stop::Peer(Error::Protocol {
                peer: Some(self.peer.id().to_string()),
                reason,
                source,
            }),
            other => Stop::Peer(other),
        }
    }

    /// Claims and fetches until nothing this peer offers is wanted. Up to
    /// `fetches_in_flight` fetches travel at once while the oldest verified answer is
    /// stored; answers are stored in the order they were asked for, one at a time. A
    /// batch's claims are held until it is committed, so nobody sees its blobs as missing
    /// or done too early.
    async fn fetch_all(&self) -> Result<(), Stop> {
        let run = self.run;
        let mut changes = run.subscribe();
        let mut in_flight: FuturesOrdered<FetchFuture<'_>> = FuturesOrdered::new();
        // Answers that arrived while another was being stored, oldest first.
        let mut arrived: VecDeque<Vec<Parsed>> = VecDeque::new();
        let mut storing: Option<Pin<Box<dyn Future<Output = crate::Result<u64>> + Send + '_>>> =
            None;
        loop {
            if run.is_over() {
                return Err(Stop::Ended);
            }
            changes.borrow_and_update();
            while in_flight.len() + arrived.len() < self.depth.load(Relaxed) {
                let batch = run.claim(self.id, self.batch.load(Relaxed));
                if batch.is_empty() {
                    break;
                }
                in_flight.push_back(Box::pin(self.fetch(batch)));
            }
            if storing.is_none() {
                if let Some(blobs) = arrived.pop_front() {
                    // Storing it may reveal new wants (links) or complete the scope.
                    storing = Some(Box::pin(run.fetched(self.id, blobs)));
                }
            }
            if storing.is_none() && in_flight.is_empty() {
                match run.idle(self.id) {
                    Idle::Finished => return Ok(()),
                    Idle::Wait => {
                        let _ = changes.changed().await;
                        continue;
                    }
                }
            }
            tokio::select! {
                stored = async { storing.as_mut().expect("checked").await }, if storing.is_some() => {
                    storing = None;
                    self.stored(stored)?;
                }
                answer = in_flight.next(), if !in_flight.is_empty() => {
                    match answer.expect("not empty") {
                        Ok(Some(blobs)) => arrived.push_back(blobs),
                        Ok(None) => {}
                        Err(stop) => {
                            // The peer failed: what it sent before, verified, is still
                            // stored (in order), then the session ends.
                            drop(in_flight);
                            if let Some(store) = storing.take() {
                                self.stored(store.await)?;
                            }
                            for blobs in arrived {
                                self.stored(run.fetched(self.id, blobs).await)?;
                            }
                            return Err(stop);
                        }
                    }
                }
            }
        }
    }

    /// Claims no more than the peer answers. A peer that cut its answer at its count or
    /// byte limit (`deferred` left out) is asked for as many as it sent: over-claiming held
    /// CIDs back from the other requests in flight and cost a 1 GiB sync of 1 MiB blocks a
    /// fifth of its speed (answers of 16 of the 128 CIDs asked). An answer of less than half
    /// the bytes of the last cut one (smaller blobs now) doubles the batch again, up to
    /// `fetch_batch`.
    fn adapt_batch(&self, sent: usize, sent_bytes: usize, deferred: usize) {
        if deferred > 0 {
            self.batch.store(sent.max(1), Relaxed);
            self.cut_bytes.store(sent_bytes, Relaxed);
        } else if sent_bytes.saturating_mul(2) < self.cut_bytes.load(Relaxed) {
            let most = self.run.config().fetch_batch.max(1);
            let grown = self.batch.load(Relaxed).saturating_mul(2).min(most);
            self.batch.store(grown, Relaxed);
        }
    }

    /// Counts a batch stored for this session, or turns a local failure into the stop.
    fn stored(&self, stored: crate::Result<u64>) -> Result<(), Stop> {
        let stored = stored.map_err(Stop::Local)?;
        self.stats.blobs.fetch_add(stored, Relaxed);
        Ok(())
    }

    /// Fetches one claimed batch, verifies it and parses its links. Claims on blobs the
    /// peer did not send are released for other sessions; `None` when it sent none.
    async fn fetch(&self, batch: Vec<Cid>) -> Result<Option<Vec<Parsed>>, Stop> {
        let run = self.run;
        let sent = batch.iter().map(|c| c.encoded_len()).sum::<usize>();
        let limit = run.config().round_timeout;
        let pipelined = self.depth.load(Relaxed) > 1;
        let answer = self.call(FETCH, sent, limit, self.peer.fetch(&batch)).await;
        let answer = match answer {
            Ok((answer, _)) => answer,
            Err(Stop::Peer(Error::Busy)) if pipelined => {
                // Too many at once for a loaded peer (a server holds each answer's bytes
                // until the remote has it): one at a time until it answers again, and this
                // batch asked again.
                self.depth.store(1, Relaxed);
                run.deferred(self.id, &batch);
                return Ok(None);
            }
            Err(stop) => return Err(stop),
        };
        // It answered: back to the configured depth (at most one `Busy` per answer).
        self.depth
            .store(run.config().fetches_in_flight.max(1), Relaxed);
        self.stats.received(
            answer
                .iter()
                .map(|(c, d)| c.encoded_len() + d.len())
                .sum::<usize>(),
        );
        let blobs = ingest::verify(self.peer.id(), &batch, answer, run.max_blob_size())
            .await
            .map_err(Stop::Peer)?;
        let bytes: u64 = blobs.iter().map(|p| p.blob.len() as u64).sum();
        if !run.reserve(blobs.len() as u64, bytes) {
            let config = run.config();
            return Err(self.over_budget(format!(
                "the run stores at most {} blobs and {} bytes",
                config.max_run_blobs, config.max_run_bytes
            )));
        }
        let (lacked, deferred) = unanswered(&batch, &blobs);
        self.adapt_batch(blobs.len(), bytes as usize, deferred.len());
        // A probe the peer could not answer says nothing against it.
        if run.lacked(self.id, &lacked) {
            self.lacked.store(true, Relaxed);
        }
        // Cut by the answer's byte or count limit: asked again, of this peer too.
        run.deferred(self.id, &deferred);
        Ok((!blobs.is_empty()).then_some(blobs))
    }
}

/// Splits the CIDs of `batch` the peer did not send into those it lacks and those its
/// answer had no room for. A responder answers a prefix of what it was asked, in order,
/// leaving out what it does not store, up to its byte and count limits, and always at least
/// one blob it stores. So an unsent CID before the last one sent is lacked; one after it
/// was cut by a limit and is asked again (every answer sends a blob or settles the batch,
/// so this ends); with nothing sent, every CID is lacked.
fn unanswered(batch: &[Cid], sent: &[Parsed]) -> (Vec<Cid>, Vec<Cid>) {
    let sent: HashSet<ItemId> = sent.iter().map(|p| ItemId::of(p.cid())).collect();
    let last = batch.iter().rposition(|c| sent.contains(&ItemId::of(c)));
    let (mut lacked, mut deferred) = (Vec::new(), Vec::new());
    for (i, cid) in batch.iter().enumerate() {
        if sent.contains(&ItemId::of(cid)) {
            continue;
        }
        match last {
            Some(last) if i > last => deferred.push(*cid),
            _ => lacked.push(*cid),
        }
    }
    (lacked, deferred)
}
