//! The `Index` handle and its whole public API, in one `impl Index`: configuration,
//! opening, staging and writing blobs with their rows, then queries, walks, scopes, pins,
//! deletion, collection and repair. The work lives in free functions of the modules below
//! (`query`, `dag`, `scope`, `pin`, `delete`, `gc`, ...), which reach the store through
//! `access` and never name `Index`, so the module graph has no cycle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cid::Cid;
use seedbank_blobstore::lifecycle::Deleter;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{Blob, PoolKind, Priority, PutOptions, StagedBlob, Store};

use seedbank_blobstore::cid::cid_from_parts;

use crate::access;
use crate::dag::{walk, Dag};
use crate::delete::{delete_keys, protected_by, DeleteOptions, Freed};
use crate::depths::DagWalk;
use crate::error::{from_store, Error, Result, SqlContext};
use crate::extract::{extract_links, Extracted};
use crate::gc::put_log::PutLog;
use crate::gc::{self, Collection};
use crate::gc::{GcOptions, GcReport};
use crate::indexer::{Annotations, Indexer};
use crate::pin::{check_name, key_of, pin_opts, read_pins, unix_ms, Key, Pin};
use crate::pin::{TempPin, TempPins};
use crate::query::{info_of, links_of, query_cids, IndexedInfo};
use crate::repair::RepairReport;
use crate::row::{target_key, CidRow};
use crate::schema::INDEX_SCHEMA_VERSION;
use crate::scope::{
    self, counters_of, members_after, remove_member, ScopeDelta, ScopeInfo, ScopeSnapshot,
};
use crate::snapshot::{generation_of, BlockLinks, DagSnapshot};
use crate::stage::IndexOp;
use crate::tables::{add_member, seq_of};

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
        access::read(&self.inner.store, pool, f).await
    }

    /// Runs `f` on the lane in its own savepoint, mapping errors back to the index's own.
    pub(crate) async fn write<T, F>(&self, opts: PutOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        access::write(&self.inner.store, opts, f).await
    }

    /// Runs `f` on the lane with the store's [`Deleter`] (freed space is counted once the
    /// write commits), mapping errors back to the index's own.
    pub(crate) async fn write_deleting<T, F>(&self, opts: PutOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Deleter<'_>) -> Result<T> + Send + 'static,
    {
        access::write_deleting(&self.inner.store, opts, f).await
    }

    // ---- Point queries: links, backlinks, metadata-only info, attributes (work in `query`).
    /// The CIDs `cid` links to, in the order they appear in its bytes (duplicates kept);
    /// `None` if the blob was never indexed (not stored, or stored without the index).
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store is closed,
    /// [`Error::Storage`](crate::Error::Storage).
    pub async fn links(&self, cid: &Cid) -> Result<Option<Vec<Cid>>> {
        let b = CidRow::of(cid);
        self.read(PoolKind::Data, move |conn| links_of(conn, &b))
            .await
    }

    /// The indexed blobs that link to `cid`, each once, oldest first. `cid` itself need not
    /// be stored.
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn backlinks(&self, cid: &Cid) -> Result<Vec<Cid>> {
        let (b, tkey) = (CidRow::of(cid), target_key(cid));
        self.read(PoolKind::Data, move |conn| {
            let sql = "SELECT i.mh, i.codec, i.version FROM blob_index i
                       WHERE i.seq IN
                         (SELECT src FROM links WHERE tkey = ?1 AND mh = ?2 AND codec = ?3)
                       ORDER BY i.seq";
            query_cids(conn, sql, (tkey, &b.mh, b.codec))
        })
        .await
    }

    /// Metadata of a stored blob with its link count and indexability, from the
    /// metadata-only `info` pool (never the blob's bytes).
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn info(&self, cid: &Cid) -> Result<Option<IndexedInfo>> {
        let cid = *cid;
        self.read(PoolKind::Info, move |conn| info_of(conn, cid))
            .await
    }

    /// Attributes an [`Indexer`](crate::Indexer) attached to `cid`, by key.
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn attributes(&self, cid: &Cid) -> Result<Vec<(String, String)>> {
        let b = CidRow::of(cid);
        self.read(PoolKind::Info, move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT a.key, a.value FROM attributes a
                     JOIN blob_index i ON i.seq = a.src
                     WHERE i.mh = ?1 AND i.codec = ?2 ORDER BY a.key",
                )
                .during("prepare attributes")?;
            let rows = stmt
                .query_map((&b.mh, b.codec), |r| Ok((r.get(0)?, r.get(1)?)))
                .during("attributes")?;
            rows.collect::<Result<Vec<_>, _>>().during("attribute row")
        })
        .await
    }

    /// Blobs whose attribute `key` equals `value`, oldest first.
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn find_by_attribute(&self, key: &str, value: &str) -> Result<Vec<Cid>> {
        let (key, value) = (key.to_string(), value.to_string());
        self.read(PoolKind::Data, move |conn| {
            let sql = "SELECT i.mh, i.codec, i.version FROM attributes a
                       JOIN blob_index i ON i.seq = a.src
                       WHERE a.key = ?1 AND a.value = ?2 ORDER BY i.seq";
            query_cids(conn, sql, (&key, &value))
        })
        .await
    }

    // ---- DAG walks in export order (work in `dag`).
    /// Walks the DAG under `root` visiting at most `limit` blocks, present and missing
    /// together; [`Dag::complete`] says whether the limit cut it short.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn walk(&self, root: &Cid, limit: usize) -> Result<Dag> {
        let root = *root;
        self.read(PoolKind::Data, move |conn| walk(conn, root, limit))
            .await
    }

    /// Walks the whole DAG under `root`, failing past the configured limit.
    async fn walk_all(&self, root: &Cid) -> Result<Dag> {
        let limit = self.config().reachable_limit;
        let dag = self.walk(root, limit).await?;
        if !dag.complete {
            return Err(Error::LimitExceeded { root: *root, limit });
        }
        Ok(dag)
    }

    /// The blocks reachable from `root` that are available locally, in traversal order
    /// (depth-first, links in order; the root first when present).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`IndexConfig::reachable_limit`](crate::IndexConfig)
    /// blocks, [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn reachable(&self, root: &Cid) -> Result<Vec<Cid>> {
        Ok(self.walk_all(root).await?.present)
    }

    /// The blocks referenced from the reachable set (or the root itself) that are not
    /// stored, in the order a walk meets them. Empty when the DAG is complete locally.
    ///
    /// # Errors
    /// As [`Index::reachable`].
    pub async fn missing(&self, root: &Cid) -> Result<Vec<Cid>> {
        Ok(self.walk_all(root).await?.missing)
    }

    /// A counter that grows in the same transaction as every blob newly indexed and every
    /// deletion (the largest `blob_index.seq`, deletion marker included). While blobs are written through the
    /// index, a DAG walk's answer can only change when it changes, so discovery may key a DAG
    /// scope's haves on `(root, dag_generation)`. A blob written with a plain
    /// [`Store::put`](seedbank_blobstore::Store::put) does not move it. Served by the `info`
    /// pool.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn dag_generation(&self) -> Result<u64> {
        self.read(PoolKind::Info, generation_of).await
    }

    // ---- Breadth-first walks with depths and presence (work in `depths`).
    /// Walks the DAG under `root` breadth-first, reporting every block reached with its
    /// depth (shortest path from the root through indexed blocks) and whether it is stored
    /// and indexed, stored without the index (its links unknown: a leaf for now), or
    /// missing, together with the DAG generation, all read in one snapshot on the data pool.
    /// At most `limit` blocks are reached, present and missing together;
    /// [`DagWalk::complete`] says whether the limit cut the walk short.
    ///
    /// A block's links never change once indexed, so between two walks with no deletion in
    /// between (see [`DagSnapshot::indexed_after`](crate::DagSnapshot::indexed_after)) the
    /// present set only grows: only blocks that were missing or unindexed can change, and a
    /// block's depth can only shrink.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store is closed,
    /// [`Error::Storage`](crate::Error::Storage) if a read failed.
    pub async fn walk_with_depths(&self, root: &Cid, limit: usize) -> Result<DagWalk> {
        let root = *root;
        self.read_dag(move |dag| dag.walk_with_depths(&root, limit))
            .await
    }

    // ---- One read snapshot of the DAG tables (work in `snapshot`).
    /// Runs `f` on one read snapshot of the DAG tables, on the data pool: every lookup `f`
    /// makes sees the same committed state, and the whole closure costs one pool hop. `f`
    /// runs on a pool thread, so it should only read and compute.
    ///
    /// ```
    /// # use seedbank_blobstore::{codec, Blob, Config, Store};
    /// # use seedbank_index::{Index, IndexConfig, Presence};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), seedbank_index::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path().join("blobs.db"), Config::default())?;
    /// let index = Index::open(store, IndexConfig::default()).await?;
    /// let leaf = index.put(Blob::new(codec::RAW, &b"leaf"[..])).await?;
    /// let (generation, found) = index
    ///     .read_dag(move |dag| Ok((dag.generation()?, dag.links_many(&[leaf])?)))
    ///     .await?;
    /// assert_eq!(generation, 1);
    /// assert_eq!(found[0].presence, Presence::Indexed);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Whatever `f` returns, [`Error::Blobstore`](crate::Error::Blobstore) if the store is
    /// closed, [`Error::Storage`](crate::Error::Storage) if the transaction failed.
    pub async fn read_dag<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&DagSnapshot<'_>) -> Result<T> + Send + 'static,
    {
        self.read(PoolKind::Data, move |conn| {
            let tx = conn.unchecked_transaction().during("begin dag read")?;
            let out = f(&DagSnapshot::new(&tx))?;
            tx.finish().during("end dag read")?;
            Ok(out)
        })
        .await
    }

    /// The presence and links of each of `cids`, in input order, read in one snapshot.
    ///
    /// # Errors
    /// As [`DagSnapshot::links_many`], and [`Error::Blobstore`](crate::Error::Blobstore) if
    /// the store is closed.
    pub async fn links_many(&self, cids: &[Cid]) -> Result<Vec<BlockLinks>> {
        let cids = cids.to_vec();
        self.read_dag(move |dag| dag.links_many(&cids)).await
    }

    // ---- Named scopes (work in `scope`).
    /// The members of `scope` in insertion order (empty for an unknown scope).
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store is closed,
    /// [`Error::Storage`](crate::Error::Storage).
    pub async fn scope_members(&self, scope: &str) -> Result<Vec<Cid>> {
        let members = self.scope_members_since(scope, 0).await?;
        Ok(members.into_iter().map(|(_, cid)| cid).collect())
    }

    /// Members of `scope` added after sequence number `after`, as `(seq, cid)` in insertion
    /// order. `after = 0` lists every member.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scope_members_since(&self, scope: &str, after: u64) -> Result<Vec<(u64, Cid)>> {
        let scope = scope.to_string();
        self.read(PoolKind::Data, move |conn| {
            members_after(conn, &scope, after)
        })
        .await
    }

    /// The generation and members of `scope`, read in one snapshot so the pair is consistent.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scope_snapshot(&self, scope: &str) -> Result<ScopeSnapshot> {
        let scope = scope.to_string();
        self.read(PoolKind::Data, move |conn| {
            let tx = conn.unchecked_transaction().during("begin read")?;
            let generation = scope::generation_of(&tx, &scope)?;
            let members = members_after(&tx, &scope, 0)?;
            tx.finish().during("end read")?;
            Ok(ScopeSnapshot {
                generation,
                members,
            })
        })
        .await
    }

    /// The counters of `scope` and its members numbered after `after_seq`, read in one
    /// snapshot on the data pool. `after_seq = 0` lists every member. See [`ScopeDelta`] for
    /// what an unchanged removal count proves.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scope_delta(&self, scope: &str, after_seq: u64) -> Result<ScopeDelta> {
        let scope = scope.to_string();
        self.read(PoolKind::Data, move |conn| {
            let tx = conn.unchecked_transaction().during("begin read")?;
            let (generation, last_seq, removals) = counters_of(&tx, &scope)?;
            let added = members_after(&tx, &scope, after_seq)?;
            tx.finish().during("end read")?;
            Ok(ScopeDelta {
                generation,
                last_seq,
                removals,
                added,
            })
        })
        .await
    }

    /// The generation of `scope`: bumped in the same transaction as every membership change,
    /// 0 for a scope that does not exist. Served by the `info` pool.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn generation(&self, scope: &str) -> Result<u64> {
        let scope = scope.to_string();
        self.read(PoolKind::Info, move |conn| {
            scope::generation_of(conn, &scope)
        })
        .await
    }

    /// Every scope with its counters, by name.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scopes(&self) -> Result<Vec<ScopeInfo>> {
        self.read(PoolKind::Data, |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, generation, last_seq, removals FROM scopes ORDER BY name",
                )
                .during("prepare scopes")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ScopeInfo {
                        name: r.get(0)?,
                        generation: r.get::<_, i64>(1)? as u64,
                        last_seq: r.get::<_, i64>(2)? as u64,
                        removals: r.get::<_, i64>(3)? as u64,
                    })
                })
                .during("scopes")?;
            rows.collect::<Result<Vec<_>, _>>().during("scope row")
        })
        .await
    }

    /// Adds stored blobs to `scope` through the lane; CIDs that are not stored are skipped.
    /// Returns how many became new members.
    ///
    /// Blobs stored without the index (by a plain
    /// [`Store::put`](seedbank_blobstore::Store::put)) are read back and re-put through the
    /// index at `opts`, which indexes them too.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the lane rejected the write (closed,
    /// overloaded past `opts.deadline`) or a stored blob failed verification,
    /// [`Error::Storage`](crate::Error::Storage).
    pub async fn add_to_scope(&self, scope: &str, cids: &[Cid], opts: PutOptions) -> Result<u64> {
        let name = scope.to_string();
        let rows: Vec<(Cid, CidRow)> = cids.iter().map(|c| (*c, CidRow::of(c))).collect();
        let (mut added, unindexed) = self
            .write(opts.clone(), move |conn| {
                let (mut added, mut unindexed) = (0, Vec::new());
                for (cid, row) in &rows {
                    match seq_of(conn, row)? {
                        Some(blob) => added += u64::from(add_member(conn, &name, blob)?),
                        None => unindexed.push(*cid),
                    }
                }
                Ok((added, unindexed))
            })
            .await?;
        let mut staged = Vec::new();
        for cid in unindexed {
            if let Some(data) = self.store().get(&cid).await? {
                staged.push(self.stage(Blob::with_cid(cid, data)?, &[scope]));
            }
        }
        added += staged.len() as u64;
        self.put_staged(staged, opts).await?;
        Ok(added)
    }

    /// Removes blobs from `scope` through the lane. Returns how many were members.
    ///
    /// # Errors
    /// As [`Index::add_to_scope`].
    pub async fn remove_from_scope(
        &self,
        scope: &str,
        cids: &[Cid],
        opts: PutOptions,
    ) -> Result<u64> {
        let scope = scope.to_string();
        let rows: Vec<CidRow> = cids.iter().map(CidRow::of).collect();
        self.write(opts, move |conn| {
            let mut removed = 0;
            for row in &rows {
                if remove_member(conn, &scope, row)? {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }

    // ---- Pins and temp pins (work in `pin`).
    /// A new, empty temp pin of this index. Add CIDs to it with [`TempPin::add`], or pass it
    /// in [`IndexPutOptions::temp_pin`](crate::IndexPutOptions::temp_pin) so every blob a
    /// put writes is pinned before it reaches the lane.
    pub fn temp_pin(&self) -> TempPin {
        TempPin::new(self.temp_pins().clone())
    }

    /// Pins `root` and everything reachable from it under `name` (replacing a pin of that
    /// name). The root need not be stored yet: whatever of it arrives later is kept.
    ///
    /// # Errors
    /// [`Error::InvalidPin`] for an empty name, [`Error::Blobstore`] if the lane rejected the
    /// write, [`Error::Storage`].
    pub async fn pin(&self, name: &str, root: &Cid) -> Result<()> {
        check_name(name)?;
        let (name, r) = (name.to_string(), CidRow::of(root));
        self.write(pin_opts(), move |conn| {
            conn.prepare_cached(
                "INSERT INTO pins (name, root_mh, root_codec, root_ver, scope, created_at)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5)
                 ON CONFLICT (name) DO UPDATE SET root_mh = excluded.root_mh,
                   root_codec = excluded.root_codec, root_ver = excluded.root_ver,
                   scope = NULL, created_at = excluded.created_at",
            )
            .during("prepare pin")?
            .execute((&name, &r.mh, r.codec, r.version, unix_ms()))
            .during("pin")?;
            Ok(())
        })
        .await
    }

    /// Pins every member of the named scope `scope` (present and future) under `name`
    /// (replacing a pin of that name).
    ///
    /// # Errors
    /// As [`Index::pin`].
    pub async fn pin_scope(&self, name: &str, scope: &str) -> Result<()> {
        check_name(name)?;
        let (name, scope) = (name.to_string(), scope.to_string());
        self.write(pin_opts(), move |conn| {
            conn.prepare_cached(
                "INSERT INTO pins (name, root_mh, root_codec, root_ver, scope, created_at)
                 VALUES (?1, NULL, NULL, NULL, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET root_mh = NULL, root_codec = NULL,
                   root_ver = NULL, scope = excluded.scope, created_at = excluded.created_at",
            )
            .during("prepare pin scope")?
            .execute((&name, &scope, unix_ms()))
            .during("pin scope")?;
            Ok(())
        })
        .await
    }

    /// Removes the pin `name`; returns false if there was none. What it kept becomes
    /// collectable unless something else protects it.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the lane rejected the write, [`Error::Storage`].
    pub async fn unpin(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.write(pin_opts(), move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM pins WHERE name = ?1")
                .during("prepare unpin")?
                .execute([&name])
                .during("unpin")?;
            Ok(n > 0)
        })
        .await
    }

    /// Every named pin, by name (from the `info` pool).
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn pins(&self) -> Result<Vec<Pin>> {
        self.read(PoolKind::Info, read_pins).await
    }

    // ---- Deletion (work in `delete`).
    /// Deletes blobs through the lane, with their links, attributes and scope memberships,
    /// in one transaction: all of them or (on error) none. CIDs that are not stored are
    /// skipped. Unless `opts.force`, a blob that a pin or temp pin protects (it or one of its
    /// ancestors in the link index is pinned) is refused with [`Error::Pinned`] and nothing
    /// is deleted.
    ///
    /// # Errors
    /// [`Error::Pinned`], [`Error::LimitExceeded`] if a blob has more ancestors than
    /// [`IndexConfig::reachable_limit`](crate::IndexConfig::reachable_limit) (nothing is
    /// deleted), [`Error::Blobstore`] if the lane rejected the write, [`Error::Storage`].
    pub async fn delete(&self, cids: &[Cid], opts: DeleteOptions) -> Result<Freed> {
        let cids = cids.to_vec();
        let temp: Arc<TempPins> = self.temp_pins().clone();
        let limit = self.config().reachable_limit;
        let force = opts.force;
        self.write_deleting(opts.put, move |d| {
            if !force {
                for cid in &cids {
                    if let Some(by) = protected_by(d.conn(), cid, &temp, limit)? {
                        return Err(Error::Pinned { cid: *cid, by });
                    }
                }
            }
            let keys: Vec<Key> = cids.iter().map(key_of).collect();
            delete_keys(d, &keys)
        })
        .await
    }

    // ---- Garbage collection (work in `gc`).
    /// Collects garbage: deletes every stored blob that no pin or temp pin reaches through
    /// the link index, in lane batches of `opts.batch_blobs` at `Background` priority, then
    /// gives the freed pages back to the file system in bounded incremental-vacuum steps.
    /// One collection runs at a time; a second call waits for the first.
    ///
    /// A collection starts when this is called. A blob put through the index after that
    /// (new, or put again) is not deleted by it, nor is anything a put, pin, scope member
    /// or temp pin made live meanwhile (see the `gc` module docs and `docs/design.md`);
    /// [`GcReport::kept_late_by`] counts those kept, by cause.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store is closed or read-only,
    /// [`Error::Storage`](crate::Error::Storage). Batches committed before an error stay
    /// deleted; a later collection finishes the job.
    pub async fn gc(&self, opts: GcOptions) -> Result<GcReport> {
        let mut collection = self.begin_gc(opts).await?;
        while collection.sweep_batch().await? {}
        collection.finish().await
    }

    /// Starts a collection and runs its mark; sweep it with [`Collection::sweep_batch`] and
    /// end it with [`Collection::finish`].
    ///
    /// # Errors
    /// As [`Index::gc`].
    #[doc(hidden)]
    pub async fn begin_gc(&self, opts: GcOptions) -> Result<Collection> {
        gc::begin(
            self.store().clone(),
            self.temp_pins().clone(),
            self.put_log(),
            self.gc_lock().clone(),
            opts,
        )
        .await
    }

    // ---- Repair (work in `repair` and the store's `verify_blobs`).
    /// Re-hashes every stored blob and removes those whose bytes no longer hash to their CID
    /// (bytes, metadata, links, attributes and scope memberships, in one lane transaction,
    /// pins notwithstanding: corrupt bytes protect nothing). They then read as missing, and
    /// a re-put of the correct bytes stores them again. The hashing runs on the data pool; the
    /// lane only deletes, and only bytes that are still the ones found corrupt.
    ///
    /// # Errors
    /// [`Error::Blobstore`](crate::Error::Blobstore) if the store is closed or read-only,
    /// [`Error::Storage`](crate::Error::Storage).
    pub async fn repair(&self) -> Result<RepairReport> {
        let found = self.store().verify_blobs().await?;
        let mut report = RepairReport {
            blobs_checked: found.blobs_checked,
            ..Default::default()
        };
        if found.corrupt.is_empty() {
            return Ok(report);
        }
        let corrupt = found.corrupt;
        let opts = PutOptions::new(Priority::Normal, "repair");
        let (freed, removed) = self
            .write_deleting(opts, move |d| {
                let mut keys: Vec<Key> = Vec::new();
                for c in corrupt {
                    // Deleted and stored again since the scan: not the bytes we checked.
                    if c.is_current(d.conn())? {
                        let mh = c.multihash_key();
                        keys.extend(c.codecs().iter().map(|codec| (mh.to_vec(), *codec)));
                    }
                }
                let freed: Freed = delete_keys(d, &keys)?;
                Ok((freed, keys))
            })
            .await?;
        report.bytes_freed = freed.bytes;
        report.removed = removed
            .iter()
            .filter_map(|(mh, codec)| cid_from_parts(1, *codec as u64, mh))
            .map(|c| c.to_string())
            .collect();
        Ok(report)
    }
}
