//! The `Index` handle and its whole public API, in one `impl Index`: configuration,
//! opening, staging and writing blobs with their rows, then queries, walks, scopes, pins,
//! deletion, collection and repair. This file is the index's table of contents: each method
//! is its documentation and a hand-off to a free function of its subject (`put`, `query`,
//! `dag`, `snapshot`, `scope`, `pin`, `delete`, `gc`, `repair`, `schema`, `stage`), which
//! takes the store or a connection and plain arguments, reaches the store through `access`,
//! and never names `Index`, so the module graph has no cycle. No SQL is written here.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cid::Cid;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{Blob, PoolKind, PutOptions, StagedBlob, Store};

use crate::access;
use crate::config::IndexConfig;
use crate::dag::{self, Dag};
use crate::delete::{self, DeleteOptions, Freed};
use crate::depths::DagWalk;
use crate::error::Result;
// Only the doc comments name the error variants.
#[cfg(doc)]
use crate::error::Error;
use crate::extract::{extract_links, Extracted};
use crate::gc::put_log::PutLog;
use crate::gc::{self, Collection, GcOptions, GcReport};
use crate::pin::{self, Pin, TempPin, TempPins};
use crate::put::{self, IndexPutOptions};
use crate::query::{self, IndexedInfo};
use crate::repair::{self, RepairReport};
use crate::schema;
use crate::scope::{self, ScopeDelta, ScopeInfo, ScopeSnapshot};
use crate::snapshot::{self, BlockLinks, DagSnapshot};
use crate::stage;

/// A handle to the index of a [`Store`]. Cheap to clone; clones share the store.
///
/// Writes go through the store's lane with the index rows staged beside each blob, so a blob and
/// its links, scope memberships and attributes commit together or not at all. Queries run on the
/// store's read pools.
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
    auto_gc: Arc<AtomicBool>,
}

impl Index {
    /// Creates or migrates the index tables (through the lane) and returns the handle.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`] for tables written by a newer seedbank, [`Error::SchemaDamaged`] for
    /// an impossible version in `index_meta`, [`Error::NotMigrated`] on a read-only store whose
    /// index tables are missing or older, [`Error::Storage`] if a migration failed,
    /// [`Error::Blobstore`] if the store is closed.
    pub async fn open(store: Store, config: IndexConfig) -> Result<Index> {
        let index = Index {
            inner: Arc::new(Inner {
                store,
                config,
                temp_pins: Arc::default(),
                put_log: Arc::default(),
                gc: Arc::default(),
                auto_gc: Arc::default(),
            }),
        };
        schema::ensure_current(index.store()).await?;
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

    /// Extracts `blob`'s links, runs the indexers, and returns the blob ready for the lane with its
    /// index rows attached. CPU only, on the caller's thread; `scopes` are joined on top of those
    /// the indexers return.
    pub fn stage<S: AsRef<str>>(&self, blob: Blob, scopes: &[S]) -> StagedBlob {
        let extracted = extract_links(blob.cid().codec(), blob.data());
        self.stage_extracted(blob, &extracted, scopes)
    }

    /// As [`Index::stage`], with `blob`'s links already extracted by the caller (with
    /// [`extract_links`], e.g. to learn a fetched block's children), so a block is parsed once.
    /// `extracted` must be what `extract_links` returns for `blob`.
    pub fn stage_extracted<S: AsRef<str>>(
        &self,
        blob: Blob,
        extracted: &Extracted,
        scopes: &[S],
    ) -> StagedBlob {
        let (indexers, put_log) = (&self.inner.config.indexers, &self.inner.put_log);
        stage::stage(blob, extracted, scopes, indexers, put_log)
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

    /// Stages and stores blobs with their index rows; returns their CIDs in input order once every
    /// one is committed. Requests are split and admitted as by [`Store::put_many`]; each blob
    /// commits together with its own rows.
    ///
    /// # Errors
    /// [`Error::Blobstore`] with the store's error (too large, overloaded, closed, commit failed),
    /// [`Error::Storage`] if writing index rows failed (that request is rolled back).
    pub async fn put_many(&self, blobs: Vec<Blob>, opts: IndexPutOptions) -> Result<Vec<Cid>> {
        put::pin_first(&opts, &self.inner.temp_pins, &blobs)?;
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
        let max_bytes = self.config().max_bytes;
        let cids = put::put_staged(self.store(), max_bytes, staged, opts).await?;
        self.after_put();
        Ok(cids)
    }

    /// Past a size target, starts one background collection (never more than one check or
    /// collection at a time).
    fn after_put(&self) {
        let index = self.clone();
        let collect = async move { index.gc_if_over_target().await };
        put::collect_in_background(self.config(), &self.inner.auto_gc, collect);
    }

    /// Runs [`Index::gc`] if the store is past a size target; returns its report if it ran.
    ///
    /// # Errors
    /// As [`Index::gc`].
    pub async fn gc_if_over_target(&self) -> Result<Option<GcReport>> {
        if !put::over_target(self.store(), self.config()).await? {
            return Ok(None);
        }
        Ok(Some(self.gc(GcOptions::default()).await?))
    }

    /// The registry of this index's temp pins (a put or an import refuses another index's).
    pub(crate) fn temp_pins(&self) -> &Arc<TempPins> {
        &self.inner.temp_pins
    }

    /// Runs `f` on a read pool, mapping errors back to the index's own.
    pub(crate) async fn read<T, F>(&self, pool: PoolKind, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        access::read(&self.inner.store, pool, f).await
    }

    // ---- Point queries: links, backlinks, metadata-only info, attributes (work in `query`).
    /// The CIDs `cid` links to, in the order they appear in its bytes (duplicates kept); `None` if
    /// the blob was never indexed (not stored, or stored without the index).
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn links(&self, cid: &Cid) -> Result<Option<Vec<Cid>>> {
        query::links(self.store(), cid).await
    }

    /// The indexed blobs that link to `cid`, each once, oldest first. `cid` itself need not be
    /// stored.
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn backlinks(&self, cid: &Cid) -> Result<Vec<Cid>> {
        query::backlinks(self.store(), cid).await
    }

    /// Metadata of a stored blob with its link count and indexability, from the metadata-only
    /// `info` pool (never the blob's bytes).
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn info(&self, cid: &Cid) -> Result<Option<IndexedInfo>> {
        query::info(self.store(), cid).await
    }

    /// Attributes an [`Indexer`](crate::Indexer) attached to `cid`, by key.
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn attributes(&self, cid: &Cid) -> Result<Vec<(String, String)>> {
        query::attributes(self.store(), cid).await
    }

    /// Blobs whose attribute `key` equals `value`, oldest first.
    ///
    /// # Errors
    /// As [`Index::links`].
    pub async fn find_by_attribute(&self, key: &str, value: &str) -> Result<Vec<Cid>> {
        query::find_by_attribute(self.store(), key, value).await
    }

    // ---- DAG walks in export order (work in `dag`).
    /// Walks the DAG under `root` visiting at most `limit` blocks, present and missing together;
    /// [`Dag::complete`] says whether the limit cut it short.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn walk(&self, root: &Cid, limit: usize) -> Result<Dag> {
        dag::walk_dag(self.store(), root, limit).await
    }

    /// The blocks reachable from `root` that are available locally, in traversal order
    /// (depth-first, links in order; the root first when present).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] past [`IndexConfig::reachable_limit`](crate::IndexConfig) blocks,
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn reachable(&self, root: &Cid) -> Result<Vec<Cid>> {
        let limit = self.config().reachable_limit;
        Ok(dag::walk_all(self.store(), root, limit).await?.present)
    }

    /// The blocks referenced from the reachable set (or the root itself) that are not stored, in
    /// the order a walk meets them. Empty when the DAG is complete locally.
    ///
    /// # Errors
    /// As [`Index::reachable`].
    pub async fn missing(&self, root: &Cid) -> Result<Vec<Cid>> {
        let limit = self.config().reachable_limit;
        Ok(dag::walk_all(self.store(), root, limit).await?.missing)
    }

    /// A counter that grows in the same transaction as every blob newly indexed and every deletion
    /// (the largest `blob_index.seq`, deletion marker included). While blobs are written through
    /// the index, a DAG walk's answer can only change when it changes, so discovery may key a DAG
    /// scope's haves on `(root, dag_generation)`. A blob written with a plain
    /// [`Store::put`](seedbank_blobstore::Store::put) does not move it. Served by the `info` pool.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn dag_generation(&self) -> Result<u64> {
        snapshot::dag_generation(self.store()).await
    }

    // ---- Breadth-first walks with depths and presence (work in `depths`).
    /// Walks the DAG under `root` breadth-first, reporting every block reached with its depth
    /// (shortest path from the root through indexed blocks) and whether it is stored and indexed,
    /// stored without the index (its links unknown: a leaf for now), or missing, together with the
    /// DAG generation, all read in one snapshot on the data pool. At most `limit` blocks are
    /// reached, present and missing together; [`DagWalk::complete`] says whether the limit cut the
    /// walk short; [`DagWalk`] says what two walks in a row can differ by.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`] if a read failed.
    pub async fn walk_with_depths(&self, root: &Cid, limit: usize) -> Result<DagWalk> {
        let root = *root;
        self.read_dag(move |dag| dag.walk_with_depths(&root, limit))
            .await
    }

    // ---- One read snapshot of the DAG tables (work in `snapshot`).
    /// Runs `f` on one read snapshot of the DAG tables, on the data pool: every lookup `f` makes
    /// sees the same committed state, and the whole closure costs one pool hop. `f` runs on a pool
    /// thread, so it should only read and compute (example at [`DagSnapshot`]).
    ///
    /// # Errors
    /// Whatever `f` returns, [`Error::Blobstore`] if the store is closed, [`Error::Storage`] if the
    /// transaction failed.
    pub async fn read_dag<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&DagSnapshot<'_>) -> Result<T> + Send + 'static,
    {
        snapshot::read_dag(self.store(), f).await
    }

    /// The presence and links of each of `cids`, in input order, read in one snapshot.
    ///
    /// # Errors
    /// As [`DagSnapshot::links_many`], and [`Error::Blobstore`] if the store is closed.
    pub async fn links_many(&self, cids: &[Cid]) -> Result<Vec<BlockLinks>> {
        let cids = cids.to_vec();
        self.read_dag(move |dag| dag.links_many(&cids)).await
    }

    // ---- Named scopes (work in `scope`).
    /// The members of `scope` in insertion order (empty for an unknown scope).
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn scope_members(&self, scope: &str) -> Result<Vec<Cid>> {
        let members = self.scope_members_since(scope, 0).await?;
        Ok(members.into_iter().map(|(_, cid)| cid).collect())
    }

    /// Members of `scope` added after sequence number `after`, as `(seq, cid)` in insertion order.
    /// `after = 0` lists every member.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scope_members_since(&self, scope: &str, after: u64) -> Result<Vec<(u64, Cid)>> {
        scope::members_since(self.store(), scope, after).await
    }

    /// The generation and members of `scope`, read in one snapshot so the pair is consistent.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scope_snapshot(&self, scope: &str) -> Result<ScopeSnapshot> {
        scope::snapshot(self.store(), scope).await
    }

    /// The counters of `scope` and its members numbered after `after_seq`, read in one snapshot on
    /// the data pool. `after_seq = 0` lists every member. See [`ScopeDelta`] for what an unchanged
    /// removal count proves.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scope_delta(&self, scope: &str, after_seq: u64) -> Result<ScopeDelta> {
        scope::delta(self.store(), scope, after_seq).await
    }

    /// The generation of `scope`: bumped in the same transaction as every membership change, 0 for
    /// a scope that does not exist. Served by the `info` pool.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn generation(&self, scope: &str) -> Result<u64> {
        scope::generation(self.store(), scope).await
    }

    /// Every scope with its counters, by name.
    ///
    /// # Errors
    /// As [`Index::scope_members`].
    pub async fn scopes(&self) -> Result<Vec<ScopeInfo>> {
        scope::scopes(self.store()).await
    }

    /// Adds stored blobs to `scope` through the lane; CIDs that are not stored are skipped. Returns
    /// how many became new members.
    ///
    /// Blobs stored without the index (by a plain [`Store::put`](seedbank_blobstore::Store::put))
    /// are read back and re-put through the index at `opts`, which indexes them too.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the lane rejected the write (closed, overloaded past
    /// `opts.deadline`) or a stored blob failed verification, [`Error::Storage`].
    pub async fn add_to_scope(&self, scope: &str, cids: &[Cid], opts: PutOptions) -> Result<u64> {
        let (mut added, unindexed) = scope::add(self.store(), scope, cids, opts.clone()).await?;
        // Stored without the index: read back and put again through it, joining `scope`.
        let blobs = put::read_back(self.store(), unindexed).await?;
        added += blobs.len() as u64;
        let staged = blobs.into_iter().map(|b| self.stage(b, &[scope])).collect();
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
        scope::remove(self.store(), scope, cids, opts).await
    }

    // ---- Pins and temp pins (work in `pin`).
    /// A new, empty temp pin of this index. Add CIDs to it with [`TempPin::add`], or pass it in
    /// [`IndexPutOptions::temp_pin`](crate::IndexPutOptions::temp_pin) so every blob a put writes
    /// is pinned before it reaches the lane.
    pub fn temp_pin(&self) -> TempPin {
        TempPin::new(self.temp_pins().clone())
    }

    /// Pins `root` and everything reachable from it under `name` (replacing a pin of that name).
    /// The root need not be stored yet: whatever of it arrives later is kept.
    ///
    /// # Errors
    /// [`Error::InvalidPin`] for an empty name, [`Error::Blobstore`] if the lane rejected the
    /// write, [`Error::Storage`].
    pub async fn pin(&self, name: &str, root: &Cid) -> Result<()> {
        pin::pin(self.store(), name, root).await
    }

    /// Pins every member of the named scope `scope` (present and future) under `name` (replacing a
    /// pin of that name).
    ///
    /// # Errors
    /// As [`Index::pin`].
    pub async fn pin_scope(&self, name: &str, scope: &str) -> Result<()> {
        pin::pin_scope(self.store(), name, scope).await
    }

    /// Removes the pin `name`; returns false if there was none. What it kept becomes collectable
    /// unless something else protects it.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the lane rejected the write, [`Error::Storage`].
    pub async fn unpin(&self, name: &str) -> Result<bool> {
        pin::unpin(self.store(), name).await
    }

    /// Every named pin, by name (from the `info` pool).
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed, [`Error::Storage`].
    pub async fn pins(&self) -> Result<Vec<Pin>> {
        pin::pins(self.store()).await
    }

    // ---- Deletion (work in `delete`).
    /// Deletes blobs through the lane, with their links, attributes and scope memberships, in one
    /// transaction: all of them or (on error) none. CIDs that are not stored are skipped. Unless
    /// `opts.force`, a blob that a pin or temp pin protects (it or one of its ancestors in the link
    /// index is pinned) is refused with [`Error::Pinned`] and nothing is deleted.
    ///
    /// # Errors
    /// [`Error::Pinned`], [`Error::LimitExceeded`] if a blob has more ancestors than
    /// [`IndexConfig::reachable_limit`](crate::IndexConfig::reachable_limit) (nothing is deleted),
    /// [`Error::Blobstore`] if the lane rejected the write, [`Error::Storage`].
    pub async fn delete(&self, cids: &[Cid], opts: DeleteOptions) -> Result<Freed> {
        let limit = self.config().reachable_limit;
        delete::delete(self.store(), self.temp_pins(), limit, cids, opts).await
    }

    // ---- Garbage collection (work in `gc`).
    /// Collects garbage: deletes every stored blob that no pin or temp pin reaches through the link
    /// index, in lane batches of `opts.batch_blobs` at `Background` priority, then gives the freed
    /// pages back to the file system in bounded incremental-vacuum steps. One collection runs at a
    /// time; a second call waits for the first. [`GcReport`] says what a collection leaves alone
    /// that was written while it ran.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed or read-only, [`Error::Storage`]. Batches
    /// committed before an error stay deleted; a later collection finishes the job.
    pub async fn gc(&self, opts: GcOptions) -> Result<GcReport> {
        let mut collection = self.begin_gc(opts).await?;
        while collection.sweep_batch().await? {}
        collection.finish().await
    }

    /// Starts a collection and runs its mark; sweep it with [`Collection::sweep_batch`] and end it
    /// with [`Collection::finish`].
    ///
    /// # Errors
    /// As [`Index::gc`].
    #[doc(hidden)]
    pub async fn begin_gc(&self, opts: GcOptions) -> Result<Collection> {
        gc::begin(
            self.store().clone(),
            self.temp_pins().clone(),
            &self.inner.put_log,
            self.inner.gc.clone(),
            opts,
        )
        .await
    }

    // ---- Repair (work in `repair` and the store's `verify_blobs`).
    /// Re-hashes every stored blob and removes those whose bytes no longer hash to their CID
    /// (bytes, metadata, links, attributes and scope memberships, in one lane transaction, pins
    /// notwithstanding: corrupt bytes protect nothing). They then read as missing, and a re-put of
    /// the correct bytes stores them again. The hashing runs on the data pool; the lane only
    /// deletes, and only bytes that are still the ones found corrupt.
    ///
    /// # Errors
    /// [`Error::Blobstore`] if the store is closed or read-only, [`Error::Storage`].
    pub async fn repair(&self) -> Result<RepairReport> {
        repair::run(self.store()).await
    }
}
