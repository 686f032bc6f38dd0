//! One discovery run: pick peers, run at most `concurrency` sessions at once up to
//! `fanout` peers, replace failed ones, and stop (cancelling the rest) once the scope is
//! complete, or once the run passes one of its limits (`max_open_wants`, `run_timeout`).
//!
//! - [`Run`] (`owner`): the one owner of the run's state; sessions ask it, nothing else.
//! - `state`: its want table (claims, offers, probes), bounded and sub-linear.
//! - `session`: one peer — reconcile, then claim, fetch and hand what arrived to the run.
//! - `ingest`: verify, parse links once, and the one path by which blobs are stored.
//! - `Sessions` (here): which peer runs when, passes over partial replicas, the report.

pub(crate) mod ingest;
mod owner;
mod session;
mod state;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use crate::error::{with_causes, Error, Result};
use crate::fanout::{Scores, Verdict};
use crate::peer::Peer;
use crate::report::{Report, SessionOutcome, SessionReport};
pub(crate) use owner::Run;
use session::{Session, SessionStats, Stop};
use state::Halt;

/// What a run produced, and whether a "not found" may be cached.
pub(crate) struct RunResult {
    pub result: Result<Report>,
    /// True when some peer answered, so "not found" is an answer rather than an outage.
    pub answered: bool,
}

/// Runs discovery of `run`'s scope against `peers`: sessions until the run is over or
/// nobody can progress (within `run_timeout`), then the result.
pub(crate) async fn run(
    run: Arc<Run>,
    peers: &[Arc<dyn Peer>],
    scores: &Scores,
    haves_builds: impl Fn() -> u64,
    started: Instant,
) -> RunResult {
    if let Err(e) = run.config().validate() {
        return RunResult {
            result: Err(e),
            answered: false,
        };
    }
    let candidates = scores.rank(peers, run.config().fanout, run.config().assumed_latency);
    let mut sessions = Sessions::new(&run, &candidates, scores);
    within_timeout(&run, started, sessions.drive()).await;
    // Past the timeout the sessions still running are cancelled here (their claim guards
    // release what they held), before the report is made.
    sessions.running = FuturesUnordered::new();
    let answered = sessions.answered;
    let result = match sessions.failure.take() {
        Some(err) => Err(err),
        None => conclude(&run, sessions.reports(), haves_builds(), started),
    };
    RunResult { result, answered }
}

/// Runs `work` until the run's `run_timeout` passes, if it has one; past it, the run halts
/// (dropping the unfinished work cancels its sessions, as completion does).
async fn within_timeout(run: &Run, started: Instant, work: impl std::future::Future<Output = ()>) {
    match run.config().run_timeout {
        Some(timeout) => {
            if tokio::time::timeout_at(started + timeout, work)
                .await
                .is_err()
            {
                run.halt(Halt::Timeout(timeout));
            }
        }
        None => work.await,
    }
}

/// The run's answer: its report, the report inside the error of a limit that ended it, or
/// "not found" when nothing was stored and the scope is not complete.
fn conclude(
    run: &Run,
    sessions: Vec<SessionReport>,
    haves_builds: u64,
    started: Instant,
) -> Result<Report> {
    let report = build_report(run, sessions, haves_builds, started);
    match run.halted() {
        Some(halt) => Err(Run::halt_error(halt, report)),
        None if report.complete || run.counters.progressed() => Ok(report),
        None => Err(Error::NotFound {
            scope: run.scope().clone(),
            cached: false,
        }),
    }
}

type SessionFuture<'a> = BoxFuture<'a, (usize, Result<(), Stop>)>;

/// One session started: its peer's position among the candidates, its peer's id, its
/// counters, how it ended.
struct Started {
    position: usize,
    peer: String,
    stats: Arc<SessionStats>,
    outcome: Option<SessionOutcome>,
}

/// The run's sessions: which candidate runs next, those running, those that ended.
struct Sessions<'a> {
    run: &'a Run,
    candidates: &'a [Arc<dyn Peer>],
    scores: &'a Scores,
    /// Candidate positions still to start. A session's id in the run state is its peer's
    /// position, so a peer synced again in a later pass is never re-asked for what it
    /// lacked.
    queue: VecDeque<usize>,
    running: FuturesUnordered<SessionFuture<'a>>,
    started: Vec<Started>,
    /// Peers whose session ended well in this pass, and the progress counted when it began.
    done_this_pass: Vec<usize>,
    pass_start: u64,
    /// True once some peer answered.
    answered: bool,
    /// A local failure that ends the run.
    failure: Option<Error>,
}

impl<'a> Sessions<'a> {
    fn new(run: &'a Run, candidates: &'a [Arc<dyn Peer>], scores: &'a Scores) -> Self {
        Sessions {
            run,
            candidates,
            scores,
            queue: (0..candidates.len()).collect(),
            running: FuturesUnordered::new(),
            started: Vec::new(),
            done_this_pass: Vec::new(),
            pass_start: 0,
            answered: false,
            failure: None,
        }
    }

    /// Sessions until the run is over, nobody can progress, or a local failure; then a
    /// last completion check.
    async fn drive(&mut self) {
        let run = self.run;
        let first = run.first_wants().await;
        run.report_progress(false);
        if let Err(e) = first {
            self.failure = Some(e);
            return;
        }
        self.pass_start = run.counters.progress();
        while !run.is_over() && self.failure.is_none() {
            self.start_more();
            if self.running.is_empty() {
                if !self.next_pass().await {
                    break;
                }
                continue;
            }
            let ended = tokio::select! {
                biased;
                _ = run.wait_over() => break,
                next = self.running.next() => next,
            };
            let Some((index, result)) = ended else { break };
            self.ended(index, result);
            run.check_named_complete(!self.running.is_empty());
        }
        // Dropping the unfinished sessions cancels them: their calls are abandoned
        // mid-flight and their claim guards release what they held. Nothing more is sent.
        self.running = FuturesUnordered::new();
        if self.failure.is_none() && run.halted().is_none() && run.counters.progressed() {
            // Every session ended: a DAG whose last wants arrived while others were still
            // claimed may be complete without a session having been idle to see it.
            if let Err(e) = run.confirm_dag_complete().await {
                self.failure = Some(e);
            }
        }
    }

    /// Starts queued candidates up to `concurrency` sessions running.
    fn start_more(&mut self) {
        let run = self.run;
        while self.running.len() < run.config().concurrency.max(1) {
            let Some(position) = self.queue.pop_front() else {
                break;
            };
            let peer = self.candidates[position].as_ref();
            let stats = Arc::new(SessionStats::default());
            let index = self.started.len();
            self.started.push(Started {
                position,
                peer: peer.id().to_string(),
                stats: stats.clone(),
                outcome: None,
            });
            self.running.push(Box::pin(async move {
                let session = Session::new(run, peer, position as u64, &stats);
                (index, session.run().await)
            }));
        }
    }

    /// Nothing running: checks a DAG for completion and, over partial replicas (blocks
    /// fetched in this pass may link to blocks that peers whose sessions ended earlier
    /// hold), queues this pass's peers again while a pass makes progress. False when the
    /// run has nothing more to do.
    async fn next_pass(&mut self) -> bool {
        let run = self.run;
        if let Err(e) = run.confirm_dag_complete().await {
            self.failure = Some(e);
            return false;
        }
        let progress = run.counters.progress();
        if run.is_over()
            || !run.dag()
            || progress == self.pass_start
            || self.done_this_pass.is_empty()
        {
            return false;
        }
        self.pass_start = progress;
        self.queue.extend(self.done_this_pass.drain(..));
        true
    }

    /// Records how the session `index` ended, and what that says about its peer.
    fn ended(&mut self, index: usize, result: std::result::Result<(), Stop>) {
        let (outcome, verdict) = judge(result, &mut self.failure);
        let entry = &mut self.started[index];
        if matches!(verdict, Verdict::Success) {
            self.answered = true;
            self.done_this_pass.push(entry.position);
        }
        self.scores
            .record(&entry.peer, verdict, entry.stats.mean_latency());
        entry.outcome = Some(outcome);
    }

    /// One report per session started, a session never ended counted as cancelled.
    fn reports(&mut self) -> Vec<SessionReport> {
        self.started
            .drain(..)
            .map(|s| {
                let outcome = s.outcome.unwrap_or(SessionOutcome::Cancelled);
                session_report(s.peer, outcome, &s.stats)
            })
            .collect()
    }
}

/// How a finished session ended, and what that says about its peer. A local failure is
/// stored in `failure` and ends the run.
fn judge(
    result: std::result::Result<(), Stop>,
    failure: &mut Option<Error>,
) -> (SessionOutcome, Verdict) {
    match result {
        Ok(()) => (SessionOutcome::Done, Verdict::Success),
        Err(Stop::Ended) => (SessionOutcome::Done, Verdict::Success),
        Err(Stop::Local(e)) => {
            // The report is text: name the causes (a store error's SQLite error) as the
            // peer arms do; the error itself, causes and all, is what the run returns.
            let outcome = SessionOutcome::Failed(format!("local: {}", with_causes(&e)));
            *failure = Some(e);
            (outcome, Verdict::Cancelled)
        }
        Err(Stop::Peer(e)) => match e {
            Error::Timeout { .. } => (SessionOutcome::TimedOut, Verdict::Failure),
            e @ Error::OverBudget { .. } => {
                (SessionOutcome::Failed(with_causes(&e)), Verdict::Failure)
            }
            Error::Busy => (SessionOutcome::Busy, Verdict::Failure),
            e if e.is_lie() => (SessionOutcome::Liar(with_causes(&e)), Verdict::Liar),
            e => (SessionOutcome::Failed(with_causes(&e)), Verdict::Failure),
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
    run: &Run,
    sessions: Vec<SessionReport>,
    haves_builds: u64,
    started: Instant,
) -> Report {
    let c = &run.counters;
    let sum = |f: fn(&SessionReport) -> u64| sessions.iter().map(f).sum::<u64>();
    let count =
        |f: fn(&SessionOutcome) -> bool| sessions.iter().filter(|s| f(&s.outcome)).count() as u64;
    Report {
        run: run.id,
        scope: run.scope().clone(),
        complete: run.is_complete(),
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
        local_blobs: run.haves().len() as u64,
        haves_builds,
        elapsed: started.elapsed(),
        sessions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_local_failure_is_reported_with_its_causes_and_kept_with_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-database");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let store_err = seedbank_blobstore::Store::open_read_only(&path, Default::default())
            .expect_err("not a database");
        let sqlite_text = store_err.source().expect("SQLite's error").to_string();
        let mut failure = None;
        let (outcome, verdict) = judge(Err(Stop::Local(Error::from(store_err))), &mut failure);
        assert!(matches!(verdict, Verdict::Cancelled));
        let SessionOutcome::Failed(text) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(text.starts_with("local: "), "{text}");
        // The error's own text ends at its reason; the report goes on down its causes.
        assert!(text.contains(&format!("{sqlite_text}: ")), "{text}");
        let failure = failure.expect("the run fails with the error");
        let cause = failure.source().expect("the store error's source");
        assert!(
            cause
                .downcast_ref::<seedbank_blobstore::rusqlite::Error>()
                .is_some(),
            "{cause:?}"
        );
    }
}
