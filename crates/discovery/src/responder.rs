//! The local side of other peers' discoveries: answers `reconcile` and `fetch` from the
//! store, from the same cached haves snapshots local discoveries use.
//!
//! Negentropy answers are computed on a blocking thread: a reconciliation round over a
//! large snapshot is CPU work a remote chooses, and must not stall the async workers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use seedbank_index::Index;
use tokio::sync::Semaphore;

use crate::config::check_frame_limit;
use crate::error::{Error, Result};
use crate::haves::{serving, HavesCache};
use crate::message::Message;
use crate::peer::Peer;
use crate::reconcile::answer;
use crate::scope::Scope;

/// Blobs read per data-pool hop while answering a `fetch`.
const FETCH_READ_CHUNK: usize = 64;

/// Longest scope name a peer may ask about, in bytes.
pub const MAX_SCOPE_NAME: usize = 1024;

/// Responder configuration.
#[derive(Clone, Debug)]
pub struct ResponderConfig {
    /// Reconcile requests served at once (default 8).
    pub max_in_flight: usize,
    /// Requests allowed to wait for a slot on top of those (default 32). Past
    /// `max_in_flight + max_queued` a request is answered [`Error::Busy`] at once, so load
    /// never queues without bound.
    pub max_queued: usize,
    /// Negentropy frame size limit in bytes (default 256 KiB), within
    /// [`DiscoveryConfig::MIN_FRAME_LIMIT`](crate::DiscoveryConfig::MIN_FRAME_LIMIT)..=
    /// [`DiscoveryConfig::MAX_FRAME_LIMIT`](crate::DiscoveryConfig::MAX_FRAME_LIMIT). 0
    /// (negentropy's "unlimited") is refused by [`ResponderConfig::validate`]: answers
    /// would outgrow what peers accept on the wire.
    pub frame_limit: u64,
    /// Most ids one request may ask to resolve (default 16,384).
    pub max_want: usize,
    /// Most CIDs one `fetch` answers (default 512); the rest are left out.
    pub max_fetch_blobs: usize,
    /// Most bytes one `fetch` answers (default 16 MiB; at least one blob is always sent).
    pub max_fetch_bytes: usize,
}

impl ResponderConfig {
    /// Checks the values a responder relies on.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first field out of range: `frame_limit` outside
    /// `MIN_FRAME_LIMIT..=MAX_FRAME_LIMIT` (0 included).
    pub fn validate(&self) -> Result<()> {
        check_frame_limit(self.frame_limit)
    }
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            max_in_flight: 8,
            max_queued: 32,
            frame_limit: 256 * 1024,
            max_want: 16_384,
            max_fetch_blobs: 512,
            max_fetch_bytes: 16 << 20,
        }
    }
}

/// Counters of a [`Responder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResponderStats {
    /// Reconcile requests answered.
    pub reconciles: u64,
    /// Requests refused with [`Error::Busy`].
    pub busy: u64,
    /// Fetch requests answered.
    pub fetches: u64,
    /// Blobs sent.
    pub blobs_sent: u64,
    /// Blob bytes sent.
    pub bytes_sent: u64,
}

/// Answers other peers from the local store. Cheap to clone.
#[derive(Clone)]
pub struct Responder {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    index: Index,
    haves: HavesCache,
    config: ResponderConfig,
    /// Admission: in-flight plus queued requests. `try_acquire` only, never waited on.
    admitted: Arc<Semaphore>,
    /// Execution slots.
    running: Semaphore,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    reconciles: AtomicU64,
    busy: AtomicU64,
    fetches: AtomicU64,
    blobs_sent: AtomicU64,
    bytes_sent: AtomicU64,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("id", &self.inner.id)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder named `id` over `haves` (share the cache with the node's
    /// [`Discovery`](crate::Discovery) so both use one snapshot per generation).
    ///
    /// A `frame_limit` that [`ResponderConfig::validate`] refuses is replaced by the
    /// default (256 KiB), with a warning: a responder never answers without a frame limit.
    /// Call `validate` first to refuse such a configuration instead.
    pub fn new(id: impl Into<String>, haves: HavesCache, mut config: ResponderConfig) -> Self {
        if let Err(e) = config.validate() {
            let default = ResponderConfig::default().frame_limit;
            tracing::warn!("{e}; the responder uses frame_limit {default}");
            config.frame_limit = default;
        }
        let max_in_flight = config.max_in_flight.max(1);
        Responder {
            inner: Arc::new(Inner {
                id: id.into(),
                index: haves.index().clone(),
                admitted: Arc::new(Semaphore::new(max_in_flight + config.max_queued)),
                running: Semaphore::new(max_in_flight),
                haves,
                config,
                counters: Counters::default(),
            }),
        }
    }

    /// The haves cache answers are computed from.
    pub fn haves(&self) -> &HavesCache {
        &self.inner.haves
    }

    /// Runs `request` (a call into a responder, directly or through a wrapping
    /// [`Peer`]) on behalf of `remote`, the authenticated id of the node that sent it:
    /// the haves builds it causes count against that remote's
    /// [`max_builds_per_remote`](crate::HavesConfig::max_builds_per_remote), and past it
    /// the request fails with [`Error::Busy`]. Transports wrap every request they serve
    /// (`seedbank-net` does); calls made outside it are not counted against anyone.
    pub async fn serving<F: Future>(remote: impl Into<Arc<str>>, request: F) -> F::Output {
        serving(remote.into(), request).await
    }

    /// Answers one reconciliation request for `scope` from the cached snapshot at the
    /// scope's current generation.
    ///
    /// # Errors
    /// [`Error::Busy`] past the admission limit, [`Error::Protocol`] for a malformed
    /// request, [`Error::Index`] / [`Error::Blobstore`] if the snapshot could not be read.
    pub async fn reconcile(&self, scope: &Scope, request: Message) -> Result<Message> {
        let _admitted = self.admit()?;
        let _running = self
            .inner
            .running
            .acquire()
            .await
            .map_err(|_| Error::Busy)?;
        if let Scope::Named(name) = scope {
            if name.len() > MAX_SCOPE_NAME {
                return Err(Error::protocol(format!(
                    "scope name of {} bytes, limit {MAX_SCOPE_NAME}",
                    name.len()
                )));
            }
        }
        let haves = self.inner.haves.get_for_peer(scope).await?;
        let (frame_limit, max_want) = (self.inner.config.frame_limit, self.inner.config.max_want);
        let reply =
            tokio::task::spawn_blocking(move || answer(&haves, &request, frame_limit, max_want))
                .await
                .map_err(|e| Error::task_failed("reconciliation", e))??;
        self.inner.counters.reconciles.fetch_add(1, Relaxed);
        Ok(reply)
    }

    /// Returns the stored blobs among `cids` (verified on read), up to the configured
    /// count and byte limits, which are checked on the stored sizes before any byte is
    /// read; CIDs not stored are left out.
    ///
    /// # Errors
    /// [`Error::Busy`] past the admission limit, [`Error::Blobstore`] if the store is closed
    /// or a read failed. A corrupt stored blob is left out, never sent.
    pub async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        let _admitted = self.admit()?;
        let config = &self.inner.config;
        let store = self.inner.index.store();
        let asked: Vec<Cid> = cids.iter().take(config.max_fetch_blobs).copied().collect();
        // Sizes first (metadata only), so no byte past the budget is ever read.
        let sizes = sizes(store, &asked).await?;
        let mut wanted = Vec::new();
        let mut budget = 0usize;
        for (cid, size) in asked.into_iter().zip(sizes) {
            let Some(size) = size else { continue };
            if !wanted.is_empty() && budget.saturating_add(size) > config.max_fetch_bytes {
                break;
            }
            budget = budget.saturating_add(size);
            wanted.push(cid);
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        for chunk in wanted.chunks(FETCH_READ_CHUNK) {
            for (cid, read) in chunk.iter().zip(store.get_many(chunk).await?) {
                let data = match read {
                    Ok(Some(data)) => data,
                    Ok(None) | Err(seedbank_blobstore::Error::UnsupportedHash { .. }) => continue,
                    Err(seedbank_blobstore::Error::Corrupt { cid }) => {
                        tracing::warn!(%cid, "not serving a corrupt stored blob");
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                bytes += data.len();
                out.push((*cid, data));
            }
        }
        let c = &self.inner.counters;
        c.fetches.fetch_add(1, Relaxed);
        c.blobs_sent.fetch_add(out.len() as u64, Relaxed);
        c.bytes_sent.fetch_add(bytes as u64, Relaxed);
        Ok(out)
    }

    /// Counters so far.
    pub fn stats(&self) -> ResponderStats {
        let c = &self.inner.counters;
        ResponderStats {
            reconciles: c.reconciles.load(Relaxed),
            busy: c.busy.load(Relaxed),
            fetches: c.fetches.load(Relaxed),
            blobs_sent: c.blobs_sent.load(Relaxed),
            bytes_sent: c.bytes_sent.load(Relaxed),
        }
    }

    fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.inner
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                self.inner.counters.busy.fetch_add(1, Relaxed);
                Error::Busy
            })
    }
}

/// The stored size of each CID (`None` if not stored), from the metadata rows on the `info`
/// pool, in one hop.
async fn sizes(store: &seedbank_blobstore::Store, cids: &[Cid]) -> Result<Vec<Option<usize>>> {
    let infos = store.info_many(cids).await?;
    Ok(infos
        .into_iter()
        .map(|i| i.map(|i| usize::try_from(i.size).unwrap_or(usize::MAX)))
        .collect())
}

#[async_trait::async_trait]
impl Peer for Responder {
    fn id(&self) -> &str {
        &self.inner.id
    }

    async fn reconcile(&self, scope: &Scope, message: Message) -> Result<Message> {
        Responder::reconcile(self, scope, message).await
    }

    async fn fetch(&self, cids: &[Cid]) -> Result<Vec<(Cid, Bytes)>> {
        Responder::fetch(self, cids).await
    }
}
