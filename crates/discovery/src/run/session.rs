//! One peer session of a run: reconcile against the run's haves snapshot, then claim,
//! fetch, verify and ingest what the peer has and the scope wants.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cid::Cid;
use seedbank_blobstore::{Blob, Priority, PutOptions};
use tokio::time::Instant;

use super::ingest;
use super::state::{ClaimGuard, Idle};
use super::RunCtx;
use crate::error::Error;
use crate::item::ItemId;
use crate::peer::Peer;
use crate::reconcile::Initiator;
use crate::scope::Scope;

const RECONCILE: &str = "reconcile";
const FETCH: &str = "fetch";

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

fn local(e: impl Into<Error>) -> Stop {
    Stop::Local(e.into())
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

/// One session: the peer, its id in the run, its reconciliation time budget.
pub(crate) struct Session<'a> {
    pub ctx: &'a RunCtx,
    pub peer: &'a dyn Peer,
    pub id: u64,
    pub stats: &'a SessionStats,
    /// Time left for reconciliation calls to this peer. Fetches are bounded by the round
    /// timeout alone: a peer that keeps delivering is never cut off.
    budget: Duration,
    /// True once the peer failed to send something it claimed to have.
    lacked: bool,
}

impl<'a> Session<'a> {
    pub fn new(ctx: &'a RunCtx, peer: &'a dyn Peer, id: u64, stats: &'a SessionStats) -> Self {
        Session {
            budget: ctx.config.peer_timeout,
            ctx,
            peer,
            id,
            stats,
            lacked: false,
        }
    }

    fn dag(&self) -> bool {
        matches!(self.ctx.scope, Scope::Dag(_))
    }

    /// Runs the session to its end.
    pub async fn run(mut self) -> Result<(), Stop> {
        let _claims = ClaimGuard::new(&self.ctx.state, self.id);
        let (resolved, offered) = self.reconcile().await?;
        if self.dag() {
            self.ctx.state.offer(self.id, offered);
        } else {
            self.register(resolved).await?;
        }
        self.fetch_all().await?;
        if !self.dag() && !self.lacked && self.ctx.state.all_done(self.id) {
            self.ctx.state.synced();
        }
        Ok(())
    }

    /// Sends one call of `bytes` to the peer within the round timeout and, for
    /// reconciliation, the session's remaining budget. Nothing is sent (or counted) once
    /// the scope is complete.
    async fn call<T>(
        &mut self,
        op: &'static str,
        bytes: usize,
        call: impl Future<Output = crate::Result<T>>,
    ) -> Result<T, Stop> {
        let budgeted = op == RECONCILE;
        if self.ctx.state.is_over() {
            return Err(Stop::Ended);
        }
        let counter = if budgeted {
            &self.stats.rounds
        } else {
            &self.stats.fetches
        };
        counter.fetch_add(1, Relaxed);
        self.stats.sent(bytes);
        let peer = self.peer.id().to_string();
        let round = self.ctx.config.round_timeout;
        let limit = if budgeted {
            self.budget.min(round)
        } else {
            round
        };
        if limit.is_zero() {
            return Err(Stop::Peer(Error::Timeout { peer, op }));
        }
        let started = Instant::now();
        let result = tokio::time::timeout(limit, call).await;
        let spent = started.elapsed();
        if budgeted {
            self.budget = self.budget.saturating_sub(spent);
        }
        self.stats.calls.fetch_add(1, Relaxed);
        self.stats
            .call_micros
            .fetch_add(spent.as_micros() as u64, Relaxed);
        match result {
            Err(_) => Err(Stop::Peer(Error::Timeout { peer, op })),
            Ok(Err(Error::Protocol { peer: None, reason })) => Err(Stop::Peer(Error::Protocol {
                peer: Some(peer),
                reason,
            })),
            Ok(Err(e)) => Err(Stop::Peer(e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Reconciles the run's snapshot with the peer's. Returns the CIDs the peer resolved
    /// (named scopes) and, for DAG scopes, the ids it has that the snapshot lacks.
    async fn reconcile(&mut self) -> Result<(Vec<Cid>, Vec<ItemId>), Stop> {
        let ctx = self.ctx;
        let haves = ctx.haves.clone();
        let config = &ctx.config;
        let (mut initiator, mut request) =
            Initiator::start(&haves, config.frame_limit, !self.dag(), config.max_want)
                .map_err(Stop::Local)?;
        let (mut resolved, mut offered) = (Vec::new(), Vec::new());
        for _ in 0..config.max_rounds {
            let sent = request.encoded_len();
            let peer = self.peer;
            let answer = self
                .call(RECONCILE, sent, peer.reconcile(&ctx.scope, request))
                .await?;
            ctx.state.answered(self.id);
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
            if self.dag() {
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
            Error::Protocol { peer: None, reason } => Stop::Peer(Error::Protocol {
                peer: Some(self.peer.id().to_string()),
                reason,
            }),
            other => Stop::Peer(other),
        }
    }

    /// Named scopes: blobs the peer resolved that are stored here already only join the
    /// scope; the rest become wants this peer offers.
    async fn register(&mut self, resolved: Vec<Cid>) -> Result<(), Stop> {
        let Scope::Named(name) = &self.ctx.scope else {
            return Ok(());
        };
        let state = &self.ctx.state;
        let fresh: Vec<Cid> = resolved
            .iter()
            .filter(|c| !state.knows(&ItemId::of(c)))
            .copied()
            .collect();
        // Pinned before the check: what it finds stored stays stored for the run.
        self.ctx.pin.add(&fresh);
        let stored = self
            .ctx
            .index
            .store()
            .has_many(&fresh)
            .await
            .map_err(local)?;
        let (mut present, mut absent) = (Vec::new(), Vec::new());
        for (cid, stored) in fresh.into_iter().zip(stored) {
            if stored {
                present.push(cid);
            } else {
                absent.push(cid);
            }
        }
        let ctx = self.ctx;
        let adopted = crate::local::adopt(
            &ctx.index,
            &ctx.scope,
            &ctx.config.source,
            &ctx.pin,
            &absent,
        )
        .await
        .map_err(Stop::Local)?;
        ctx.counters
            .adopted
            .fetch_add(adopted.len() as u64, Relaxed);
        let adopted_ids: HashSet<ItemId> = adopted.iter().map(ItemId::of).collect();
        absent.retain(|c| !adopted_ids.contains(&ItemId::of(c)));
        if !present.is_empty() {
            let opts = PutOptions::new(Priority::Normal, &self.ctx.config.source);
            let (index, name, cids) = (self.ctx.index.clone(), name.clone(), present.clone());
            let added = ingest::finish(async move { index.add_to_scope(&name, &cids, opts).await })
                .await
                .map_err(Stop::Local)?;
            self.ctx.counters.memberships.fetch_add(added, Relaxed);
            // A forced delete may have removed some of them since `has_many` (`add_to_scope`
            // skips what is not stored; a collection cannot, they are temp-pinned): those
            // are wanted after all.
            let still = self
                .ctx
                .index
                .store()
                .has_many(&present)
                .await
                .map_err(local)?;
            let mut kept = Vec::with_capacity(present.len());
            for (cid, stored) in present.into_iter().zip(still) {
                if stored {
                    kept.push(cid);
                } else {
                    absent.push(cid);
                }
            }
            present = kept;
        }
        state.want(absent);
        let present: HashSet<ItemId> = present.iter().chain(&adopted).map(ItemId::of).collect();
        let offered = resolved
            .iter()
            .map(ItemId::of)
            .filter(|id| !present.contains(id));
        state.offer(self.id, offered.collect::<Vec<_>>());
        Ok(())
    }

    /// Claims and fetches until nothing this peer offers is wanted. Fetching is pipelined
    /// two deep: batch N is stored while batch N+1 is fetched. A batch's claims are held
    /// until it is committed, so nobody sees its blobs as missing or done too early.
    async fn fetch_all(&mut self) -> Result<(), Stop> {
        let state = &self.ctx.state;
        let mut changes = state.subscribe();
        let mut storing: Option<Verified> = None;
        loop {
            if state.is_over() {
                return Err(Stop::Ended);
            }
            changes.borrow_and_update();
            let batch = state.claim(self.id, self.ctx.config.fetch_batch, self.dag());
            if !batch.is_empty() {
                let (stored, fetched) = tokio::join!(
                    store(self.ctx, self.id, self.stats, storing.take()),
                    self.fetch(batch)
                );
                stored?;
                storing = fetched?;
                continue;
            }
            if storing.is_some() {
                // Storing it may reveal new wants (links) or complete the scope.
                store(self.ctx, self.id, self.stats, storing.take()).await?;
                continue;
            }
            match state.idle(self.id, self.dag()) {
                Idle::Finished => return Ok(()),
                Idle::Wait => {
                    let _ = changes.changed().await;
                }
            }
        }
    }

    /// Fetches one claimed batch and verifies it. Claims on blobs the peer did not send are
    /// released for other sessions; `None` when it sent none.
    async fn fetch(&mut self, batch: Vec<Cid>) -> Result<Option<Verified>, Stop> {
        let sent = batch.iter().map(|c| c.encoded_len()).sum::<usize>();
        let peer = self.peer;
        let answer = self.call(FETCH, sent, peer.fetch(&batch)).await?;
        self.stats.received(
            answer
                .iter()
                .map(|(c, d)| c.encoded_len() + d.len())
                .sum::<usize>(),
        );
        let max_blob = self.ctx.index.store().config().max_blob_size;
        let blobs = ingest::verify(self.peer.id(), &batch, answer, max_blob)
            .await
            .map_err(Stop::Peer)?;
        let bytes: u64 = blobs.iter().map(|b| b.len() as u64).sum();
        let config = &self.ctx.config;
        if !self.ctx.counters.reserve(config, blobs.len() as u64, bytes) {
            return Err(self.over_budget(format!(
                "the run stores at most {} blobs and {} bytes",
                config.max_run_blobs, config.max_run_bytes
            )));
        }
        let (lacked, deferred) = unanswered(&batch, &blobs);
        if !lacked.is_empty() {
            // A probe the peer could not answer says nothing against it.
            self.lacked |= self.ctx.state.lacked(self.id, &lacked);
        }
        // Cut by the answer's byte or count limit: asked again, of this peer too.
        self.ctx.state.release(self.id, &deferred);
        Ok((!blobs.is_empty()).then_some(Verified { blobs }))
    }
}

/// Splits the CIDs of `batch` the peer did not send into those it lacks and those its
/// answer had no room for. A responder answers a prefix of what it was asked, in order,
/// leaving out what it does not store, up to its byte and count limits, and always at least
/// one blob it stores. So an unsent CID before the last one sent is lacked; one after it
/// was cut by a limit and is asked again (every answer sends a blob or settles the batch,
/// so this ends); with nothing sent, every CID is lacked.
fn unanswered(batch: &[Cid], sent: &[Blob]) -> (Vec<Cid>, Vec<Cid>) {
    let sent: HashSet<ItemId> = sent.iter().map(|b| ItemId::of(b.cid())).collect();
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

/// A fetched batch whose every blob matched its CID, still claimed by its session.
struct Verified {
    blobs: Vec<Blob>,
}

/// Stores a verified batch through the lane, then marks it fetched together with the new
/// wants its links revealed (DAG scopes) and checks whether the scope is complete.
async fn store(
    ctx: &RunCtx,
    session: u64,
    stats: &SessionStats,
    batch: Option<Verified>,
) -> Result<(), Stop> {
    let Some(Verified { blobs }) = batch else {
        return Ok(());
    };
    let dag = matches!(ctx.scope, Scope::Dag(_));
    let fetched: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    let bytes: usize = blobs.iter().map(|b| b.len()).sum();
    let children = if dag {
        let links = ingest::children(&blobs, &ctx.haves);
        ctx.new_wants(links).await.map_err(Stop::Local)?
    } else {
        Vec::new()
    };
    ingest::submit(&ctx.index, &ctx.scope, &ctx.config.source, &ctx.pin, blobs)
        .await
        .map_err(Stop::Local)?;
    let duplicates = ctx.state.fetched(session, &fetched, children);
    stats.blobs.fetch_add(fetched.len() as u64, Relaxed);
    ctx.counters.record_fetch(fetched.len(), bytes, duplicates);
    ctx.report_progress(false);
    if dag && ctx.state.is_idle() && !ctx.state.is_over() {
        ctx.confirm_dag_complete().await.map_err(Stop::Local)?;
    }
    Ok(())
}
