//! The `Index` handle: configuration, opening, staging and writing blobs with their rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cid::Cid;
use seedbank_blobstore::lifecycle::Deleter;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{Blob, PoolKind, Priority, PutOptions, StagedBlob, Store};

use crate::error::{from_store, Error, Result};
use crate::extract::{extract_links, Extracted};
use crate::gc::put_log::PutLog;
use crate::gc::{GcOptions, GcReport};
use crate::indexer::{Annotations, Indexer};
use crate::pin::{TempPin, TempPins};
use crate::schema::INDEX_SCHEMA_VERSION;
use crate::stage::IndexOp;

/// Index configuration. Start from [`IndexConfig::default`] and change fields.
#[derive(Clone)]
pub struct IndexConfig {
    /// Most blocks one DAG walk visits ([`Index::reachable`], [`Index::missing`], exports),
    /// present and missing together (default 1,000,000). Bounds the memory and the read
    /// transaction of a walk; past it those calls fail with
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded).
    pub reachable_limit: usize,
    /// Application hooks run at staging time, in order (default none).
    pub indexers: Vec<Arc<dyn Indexer>>,
    /// Size target in bytes (pages holding data): past it, a put starts a background
    /// [`Index::gc`] (default none).
    pub gc_target_bytes: Option<u64>,
    /// Size target in stored CIDs: past it, a put starts a background [`Index::gc`]
    /// (default none).
    pub gc_target_blobs: Option<u64>,
    /// Hard limit in bytes (pages holding data): a put that would pass it fails with
    /// [`Error::StoreFull`](crate::Error::StoreFull) and writes nothing (default none).
    pub max_bytes: Option<u64>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            reachable_limit: 1_000_000,
            indexers: Vec::new(),
            gc_target_bytes: None,
            gc_target_blobs: None,
            max_bytes: None,
        }
    }
}

impl std::fmt::Debug for IndexConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexConfig")
            .field("reachable_limit", &self.reachable_limit)
            .field("indexers", &self.indexers.len())
            .field("gc_target_bytes", &self.gc_target_bytes)
            .field("gc_target_blobs", &self.gc_target_blobs)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl IndexConfig {
    /// Adds an application [`Indexer`].
    pub fn with_indexer(mut self, indexer: impl Indexer) -> Self {
        self.indexers.push(Arc::new(indexer));
        self
    }
}

/// Options for [`Index::put_many`].
#[derive(Clone, Debug, Default)]
pub struct IndexPutOptions {
    /// Priority, source and deadline of the write.
    pub put: PutOptions,
    /// Named scopes every blob joins (on top of those its indexers return).
    pub scopes: Vec<String>,
    /// A temp pin every blob joins before it is submitted to the lane (see
    /// [`Index::temp_pin`]). Holding it here keeps the pin alive as long as the options.
    pub temp_pin: Option<TempPin>,
}

impl IndexPutOptions {
    /// Options with the given priority class and source, and no scope.
    pub fn new(priority: Priority, source: &str) -> Self {
        IndexPutOptions {
            put: PutOptions::new(priority, source),
            scopes: Vec::new(),
            temp_pin: None,
        }
    }

    /// Adds a scope every blob joins.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Pins every blob of the put with `pin` before it reaches the lane.
    pub fn temp_pin(mut self, pin: &TempPin) -> Self {
        self.temp_pin = Some(pin.clone());
        self
    }
}

/// A handle to the index of a [`Store`]. Cheap to clone; clones share the store.
///
/// Writes go through the store's lane with the index rows staged beside each blob, so a
/// blob and its links, scope memberships and attributes commit together or not at all.
/// Queries run on the store's read pools.
#[derive(Clone, Debug)]
pub struct Index {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: IndexConfig,
    temp_pins: Arc<TempPins>,
    /// Puts seen by the collections pending or running.
    put_log: Arc<PutLog>,
    /// One collection at a time.
    gc: Arc<tokio::sync::Mutex<()>>,
    /// Set while a size-target check (and the collection it may start) runs.
    auto_gc: AtomicBool,
}

impl Index {
    /// Creates or migrates the index tables (through the lane) and returns the handle.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`] for tables written by a newer seedbank, [`Error::SchemaDamaged`]
    /// for an impossible version in `index_meta`, [`Error::NotMigrated`]
    /// on a read-only store whose index tables are missing or older,
    /// [`Error::Storage`] if a migration failed, [`Error::Blobstore`] if the store is closed.
    pub async fn open(store: Store, config: IndexConfig) -> Result<Index> {
        let index = Index {
            inner: Arc::new(Inner {
                store,
                config,
                temp_pins: Arc::default(),
                put_log: Arc::default(),
                gc: Arc::default(),
                auto_gc: AtomicBool::new(false),
            }),
        };
        // Checked on a reader first so opening an up-to-date index writes nothing.
        let found = index.read(PoolKind::Info, crate::schema::version).await?;
        if found != INDEX_SCHEMA_VERSION && index.store().is_read_only() {
            return Err(if found > INDEX_SCHEMA_VERSION {
                Error::SchemaTooNew {
                    found,
                    supported: INDEX_SCHEMA_VERSION,
                }
            } else {
                Error::NotMigrated {
                    found,
                    supported: INDEX_SCHEMA_VERSION,
                }
            });
        }
        if found != INDEX_SCHEMA_VERSION {
            let opts = PutOptions::new(Priority::Interactive, "index");
            index.write(opts, crate::schema::migrate).await?;
        }
        Ok(index)
    }

    /// The underlying blob store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration the index was opened with.
    pub fn config(&self) -> &IndexConfig {
        &self.inner.config
    }

    /// Extracts `blob`'s links, runs the indexers, and returns the blob ready for the lane
    /// with its index rows attached. CPU only, on the caller's thread; `scopes` are joined on
    /// top of those the indexers return.
    pub fn stage<S: AsRef<str>>(&self, blob: Blob, scopes: &[S]) -> StagedBlob {
        let extracted = extract_links(blob.cid().codec(), blob.data());
        self.stage_extracted(blob, &extracted, scopes)
    }

    /// As [`Index::stage`], with `blob`'s links already extracted by the caller (with
    /// [`extract_links`], e.g. to learn a fetched block's children), so a block is parsed
    /// once. `extracted` must be what `extract_links` returns for `blob`.
    pub fn stage_extracted<S: AsRef<str>>(
        &self,
        blob: Blob,
        extracted: &Extracted,
        scopes: &[S],
    ) -> StagedBlob {
        let mut annotations = Annotations {
            scopes: scopes.iter().map(|s| s.as_ref().to_string()).collect(),
            attributes: Vec::new(),
        };
        for indexer in &self.inner.config.indexers {
            let extra = indexer.annotate(&blob, extracted);
            annotations.scopes.extend(extra.scopes);
            annotations.attributes.extend(extra.attributes);
        }
        annotations.scopes.sort_unstable();
        annotations.scopes.dedup();
        let op = IndexOp::new(&blob, extracted, annotations, self.inner.put_log.clone());
        StagedBlob {
            blob,
            op: Some(Box::new(op)),
        }
    }

    /// Stores one blob with its index rows at `Normal` priority.
    ///
    /// # Errors
    /// As [`Index::put_many`].
    pub async fn put(&self, blob: Blob) -> Result<Cid> {
        let cids = self
            .put_many(vec![blob], IndexPutOptions::default())
            .await?;
        Ok(cids[0])
    }

    /// Stages and stores blobs with their index rows; returns their CIDs in input order once
    /// every one is committed. Requests are split and admitted as by
    /// [`Store::put_many`]; each blob commits together with its own rows.
    ///
    /// # Errors
    /// [`Error::Blobstore`] with the store's error (too large, overloaded, closed, commit
    /// failed), [`Error::Storage`] if writing index rows failed (that request is rolled back).
    pub async fn put_many(&self, blobs: Vec<Blob>, opts: IndexPutOptions) -> Result<Vec<Cid>> {
        if let Some(pin) = &opts.temp_pin {
            if !pin.belongs_to(&self.inner.temp_pins) {
                return Err(Error::InvalidPin {
                    reason: "temp pin of another index".into(),
                });
            }
            // Before submission: no lane transaction can see these blobs unpinned.
            let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
            pin.add(&cids);
        }
        let staged = blobs
            .into_iter()
            .map(|b| self.stage(b, &opts.scopes))
            .collect();
        self.put_staged(staged, opts.put).await
    }

    /// Stores blobs staged with [`Index::stage`] (or any [`StagedBlob`]).
    ///
    /// # Errors
    /// As [`Index::put_many`].
    pub async fn put_staged(&self, staged: Vec<StagedBlob>, opts: PutOptions) -> Result<Vec<Cid>> {
        if let Some(limit) = self.inner.config.max_bytes {
            let incoming: u64 = staged.iter().map(|s| s.blob.len() as u64).sum();
            let used = self.store().space().await?.used_bytes();
            if used.saturating_add(incoming) > limit {
                return Err(Error::StoreFull {
                    used,
                    incoming,
                    limit,
                });
            }
        }
        let cids = self
            .inner
            .store
            .put_staged(staged, opts)
            .await
            .map_err(from_store)?;
        self.after_put();
        Ok(cids)
    }

    /// Past a size target, starts one background collection (never more than one check or
    /// collection at a time).
    fn after_put(&self) {
        let c = &self.inner.config;
        if c.gc_target_bytes.is_none() && c.gc_target_blobs.is_none() {
            return;
        }
        if self.inner.auto_gc.swap(true, Ordering::AcqRel) {
            return;
        }
        let index = self.clone();
        tokio::spawn(async move {
            if let Err(e) = index.gc_if_over_target().await {
                tracing::warn!(error = %e, "size-target collection failed");
            }
            index.inner.auto_gc.store(false, Ordering::Release);
        });
    }

    /// Runs [`Index::gc`] if the store is past a size target; returns its report if it ran.
    ///
    /// # Errors
    /// As [`Index::gc`].
    pub async fn gc_if_over_target(&self) -> Result<Option<GcReport>> {
        let c = &self.inner.config;
        let mut over = false;
        if let Some(target) = c.gc_target_bytes {
            over |= self.store().space().await?.used_bytes() > target;
        }
        if let (false, Some(target)) = (over, c.gc_target_blobs) {
            over |= self.store().contents().await?.cids > target;
        }
        if !over {
            return Ok(None);
        }
        Ok(Some(self.gc(GcOptions::default()).await?))
    }

    pub(crate) fn temp_pins(&self) -> &Arc<TempPins> {
        &self.inner.temp_pins
    }

    pub(crate) fn gc_lock(&self) -> &Arc<tokio::sync::Mutex<()>> {
        &self.inner.gc
    }

    pub(crate) fn put_log(&self) -> &Arc<PutLog> {
        &self.inner.put_log
    }

    /// Runs `f` on a read pool, mapping errors back to the index's own.
    pub(crate) async fn read<T, F>(&self, pool: PoolKind, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner
            .store
            .scan(pool, move |conn| f(conn).map_err(Error::boxed))
            .await
            .map_err(from_store)
    }

    /// Runs `f` on the lane in its own savepoint, mapping errors back to the index's own.
    pub(crate) async fn write<T, F>(&self, opts: PutOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner
            .store
            .write(opts, move |conn| f(conn).map_err(Error::boxed))
            .await
            .map_err(from_store)
    }

    /// Runs `f` on the lane in its own savepoint with the store's [`Deleter`] (freed space is
    /// counted once the write commits), mapping errors back to the index's own.
    pub(crate) async fn write_deleting<T, F>(&self, opts: PutOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Deleter<'_>) -> Result<T> + Send + 'static,
    {
        self.inner
            .store
            .write_deleting(opts, move |d| f(d).map_err(Error::boxed))
            .await
            .map_err(from_store)
    }
}
