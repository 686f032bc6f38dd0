//! The `Discovery` handle: single-flight per scope, the negative cache, peer scores.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::time::Instant;

use crate::config::DiscoveryConfig;
use crate::error::{Error, Result};
use crate::fanout::{PeerScore, Scores};
use crate::haves::HavesCache;
use crate::negative_cache::NegativeCache;
use crate::peer::Peer;
use crate::progress::{Progress, ProgressTx};
use crate::report::Report;
use crate::run::{run, Run};
use crate::scope::Scope;
use crate::single_flight::SingleFlight;

/// Counters of a [`Discovery`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiscoveryStats {
    /// Runs started (each contacted peers at most once per session).
    pub runs: u64,
    /// `discover` calls that joined a run already in flight for their scope.
    pub joined: u64,
    /// `discover` calls answered "not found" from the negative cache, sending nothing.
    pub negative_hits: u64,
    /// Runs in flight now.
    pub in_flight: u64,
}

/// Finds a scope's missing blobs at peers and stores them. Cheap to clone; clones share
/// runs, the negative cache and peer scores.
#[derive(Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
}

struct Inner {
    haves: HavesCache,
    config: Arc<DiscoveryConfig>,
    scores: Scores,
    flights: SingleFlight<Scope, Report>,
    negative: NegativeCache,
    runs: AtomicU64,
    joined: AtomicU64,
    negative_hits: AtomicU64,
    progress: Arc<ProgressTx>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Discovery over the index of `haves` (share the cache with the node's
    /// [`Responder`](crate::Responder)).
    pub fn new(haves: HavesCache, config: DiscoveryConfig) -> Self {
        Discovery {
            inner: Arc::new(Inner {
                negative: NegativeCache::new(config.negative_ttl, config.negative_capacity),
                config: Arc::new(config),
                haves,
                scores: Scores::default(),
                flights: SingleFlight::default(),
                runs: AtomicU64::new(0),
                joined: AtomicU64::new(0),
                negative_hits: AtomicU64::new(0),
                progress: Arc::default(),
            }),
        }
    }

    /// The haves cache runs take their snapshots from.
    pub fn haves(&self) -> &HavesCache {
        &self.inner.haves
    }

    /// The configuration.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.inner.config
    }

    /// Fetches what `scope` is missing from `peers` and stores it.
    ///
    /// Concurrent calls for one scope share one run (the first caller's `peers` are used)
    /// and each gets its result. A run takes the scope's haves snapshot once, contacts at
    /// most `fanout` peers best-ranked first, `concurrency` at a time, replacing failed and
    /// slow ones, claims each missing blob once across sessions, verifies every blob, stores
    /// them through the lane at `Normal` priority under a temp pin of the run's own (so a
    /// garbage collection meanwhile never takes them; pin the scope or root to keep them
    /// afterwards), and stops as soon as the scope is complete, cancelling the sessions
    /// still running. The run is a task of its own: it finishes even if every caller stops
    /// waiting.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no contacted peer had anything the scope needs (remembered
    /// for `negative_ttl` when some peer answered; repeats within it that offer no peer
    /// the run was not offered send nothing and get `cached: true`), [`Error::Index`] / [`Error::Blobstore`] if the local store failed,
    /// [`Error::Aborted`] if the run panicked.
    pub async fn discover(&self, scope: &Scope, peers: &[Arc<dyn Peer>]) -> Result<Report> {
        if self
            .inner
            .negative
            .contains(scope, peers.iter().map(|p| p.id()))
        {
            self.inner.negative_hits.fetch_add(1, Relaxed);
            return Err(Error::NotFound {
                scope: scope.clone(),
                cached: true,
            });
        }
        let inner = self.inner.clone();
        let (owned_scope, peers) = (scope.clone(), peers.to_vec());
        let (run, started) = self
            .inner
            .flights
            .run(scope, move || run_once(inner, owned_scope, peers));
        if !started {
            self.inner.joined.fetch_add(1, Relaxed);
        }
        run.await
    }

    /// What this discovery remembers about a peer, if it ever contacted it.
    pub fn peer_score(&self, peer: &str) -> Option<PeerScore> {
        self.inner.scores.get(peer)
    }

    /// Progress events of every run of this discovery from now on: one when a run starts,
    /// one after each batch it stores, and a last one (`finished`) when it ends. Each
    /// carries the run's totals so far, so a receiver that lags (the channel keeps the
    /// newest 256 events) only loses detail.
    pub fn progress(&self) -> tokio::sync::broadcast::Receiver<Progress> {
        self.inner.progress.subscribe()
    }

    /// Counters so far.
    pub fn stats(&self) -> DiscoveryStats {
        let i = &self.inner;
        DiscoveryStats {
            runs: i.runs.load(Relaxed),
            joined: i.joined.load(Relaxed),
            negative_hits: i.negative_hits.load(Relaxed),
            in_flight: i.flights.in_flight() as u64,
        }
    }
}

/// One run, as spawned by the single-flight table.
async fn run_once(inner: Arc<Inner>, scope: Scope, peers: Vec<Arc<dyn Peer>>) -> Result<Report> {
    let started = Instant::now();
    let id = inner.runs.fetch_add(1, Relaxed) + 1;
    let builds_before = inner.haves.stats().builds;
    let haves = inner.haves.get(&scope).await?;
    let index = inner.haves.index().clone();
    let ctx = Arc::new(Run::new(
        id,
        scope.clone(),
        index,
        haves,
        inner.config.clone(),
        inner.progress.clone(),
    ));
    let builds = || inner.haves.stats().builds - builds_before;
    let outcome = run(ctx.clone(), &peers, &inner.scores, builds, started).await;
    ctx.report_progress(true);
    // Recorded before the run leaves the single-flight table, so no caller can slip in
    // between and dial again.
    match &outcome.result {
        Err(Error::NotFound { .. }) if outcome.answered => inner
            .negative
            .insert(scope.clone(), peers.iter().map(|p| p.id())),
        Ok(report) if report.complete => inner.negative.remove(&scope),
        _ => {}
    }
    tracing::debug!(%scope, run = id, ok = outcome.result.is_ok(), "discovery run ended");
    outcome.result
}
