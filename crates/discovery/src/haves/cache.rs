//! The shared haves cache: one build per `(scope, generation)`, however many callers.
//!
//! A build that passes the DAG walk limit is remembered too (a negative entry under the
//! same key, so it lapses when the generation moves): any stored CID is a `dag:` root a
//! remote may ask about, and without the entry every repeat would walk again. Builds a
//! remote causes are bounded per remote ([`HavesConfig::max_builds_per_remote`]); the
//! remote is named by the transport around the request (see [`serving`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use parking_lot::Mutex;
use seedbank_index::Index;
use tokio::sync::Semaphore;

use super::{dag, named, BuildKind, Haves, Sealed};
use crate::error::{Error, Result};
use crate::scope::Scope;

/// Haves cache configuration.
#[derive(Clone, Debug)]
pub struct HavesConfig {
    /// Most snapshot builds running at once (default 2). Builds are scans on the data read
    /// pool; bounding them keeps pool connections free for `get` and `has_many`.
    pub max_concurrent_builds: usize,
    /// Total items kept across cached snapshots (default 2,000,000; about 200 bytes each).
    pub max_items: u64,
    /// A snapshot nobody asked for in this long is dropped (default 10 minutes).
    pub time_to_idle: Duration,
    /// Most blocks a DAG snapshot walks, present and missing together (default: the
    /// index's `reachable_limit`).
    pub dag_limit: Option<usize>,
    /// Builds one remote may have running or waiting for a slot at once (default 1). A
    /// lookup by that remote that needs one more is refused with
    /// [`Error::Busy`](crate::Error::Busy); cache hits are never refused. The remote is
    /// the one named around the request ([`Responder::serving`](crate::Responder::serving));
    /// local lookups are not counted.
    pub max_builds_per_remote: usize,
    /// Builds that passed `dag_limit` remembered at once (default 10,000), so asking again
    /// about such a root at the same generation costs a lookup, not a walk. Entries lapse
    /// with the generation and after `time_to_idle`.
    pub max_failed: u64,
}

impl Default for HavesConfig {
    fn default() -> Self {
        HavesConfig {
            max_concurrent_builds: 2,
            max_items: 2_000_000,
            time_to_idle: Duration::from_secs(600),
            dag_limit: None,
            max_builds_per_remote: 1,
            max_failed: 10_000,
        }
    }
}

/// Counters of a [`HavesCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HavesStats {
    /// Snapshots built (full, incremental and reused together): one per `(scope,
    /// generation)` asked for while not cached.
    pub builds: u64,
    /// Builds that scanned the whole scope.
    pub full: u64,
    /// Builds that extended the previous snapshot.
    pub incremental: u64,
    /// Builds that found nothing changed in the scope and shared the previous items.
    pub reused: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Peer lookups of a scope with nothing here (a named scope that never existed, a DAG
    /// whose root is not stored), answered empty without a build or a cache entry.
    pub empty: u64,
    /// Builds that failed (a DAG walk over its limit, a read error).
    pub failed: u64,
    /// Lookups answered from a remembered failure (a DAG over the walk limit at this
    /// generation), without a build.
    pub failed_hits: u64,
    /// Lookups refused because the asking remote had `max_builds_per_remote` builds going.
    pub refused: u64,
    /// Builds running or waiting for a build slot now (a gauge).
    pub building: u64,
}

/// Haves snapshots keyed by `(scope, generation)` in a `moka` cache.
///
/// Every lookup goes through `try_get_with`, which coalesces concurrent callers for the
/// same key into one build: N peer sessions, N responder answers and N concurrent
/// discoveries of one snapshot cost one scan. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct HavesCache {
    inner: Arc<Inner>,
}

struct Inner {
    index: Index,
    config: HavesConfig,
    cache: Cache<(Scope, u64), Arc<Haves>>,
    /// Builds that passed the walk limit, by the key they were built for.
    failed: Cache<(Scope, u64), Error>,
    /// Builds running or waiting for a slot, per remote that caused them.
    remotes: Mutex<HashMap<Arc<str>, usize>>,
    /// The items of every empty snapshot handed to peers.
    empty: Arc<Sealed>,
    builds: Semaphore,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    lookups: AtomicU64,
    full: AtomicU64,
    incremental: AtomicU64,
    reused: AtomicU64,
    empty: AtomicU64,
    failed: AtomicU64,
    failed_hits: AtomicU64,
    refused: AtomicU64,
    building: AtomicU64,
}

/// Counts a build in [`Counters::building`] until dropped.
struct Building<'a>(&'a AtomicU64);

impl<'a> Building<'a> {
    fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        Building(gauge)
    }
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

tokio::task_local! {
    /// The remote a request is being answered for.
    static REMOTE: Arc<str>;
}

/// Runs `request` on behalf of `remote`: haves builds it causes count against that
/// remote's [`HavesConfig::max_builds_per_remote`].
pub(crate) async fn serving<F: Future>(remote: Arc<str>, request: F) -> F::Output {
    REMOTE.scope(remote, request).await
}

/// One build counted against a remote until dropped.
struct RemoteBuild<'a> {
    remotes: &'a Mutex<HashMap<Arc<str>, usize>>,
    remote: Arc<str>,
}

impl Drop for RemoteBuild<'_> {
    fn drop(&mut self) {
        let mut remotes = self.remotes.lock();
        if let Some(n) = remotes.get_mut(&self.remote) {
            *n -= 1;
            if *n == 0 {
                remotes.remove(&self.remote);
            }
        }
    }
}

/// Weight of a cached snapshot, in items: its blocks (missing ones included) plus one for the
/// entry and one per 64 bytes of its scope name, so many small entries with long names fill
/// the cache as surely as a few large ones.
fn weight(key: &(Scope, u64), haves: &Haves) -> u32 {
    let name = match &key.0 {
        Scope::Named(name) => name.len() / 64,
        Scope::Dag(_) => 0,
    };
    let blocks = haves.sealed().nodes.len();
    (blocks + name + 1).try_into().unwrap_or(u32::MAX)
}

impl std::fmt::Debug for HavesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HavesCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl HavesCache {
    /// A cache over `index`'s scopes.
    pub fn new(index: Index, config: HavesConfig) -> Self {
        let cache = Cache::builder()
            .max_capacity(config.max_items)
            .weigher(|key, haves: &Arc<Haves>| weight(key, haves))
            .time_to_idle(config.time_to_idle)
            .build();
        let failed = Cache::builder()
            .max_capacity(config.max_failed)
            .time_to_idle(config.time_to_idle)
            .build();
        HavesCache {
            inner: Arc::new(Inner {
                builds: Semaphore::new(config.max_concurrent_builds.max(1)),
                empty: Arc::new(Sealed::new(Default::default())),
                index,
                config,
                cache,
                failed,
                remotes: Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
        }
    }

    /// The index the snapshots are read from.
    pub fn index(&self) -> &Index {
        &self.inner.index
    }

    /// The scope's current generation, from the `info` pool: the named scope's generation,
    /// or the index's DAG generation for a DAG scope.
    ///
    /// # Errors
    /// [`Error::Index`] if the store is closed or the read failed.
    pub async fn generation(&self, scope: &Scope) -> Result<u64> {
        let index = &self.inner.index;
        Ok(match scope {
            Scope::Named(name) => index.generation(name).await?,
            Scope::Dag(_) => index.dag_generation().await?,
        })
    }

    /// The snapshot of `scope` at its current generation, built if not cached.
    ///
    /// # Errors
    /// [`Error::Index`] / [`Error::Blobstore`] if reading failed, or a DAG walk passed its
    /// limit ([`seedbank_index::Error::LimitExceeded`]).
    pub async fn get(&self, scope: &Scope) -> Result<Arc<Haves>> {
        let generation = self.generation(scope).await?;
        self.get_at(scope, generation).await
    }

    /// The snapshot cached for `(scope, generation)`, built now if absent. A build reads the
    /// current state, which may be newer than `generation` (see [`Haves::generation`]). A
    /// build of this key that passed the DAG walk limit is remembered: asking again fails
    /// the same way without a walk.
    ///
    /// # Errors
    /// As [`HavesCache::get`], and [`Error::Busy`] when the remote this lookup is made for
    /// has `max_builds_per_remote` builds going and this one needs another.
    pub async fn get_at(&self, scope: &Scope, generation: u64) -> Result<Arc<Haves>> {
        self.inner.counters.lookups.fetch_add(1, Relaxed);
        let key = (scope.clone(), generation);
        if let Some(err) = self.inner.failed.get(&key).await {
            self.inner.counters.failed_hits.fetch_add(1, Relaxed);
            return Err(err);
        }
        self.inner
            .cache
            .try_get_with(key.clone(), self.build(key))
            .await
            .map_err(|e: Arc<Error>| (*e).clone())
    }

    /// The snapshot a peer asking about `scope` is answered from: as [`HavesCache::get`],
    /// except that a scope with nothing here (a named scope that never existed, a DAG whose
    /// root is not stored) is answered with an empty snapshot, cheaply (one metadata read),
    /// without a build or a cache entry. Peers choose scope names freely; they must not be
    /// able to fill the cache or force builds with names that match nothing.
    ///
    /// # Errors
    /// As [`HavesCache::get`].
    pub async fn get_for_peer(&self, scope: &Scope) -> Result<Arc<Haves>> {
        let index = &self.inner.index;
        let generation = match scope {
            Scope::Named(name) => index.generation(name).await?,
            Scope::Dag(root) => {
                if !index.store().has(root).await? {
                    return Ok(self.empty(scope));
                }
                index.dag_generation().await?
            }
        };
        if generation == 0 && matches!(scope, Scope::Named(_)) {
            return Ok(self.empty(scope));
        }
        self.get_at(scope, generation).await
    }

    fn empty(&self, scope: &Scope) -> Arc<Haves> {
        self.inner.counters.empty.fetch_add(1, Relaxed);
        let sealed = self.inner.empty.clone();
        Arc::new(Haves::new(
            scope.clone(),
            0,
            BuildKind::Reused,
            sealed,
            None,
        ))
    }

    /// Snapshots cached now, and their total weight in items (after pending evictions).
    pub async fn cached(&self) -> (u64, u64) {
        self.inner.cache.run_pending_tasks().await;
        (
            self.inner.cache.entry_count(),
            self.inner.cache.weighted_size(),
        )
    }

    /// Counters so far.
    pub fn stats(&self) -> HavesStats {
        let c = &self.inner.counters;
        let (full, incremental, reused) = (
            c.full.load(Relaxed),
            c.incremental.load(Relaxed),
            c.reused.load(Relaxed),
        );
        let builds = full + incremental + reused;
        let (failed, failed_hits, refused) = (
            c.failed.load(Relaxed),
            c.failed_hits.load(Relaxed),
            c.refused.load(Relaxed),
        );
        let misses = builds + failed + failed_hits + refused;
        HavesStats {
            builds,
            full,
            incremental,
            reused,
            hits: c.lookups.load(Relaxed).saturating_sub(misses),
            empty: c.empty.load(Relaxed),
            failed,
            failed_hits,
            refused,
            building: c.building.load(Relaxed),
        }
    }

    /// Counts a build against the remote this lookup is made for, if any.
    ///
    /// # Errors
    /// [`Error::Busy`] when that remote has its `max_builds_per_remote` going already.
    fn remote_build(&self) -> Result<Option<RemoteBuild<'_>>> {
        let Ok(remote) = REMOTE.try_with(Arc::clone) else {
            return Ok(None);
        };
        let max = self.inner.config.max_builds_per_remote.max(1);
        let mut remotes = self.inner.remotes.lock();
        let n = remotes.entry(remote.clone()).or_insert(0);
        if *n >= max {
            self.inner.counters.refused.fetch_add(1, Relaxed);
            return Err(Error::Busy);
        }
        *n += 1;
        Ok(Some(RemoteBuild {
            remotes: &self.inner.remotes,
            remote,
        }))
    }

    /// Builds the snapshot of `key`, counting its failures (and remembering those that
    /// passed the walk limit).
    async fn build(&self, key: (Scope, u64)) -> Result<Arc<Haves>> {
        let _remote = self.remote_build()?;
        let building = Building::new(&self.inner.counters.building);
        let built = self.build_now(key.0.clone()).await;
        drop(building);
        if let Err(e) = &built {
            self.inner.counters.failed.fetch_add(1, Relaxed);
            if matches!(e, Error::Index(e) if matches!(**e, seedbank_index::Error::LimitExceeded { .. }))
            {
                self.inner.failed.insert(key, e.clone()).await;
            }
        }
        built
    }

    /// Builds a snapshot on the data pool, after waiting for a build slot.
    async fn build_now(&self, scope: Scope) -> Result<Arc<Haves>> {
        let _slot = self
            .inner
            .builds
            .acquire()
            .await
            .map_err(|_| Error::aborted("haves cache closed"))?;
        let prev = self.previous(&scope);
        let limit = self
            .inner
            .config
            .dag_limit
            .unwrap_or(self.inner.index.config().reachable_limit);
        let index = &self.inner.index;
        let haves = match scope {
            Scope::Named(name) => named::build(index, &name, prev).await?,
            Scope::Dag(root) => dag::build(index, root, prev, limit).await?,
        };
        let counter = match haves.build_kind() {
            BuildKind::Full => &self.inner.counters.full,
            BuildKind::Incremental => &self.inner.counters.incremental,
            BuildKind::Reused => &self.inner.counters.reused,
        };
        counter.fetch_add(1, Relaxed);
        tracing::debug!(scope = %haves.scope(), generation = haves.generation(),
            items = haves.len(), kind = ?haves.build_kind(), "built haves");
        Ok(Arc::new(haves))
    }

    /// The newest cached snapshot of `scope`, to extend.
    fn previous(&self, scope: &Scope) -> Option<Arc<Haves>> {
        self.inner
            .cache
            .iter()
            .filter(|(key, _)| &key.0 == scope)
            .map(|(_, haves)| haves)
            .max_by_key(|haves| haves.generation())
    }
}
