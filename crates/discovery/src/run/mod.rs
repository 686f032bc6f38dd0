//! One discovery run: pick peers, run at most `concurrency` sessions at once up to
//! `fanout` peers, replace failed ones, and stop (cancelling the rest) once the scope is
//! complete, or once the run passes one of its limits (`max_open_wants`, `run_timeout`).

pub(crate) mod ingest;
mod session;
mod state;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use cid::Cid;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use seedbank_index::{Index, TempPin};
use tokio::time::Instant;

use crate::config::DiscoveryConfig;
use crate::error::{Error, Result};
use crate::fanout::{Scores, Verdict};
use crate::haves::Haves;
use crate::item::ItemId;
use crate::local::adopt;
use crate::peer::Peer;
use crate::progress::{Progress, ProgressTx};
use crate::report::{Report, SessionOutcome, SessionReport};
use crate::scope::Scope;
use session::{Session, SessionStats, Stop};
use state::{Halt, RunState};

/// Run-wide counters.
#[derive(Default)]
pub(crate) struct RunCounters {
    blobs: AtomicU64,
    bytes: AtomicU64,
    duplicates: AtomicU64,
    pub memberships: AtomicU64,
    pub adopted: AtomicU64,
    /// Blobs and bytes reserved against the run's budget (verified answers about to be
    /// stored, and stored ones).
    reserved: parking_lot::Mutex<(u64, u64)>,
}

impl RunCounters {
    fn record_fetch(&self, blobs: usize, bytes: usize, duplicates: u64) {
        self.blobs.fetch_add(blobs as u64, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        self.duplicates.fetch_add(duplicates, Relaxed);
    }

    /// Reserves an answer of `blobs` blobs and `bytes` bytes against the run's budget;
    /// false (and nothing reserved) if it would pass it.
    fn reserve(&self, config: &DiscoveryConfig, blobs: u64, bytes: u64) -> bool {
        let mut reserved = self.reserved.lock();
        let (b, n) = (reserved.0 + blobs, reserved.1 + bytes);
        if b > config.max_run_blobs || n > config.max_run_bytes {
            return false;
        }
        *reserved = (b, n);
        true
    }

    /// Blobs stored so far (fetched or taken from local bytes) and memberships added.
    fn progress(&self) -> u64 {
        self.blobs.load(Relaxed) + self.memberships.load(Relaxed) + self.adopted.load(Relaxed)
    }

    fn progressed(&self) -> bool {
        self.blobs.load(Relaxed) > 0
            || self.memberships.load(Relaxed) > 0
            || self.adopted.load(Relaxed) > 0
    }
}

/// Everything one run's sessions share.
pub(crate) struct RunCtx {
    pub id: u64,
    pub scope: Scope,
    pub index: Index,
    pub haves: Arc<Haves>,
    pub config: Arc<DiscoveryConfig>,
    state: RunState,
    counters: RunCounters,
    /// Where progress events go (the discovery's subscribers).
    progress: Arc<ProgressTx>,
    /// Serialises completion checks of a DAG scope (each is a walk).
    confirming: tokio::sync::Mutex<()>,
    /// Everything the run stores or relies on joins this temp pin — a DAG scope's root,
    /// blocks it found stored here already, blocks it fetched or adopted — so a collection
    /// running meanwhile never takes a block whose parent has not arrived yet, or one the
    /// run counted as done (or a member before the app pins its scope). Dropped with the
    /// run: keeping the content afterwards is the app's pin.
    pub pin: TempPin,
}

impl RunCtx {
    pub fn new(
        id: u64,
        scope: Scope,
        index: Index,
        haves: Arc<Haves>,
        config: Arc<DiscoveryConfig>,
        progress: Arc<ProgressTx>,
    ) -> Self {
        let state = RunState::new(config.max_open_wants.max(1));
        // A DAG run relies on what is stored under its root already: the root's temp pin
        // keeps all of it (and what arrives under it) until the run ends.
        let pin = index.temp_pin();
        if let Scope::Dag(root) = &scope {
            pin.add(&[*root]);
        }
        RunCtx {
            id,
            scope,
            pin,
            index,
            haves,
            config,
            state,
            counters: RunCounters::default(),
            confirming: tokio::sync::Mutex::new(()),
            progress,
        }
    }

    /// Sends the run's totals so far to progress subscribers.
    pub fn report_progress(&self, finished: bool) {
        let (wanted, peers_active) = self.state.counts();
        self.progress.send(Progress {
            run: self.id,
            scope: self.scope.clone(),
            blobs_fetched: self.counters.blobs.load(Relaxed),
            bytes_fetched: self.counters.bytes.load(Relaxed),
            wanted,
            peers_active,
            finished,
        });
    }

    /// Blocks a DAG needs that become wants (links of fetched blocks, what the index finds
    /// missing): those stored here already (outside the snapshot) are walked for what is
    /// missing under them instead, and those whose bytes are stored here under another
    /// codec are stored from those bytes, then walked likewise.
    async fn new_wants(&self, links: Vec<Cid>) -> Result<Vec<Cid>> {
        let mut seen = HashSet::new();
        let mut pending = links;
        let mut wants = Vec::new();
        // Each pass stores what it can from local bytes and walks below it; a block adopted
        // may link to more blocks held here under another codec.
        while !pending.is_empty() {
            let unknown: Vec<Cid> = pending
                .drain(..)
                .filter(|c| {
                    let id = ItemId::of(c);
                    seen.insert(id) && !self.state.knows(&id)
                })
                .collect();
            // Pinned before the check: what it finds stored stays stored for the run.
            self.pin.add(&unknown);
            let stored = self.index.store().has_many(&unknown).await?;
            let (mut present, mut absent) = (Vec::new(), Vec::new());
            for (cid, stored) in unknown.into_iter().zip(stored) {
                if stored {
                    present.push(cid);
                } else {
                    absent.push(cid);
                }
            }
            let adopted = adopt(
                &self.index,
                &self.scope,
                &self.config.source,
                &self.pin,
                &absent,
            )
            .await?;
            self.counters
                .adopted
                .fetch_add(adopted.len() as u64, Relaxed);
            let adopted_ids: HashSet<ItemId> = adopted.iter().map(ItemId::of).collect();
            wants.extend(
                absent
                    .into_iter()
                    .filter(|c| !adopted_ids.contains(&ItemId::of(c))),
            );
            present.extend(adopted);
            for cid in present {
                let limit = self.index.config().reachable_limit;
                let below = self.index.walk(&cid, limit).await?;
                if !below.complete {
                    return Err(seedbank_index::Error::LimitExceeded { root: cid, limit }.into());
                }
                pending.extend(below.missing);
            }
        }
        Ok(wants)
    }

    /// DAG scopes: the snapshot's missing blocks become the first wants.
    async fn first_wants(&self) -> Result<()> {
        if matches!(self.scope, Scope::Dag(_)) {
            let wants = self.new_wants(self.haves.missing().to_vec()).await?;
            self.state.want(wants);
        }
        Ok(())
    }

    /// With every known want fetched, asks the index whether the DAG is complete; if not,
    /// what it still misses becomes wants.
    async fn confirm_dag_complete(&self) -> Result<()> {
        let Scope::Dag(root) = &self.scope else {
            return Ok(());
        };
        let _one = self.confirming.lock().await;
        if self.state.is_over() || !self.state.is_idle() {
            return Ok(());
        }
        let missing = self.index.missing(root).await?;
        if missing.is_empty() {
            self.state.set_complete();
        } else {
            let wants = self.new_wants(missing).await?;
            if wants.is_empty() {
                // Stored from local bytes: look again.
                if self.index.missing(root).await?.is_empty() {
                    self.state.set_complete();
                }
            }
            self.state.want(wants);
        }
        Ok(())
    }

    /// Named scopes, after a session ended: complete once `named_quorum` peers'
    /// reconciliations left nothing to fetch, every fetched blob is committed, and no peer
    /// that answered is still being synced (a partial replica's session may still bring
    /// members the others lack).
    fn check_named_complete(&self) {
        if !matches!(self.scope, Scope::Named(_)) || self.state.is_over() {
            return;
        }
        let has_members = !self.haves.is_empty() || self.counters.progressed();
        let quorum = self.state.synced_peers() >= self.config.named_quorum.max(1);
        if quorum && has_members && self.state.settled() {
            self.state.set_complete();
        }
    }
}

/// What a run produced, and whether a "not found" may be cached.
pub(crate) struct RunResult {
    pub result: Result<Report>,
    /// True when some peer answered, so "not found" is an answer rather than an outage.
    pub answered: bool,
}

type SessionFuture<'a> = BoxFuture<'a, (u64, Result<(), Stop>)>;

/// One entry per session started: its peer's id, its counters, how it ended.
type SessionStatsList = Vec<(String, Arc<SessionStats>, Option<SessionOutcome>)>;

/// Runs discovery of `ctx.scope` against `peers`.
pub(crate) async fn run(
    ctx: Arc<RunCtx>,
    peers: &[Arc<dyn Peer>],
    scores: &Scores,
    haves_builds: impl Fn() -> u64,
    started: Instant,
) -> RunResult {
    if let Err(e) = ctx.config.validate() {
        return RunResult {
            result: Err(e),
            answered: false,
        };
    }
    let answered = AtomicBool::new(false);
    let mut stats = Vec::new();
    let mut failure = None;
    let work = drive(&ctx, peers, scores, &answered, &mut stats, &mut failure);
    match ctx.config.run_timeout {
        Some(timeout) => {
            // Dropping the unfinished work cancels its sessions, as completion does.
            if tokio::time::timeout_at(started + timeout, work)
                .await
                .is_err()
            {
                ctx.state.halt(Halt::Timeout(timeout));
            }
        }
        None => work.await,
    }
    if let Some(err) = failure {
        return RunResult {
            result: Err(err),
            answered: false,
        };
    }
    let sessions: Vec<SessionReport> = stats
        .into_iter()
        .map(|(peer, s, outcome)| {
            session_report(peer, outcome.unwrap_or(SessionOutcome::Cancelled), &s)
        })
        .collect();
    let report = build_report(&ctx, sessions, haves_builds(), started);
    let answered = answered.load(Relaxed);
    let result = match ctx.state.halted() {
        Some(Halt::OpenWants(limit)) => Err(Error::TooManyWants {
            limit,
            report: Box::new(report),
        }),
        Some(Halt::Timeout(timeout)) => Err(Error::RunTimedOut {
            timeout,
            report: Box::new(report),
        }),
        None if report.complete || ctx.counters.progressed() => Ok(report),
        None => Err(Error::NotFound {
            scope: ctx.scope.clone(),
            cached: false,
        }),
    };
    RunResult { result, answered }
}

/// The run's work: sessions until the run is over or nobody can progress, then a last
/// completion check. Fills `stats` as sessions start and end, and `failure` with a local
/// failure that ends the run.
async fn drive(
    ctx: &Arc<RunCtx>,
    peers: &[Arc<dyn Peer>],
    scores: &Scores,
    answered: &AtomicBool,
    stats: &mut SessionStatsList,
    failure: &mut Option<Error>,
) {
    let first = ctx.first_wants().await;
    ctx.report_progress(false);
    if let Err(e) = first {
        *failure = Some(e);
        return;
    }
    if let Scope::Dag(root) = &ctx.scope {
        if ctx.haves.missing().is_empty() && ctx.haves.contains(root) {
            ctx.state.set_complete();
        }
    }
    let config = ctx.config.clone();
    let candidates = scores.rank(peers, config.fanout, config.assumed_latency);
    // Candidate positions still to start. A session's id in the run state is its peer's
    // position, so a peer synced again in a later pass is never re-asked for what it lacked.
    let mut queue: std::collections::VecDeque<usize> = (0..candidates.len()).collect();
    let mut sessions: FuturesUnordered<SessionFuture<'_>> = FuturesUnordered::new();
    let mut peer_of: Vec<usize> = Vec::new();
    // Peers whose session this pass ended well, and the progress counted when it began.
    let mut done_this_pass: Vec<usize> = Vec::new();
    let mut pass_start = ctx.counters.progress();
    while !ctx.state.is_over() {
        while sessions.len() < config.concurrency.max(1) {
            let Some(position) = queue.pop_front() else {
                break;
            };
            let peer = &candidates[position];
            let index = stats.len();
            let session_stats = Arc::new(SessionStats::default());
            stats.push((peer.id().to_string(), session_stats.clone(), None));
            peer_of.push(position);
            sessions.push(Box::pin(async move {
                let session = Session::new(ctx, peer.as_ref(), position as u64, &session_stats);
                (index as u64, session.run().await)
            }));
        }
        if sessions.is_empty() {
            // Partial replicas: blocks fetched in this pass may link to blocks that peers
            // whose sessions ended earlier hold. Ask them again while a pass makes progress.
            if let Err(e) = ctx.confirm_dag_complete().await {
                *failure = Some(e);
                break;
            }
            let progress = ctx.counters.progress();
            let dag = matches!(ctx.scope, Scope::Dag(_));
            if ctx.state.is_over() || !dag || progress == pass_start || done_this_pass.is_empty() {
                break;
            }
            pass_start = progress;
            queue.extend(done_this_pass.drain(..));
            continue;
        }
        let (index, result) = tokio::select! {
            biased;
            _ = ctx.state.wait_over() => break,
            next = sessions.next() => match next {
                Some(next) => next,
                None => break,
            },
        };
        let entry = &mut stats[index as usize];
        let (outcome, verdict) = judge(result, failure);
        if matches!(verdict, Verdict::Success) {
            answered.store(true, Relaxed);
            done_this_pass.push(peer_of[index as usize]);
        }
        scores.record(&entry.0, verdict, entry.1.mean_latency());
        entry.2 = Some(outcome);
        if failure.is_some() {
            break;
        }
        ctx.check_named_complete();
    }
    // Dropping the unfinished sessions cancels them: their calls are abandoned mid-flight
    // and their claim guards release what they held. Nothing more is sent.
    drop(sessions);
    if failure.is_none() && ctx.state.halted().is_none() && ctx.counters.progressed() {
        // Every session ended: a DAG whose last wants arrived while others were still
        // claimed may be complete without a session having been idle to see it.
        if let Err(e) = ctx.confirm_dag_complete().await {
            *failure = Some(e);
        }
    }
}

/// How a finished session ended, and what that says about its peer. A local failure is
/// stored in `failure` and ends the run.
fn judge(result: Result<(), Stop>, failure: &mut Option<Error>) -> (SessionOutcome, Verdict) {
    match result {
        Ok(()) => (SessionOutcome::Done, Verdict::Success),
        Err(Stop::Ended) => (SessionOutcome::Done, Verdict::Success),
        Err(Stop::Local(e)) => {
            let outcome = SessionOutcome::Failed(format!("local: {e}"));
            *failure = Some(e);
            (outcome, Verdict::Cancelled)
        }
        Err(Stop::Peer(e)) => match e {
            Error::Timeout { .. } => (SessionOutcome::TimedOut, Verdict::Failure),
            e @ Error::OverBudget { .. } => {
                (SessionOutcome::Failed(e.to_string()), Verdict::Failure)
            }
            Error::Busy => (SessionOutcome::Busy, Verdict::Failure),
            e if e.is_lie() => (SessionOutcome::Liar(e.to_string()), Verdict::Liar),
            e => (SessionOutcome::Failed(e.to_string()), Verdict::Failure),
        },
    }
}

fn session_report(peer: String, outcome: SessionOutcome, s: &SessionStats) -> SessionReport {
    SessionReport {
        peer,
        outcome,
        rounds: s.rounds.load(Relaxed),
        fetches: s.fetches.load(Relaxed),
        blobs: s.blobs.load(Relaxed),
        needed: s.needed.load(Relaxed),
        bytes_sent: s.bytes_sent.load(Relaxed),
        bytes_received: s.bytes_received.load(Relaxed),
        reconcile_bytes: s.reconcile_bytes.load(Relaxed),
        latency: s.mean_latency(),
    }
}

fn build_report(
    ctx: &RunCtx,
    sessions: Vec<SessionReport>,
    haves_builds: u64,
    started: Instant,
) -> Report {
    let c = &ctx.counters;
    let sum = |f: fn(&SessionReport) -> u64| sessions.iter().map(f).sum::<u64>();
    let count =
        |f: fn(&SessionOutcome) -> bool| sessions.iter().filter(|s| f(&s.outcome)).count() as u64;
    Report {
        run: ctx.id,
        scope: ctx.scope.clone(),
        complete: ctx.state.is_complete(),
        // A session the scope completed before its first call never reached its peer.
        peers_contacted: sessions
            .iter()
            .filter(|s| s.rounds + s.fetches > 0)
            .map(|s| s.peer.as_str())
            .collect::<HashSet<_>>()
            .len() as u64,
        peers_failed: count(|o| {
            matches!(
                o,
                SessionOutcome::Failed(_) | SessionOutcome::TimedOut | SessionOutcome::Busy
            )
        }),
        liars: count(|o| matches!(o, SessionOutcome::Liar(_))),
        timeouts: count(|o| matches!(o, SessionOutcome::TimedOut)),
        busy: count(|o| matches!(o, SessionOutcome::Busy)),
        rounds: sum(|s| s.rounds),
        fetches: sum(|s| s.fetches),
        bytes_sent: sum(|s| s.bytes_sent),
        bytes_received: sum(|s| s.bytes_received),
        reconcile_bytes: sum(|s| s.reconcile_bytes),
        blobs_fetched: c.blobs.load(Relaxed),
        bytes_fetched: c.bytes.load(Relaxed),
        duplicates: c.duplicates.load(Relaxed),
        memberships_added: c.memberships.load(Relaxed),
        adopted: c.adopted.load(Relaxed),
        local_blobs: ctx.haves.len() as u64,
        haves_builds,
        elapsed: started.elapsed(),
        sessions,
    }
}
