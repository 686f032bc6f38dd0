//! The `Store` handle: opens the database and ties the lane, pools and checkpointer together.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use rusqlite::Connection;

use crate::checkpoint::Checkpointer;
use crate::cid::Blob;
use crate::config::{Config, PutOptions, Synchronous};
use crate::error::{AppError, Error, Result, SqlContext};
use crate::lane::{Lane, StagedBlob, Submission, Work};
use crate::lease::Leases;
use crate::owner::OwnerLock;
use crate::paths::wal_has_frames;
use crate::read::{in_snapshot, PoolKind, ReadPool, ReaderMode};
use crate::rows::BlobInfo;
use crate::schema::{FileState, SCHEMA_VERSION};
use crate::stats::{Stats, StatsCollector};

/// What the database holds, from [`Store::contents`].
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Contents {
    /// Stored CIDs (a multihash under two codecs counts twice).
    pub cids: u64,
    /// Distinct multihashes (blobs stored once each).
    pub distinct_blobs: u64,
    /// Bytes of distinct blobs.
    pub bytes: u64,
    /// `PRAGMA user_version`.
    pub schema_version: i64,
}

/// A handle to an open blob store. Cheap to clone; all clones share one writer lane, one
/// checkpointer and two read pools.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// The database file.
    path: std::path::PathBuf,
    /// `None` for a store opened with [`Store::open_read_only`].
    writer: Option<WriteSide>,
    info_pool: ReadPool,
    data_pool: ReadPool,
    /// The owner lock (exclusive for a read-write store, shared for an immutable read-only
    /// one), released by `close` once the writer connection is gone.
    lock: parking_lot::Mutex<Option<OwnerLock>>,
    stats: Arc<StatsCollector>,
    closed: AtomicBool,
    /// Serialises `close` so concurrent callers all return after the final checkpoint.
    closing: tokio::sync::Mutex<()>,
}

/// The parts only a read-write store has: the lane that owns the one writer connection and
/// the checkpointer that keeps its WAL bounded.
struct WriteSide {
    lane: Lane,
    checkpointer: Arc<Checkpointer>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("closed", &self.is_closed())
            .field("read_only", &self.is_read_only())
            .finish_non_exhaustive()
    }
}

/// On Apple platforms `fsync` does not flush the drive's cache; only `F_FULLFSYNC` does. With
/// `synchronous=FULL`, ask SQLite for it on commits and checkpoints so "acknowledged" means
/// "survives power loss" there too. Elsewhere `fsync` already does, and these are no-ops.
fn apple_fullfsync(config: &Config) -> &'static str {
    match config.synchronous {
        Synchronous::Full if cfg!(target_vendor = "apple") => {
            "PRAGMA fullfsync = 1; PRAGMA checkpoint_fullfsync = 1;"
        }
        _ => "",
    }
}

/// Opens the writer connection and applies the settings the design relies on.
///
/// `foreign_keys = OFF`: the bundled SQLite enforces foreign keys by default, and deleting a
/// `blob_data` row would then scan all of `blobs` for a reference (no index on `data_id`),
/// making every delete O(store size). The lane keeps the tables consistent itself (a blob's
/// bytes go only when no CID uses them), as `tests/delete_plan.rs` in the index checks.
fn open_writer(path: &Path, config: &Config) -> Result<Connection> {
    let mut conn = Connection::open(path).during("open database")?;
    // Before anything writes (even the WAL switch rewrites the header): refuse foreign and
    // damaged files untouched.
    crate::schema::inspect(&conn, path)?;
    // Before any table exists, so a new file can give freed pages back in steps (a no-op on
    // an existing file; see `lifecycle`).
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
        .during("set auto_vacuum")?;
    let sync = match config.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .during("enable WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::unexpected(
            "enable WAL",
            format!("journal_mode is {mode}"),
        ));
    }
    conn.execute_batch(apple_fullfsync(config))
        .during("configure fullfsync")?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync};
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = {};
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;
         PRAGMA foreign_keys = OFF;",
        config.wal_cap_bytes
    ))
    .during("configure writer")?;
    // Nothing else writes, so the lane never waits here; the timeout only guards against
    // another process opening the same file (counted as SQLITE_BUSY if it happens).
    conn.busy_timeout(Duration::from_secs(5))
        .during("set busy timeout")?;
    conn.set_prepared_statement_cache_capacity(64);
    crate::schema::migrate(&mut conn, path)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the store at `path` and starts its writer lane,
    /// checkpointer and read pools.
    ///
    /// The store owns the file until [`Store::close`] (or the last clone is dropped): another
    /// read-write open of it, in this process or another, fails with [`Error::Locked`].
    ///
    /// # Errors
    /// [`Error::Locked`] if another store owns the file, [`Error::ForeignDatabase`] for
    /// another application's SQLite file, [`Error::Damaged`] for a file that is not SQLite,
    /// truncated or has an impossible schema (all refused without changing the file),
    /// [`Error::SchemaTooNew`] for a file written by a newer seedbank,
    /// [`Error::ForeignDatabase`], [`Error::Damaged`] as for [`Store::open`], [`Error::Storage`] if
    /// SQLite cannot open or configure it.
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        // Before SQLite touches the file: a second owner must not get as far as migrating it.
        let lock = OwnerLock::exclusive(&path)?;
        let stats = Arc::new(StatsCollector::new(config.detailed_stats));
        let writer = open_writer(&path, &config)?;
        let checkpoint_conn = Connection::open(&path).during("open checkpointer")?;
        // Checkpoints write the database file: they need the same flush as commits.
        checkpoint_conn
            .execute_batch(apple_fullfsync(&config))
            .during("configure checkpointer")?;
        let leases = Arc::new(Leases::default());
        let checkpointer = Checkpointer::start(
            checkpoint_conn,
            path.clone(),
            &config,
            stats.clone(),
            leases.clone(),
        )?;
        let info_pool = ReadPool::open(
            &path,
            config.info_pool_size,
            PoolKind::Info,
            stats.clone(),
            None,
            ReaderMode::Owner,
        )?;
        let data_pool = ReadPool::open(
            &path,
            config.data_pool_size,
            PoolKind::Data,
            stats.clone(),
            Some((leases, config.checkpoint_max_wait)),
            ReaderMode::Owner,
        )?;
        let lane = Lane::start(writer, &config, stats.clone(), checkpointer.clone())?;
        let pools = (info_pool, data_pool);
        let writer = Some(WriteSide { lane, checkpointer });
        Ok(Store::assemble(
            config,
            &path,
            writer,
            pools,
            Some(lock),
            stats,
        ))
    }

    /// Opens an existing store for reading only: no lane, no checkpointer, and SQLite
    /// connections opened read-only. It never creates, migrates or checkpoints the file, so
    /// it works beside another process that owns the store for writing, on a read-only file
    /// and on a full disk. Writes return [`Error::ReadOnly`].
    ///
    /// # Errors
    /// [`Error::NoDatabase`] if `path` does not exist (nothing is created),
    /// [`Error::SchemaTooNew`] for a file written by a newer seedbank,
    /// [`Error::ForeignDatabase`], [`Error::Damaged`] as for [`Store::open`],
    /// [`Error::Storage`] if SQLite cannot open or read the file.
    pub fn open_read_only(path: impl AsRef<Path>, config: Config) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::NoDatabase { path });
        }
        let stats = Arc::new(StatsCollector::new(config.detailed_stats));
        let opened = match Self::read_pools(&path, &config, &stats, ReaderMode::ReadOnly) {
            Ok(pools) => Ok((pools, None)),
            // SQLite could not set up its WAL index (a full disk, a read-only directory). With
            // no owner running and nothing in the WAL, the file alone is the database.
            Err(e) if !wal_has_frames(&path) => match OwnerLock::shared(&path) {
                Ok(lock) => {
                    // No lock file to hold (a copy, a backup): nothing stops a writer from
                    // starting, so the pools look for one after each read.
                    let mode = match lock {
                        Some(_) => ReaderMode::Immutable,
                        None => ReaderMode::ImmutableUnlocked,
                    };
                    Self::read_pools(&path, &config, &stats, mode).map(|pools| (pools, lock))
                }
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        };
        let (pools, lock) = opened.map_err(|e| explain_open_error(&path, e))?;
        let store = Store::assemble(config, &path, None, pools, lock, stats);
        store.check_schema_readable(&path)?;
        Ok(store)
    }

    fn read_pools(
        path: &Path,
        config: &Config,
        stats: &Arc<StatsCollector>,
        mode: ReaderMode,
    ) -> Result<(ReadPool, ReadPool)> {
        let open = |size, kind| ReadPool::open(path, size, kind, stats.clone(), None, mode);
        Ok((
            open(config.info_pool_size, PoolKind::Info)?,
            open(config.data_pool_size, PoolKind::Data)?,
        ))
    }

    fn assemble(
        config: Config,
        path: &Path,
        writer: Option<WriteSide>,
        (info_pool, data_pool): (ReadPool, ReadPool),
        lock: Option<OwnerLock>,
        stats: Arc<StatsCollector>,
    ) -> Store {
        Store {
            inner: Arc::new(Inner {
                config,
                path: path.to_path_buf(),
                writer,
                info_pool,
                data_pool,
                lock: parking_lot::Mutex::new(lock),
                stats,
                closed: AtomicBool::new(false),
                closing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A read-only open must find a seedbank schema it can read: from
    /// [`READABLE_FROM`](crate::schema::READABLE_FROM) to the version this build writes
    /// (foreign and damaged files are refused like [`Store::open`] refuses them).
    fn check_schema_readable(&self, path: &Path) -> Result<()> {
        let state = self
            .inner
            .info_pool
            .read_now(|conn| crate::schema::inspect(conn, path))?;
        match state {
            FileState::Seedbank { version, .. }
                if (crate::schema::READABLE_FROM..=SCHEMA_VERSION).contains(&version) =>
            {
                Ok(())
            }
            FileState::Seedbank { version, .. } => Err(Error::SchemaTooOld {
                found: version,
                supported: SCHEMA_VERSION,
            }),
            FileState::Empty => Err(Error::SchemaTooOld {
                found: 0,
                supported: SCHEMA_VERSION,
            }),
        }
    }

    /// True for a store opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.writer.is_none()
    }

    /// The write side, or [`Error::ReadOnly`] / [`Error::Closed`].
    fn writer(&self) -> Result<&WriteSide> {
        self.ensure_open()?;
        self.inner.writer.as_ref().ok_or(Error::ReadOnly)
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn stats_collector(&self) -> &StatsCollector {
        &self.inner.stats
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// True once [`Store::close`] has started.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    fn ensure_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Stores one blob at `Normal` priority; returns its CID once the write is committed.
    ///
    /// # Errors
    /// As [`Store::put_many`].
    pub async fn put(&self, blob: Blob) -> Result<Cid> {
        self.put_with(blob, PutOptions::default()).await
    }

    /// Stores one blob with options.
    ///
    /// # Errors
    /// As [`Store::put_many`].
    pub async fn put_with(&self, blob: Blob, opts: PutOptions) -> Result<Cid> {
        let cids = self.put_many(vec![blob], opts).await?;
        Ok(cids[0])
    }

    /// Stores blobs; returns their CIDs in input order once every one is committed.
    ///
    /// Blobs are split into requests of at most `request_max_blobs` / `request_max_bytes`;
    /// each request is committed whole or not at all. A request is admitted only when its
    /// class's queue has room, so a fast producer waits here and memory stays bounded.
    /// Dropping the future cancels requests the lane has not started; requests already
    /// committed stay (each blob in them is complete, valid content).
    ///
    /// # Errors
    /// [`Error::TooLarge`] (checked for every blob before anything is admitted),
    /// [`Error::Overloaded`] if `opts.deadline` passes while waiting for room,
    /// [`Error::Closed`], [`Error::DiskFull`] when the disk is full (nothing of the failed
    /// requests is stored; retry once there is room), [`Error::TransactionEnded`] or
    /// [`Error::Panicked`] when an app write or staged op in the same batch misbehaved, or
    /// [`Error::Storage`] if the batch commit failed.
    pub async fn put_many(&self, blobs: Vec<Blob>, opts: PutOptions) -> Result<Vec<Cid>> {
        self.put_staged(blobs.into_iter().map(StagedBlob::from).collect(), opts)
            .await
    }

    /// Like [`Store::put_many`] for blobs carrying staged ops (the index uses this to write
    /// link rows in the same transaction as the blob).
    ///
    /// # Errors
    /// As [`Store::put_many`]; an op's error fails its request.
    pub async fn put_staged(&self, blobs: Vec<StagedBlob>, opts: PutOptions) -> Result<Vec<Cid>> {
        let lane = &self.writer()?.lane;
        let max = self.inner.config.max_blob_size;
        if let Some(big) = blobs.iter().find(|s| s.blob.len() > max) {
            return Err(Error::TooLarge {
                size: big.blob.len(),
                max,
            });
        }
        let cids: Vec<Cid> = blobs.iter().map(|s| *s.blob.cid()).collect();
        let mut acks = Vec::new();
        for chunk in self.chunk(blobs) {
            acks.push(lane.submit(chunk, &opts).await?);
        }
        for ack in acks {
            ack.await.map_err(|_| lost_ack())??;
        }
        Ok(cids)
    }

    /// Splits blobs into requests within the per-request budget.
    fn chunk(&self, blobs: Vec<StagedBlob>) -> Vec<Submission> {
        let max_blobs = self.inner.config.request_max_blobs.max(1);
        let max_bytes = self.inner.config.request_max_bytes;
        let mut out = Vec::new();
        let mut cur = Submission {
            work: Work::Blobs(Vec::new()),
            bytes: 0,
            blobs: 0,
        };
        for s in blobs {
            if cur.blobs > 0 && (cur.blobs >= max_blobs || cur.bytes + s.blob.len() > max_bytes) {
                let next = Submission {
                    work: Work::Blobs(Vec::new()),
                    bytes: 0,
                    blobs: 0,
                };
                out.push(std::mem::replace(&mut cur, next));
            }
            cur.bytes += s.blob.len();
            cur.blobs += 1;
            if let Work::Blobs(v) = &mut cur.work {
                v.push(s);
            }
        }
        if cur.blobs > 0 {
            out.push(cur);
        }
        out
    }

    /// Runs `f` inside a lane batch, under its own savepoint, and returns its value once
    /// the batch has committed. Use it for the application's own tables (peer rows, caches)
    /// so nothing in the process ever needs its own `BEGIN IMMEDIATE`.
    ///
    /// `f` runs on the writer thread while the write lock is held: keep it to SQL.
    ///
    /// # Errors
    /// [`Error::App`] if `f` failed (only its savepoint is rolled back, other requests in
    /// the batch commit), [`Error::Superseded`] if a newer write with the same
    /// `opts.coalesce_key` replaced it before it ran, [`Error::Panicked`] if `f` panicked
    /// (its savepoint is rolled back, the lane carries on), [`Error::TransactionEnded`] if `f`
    /// (or another closure in its batch) ended the lane's transaction — never run `COMMIT`,
    /// `ROLLBACK` or `BEGIN` in `f` —, [`Error::DiskFull`], [`Error::Overloaded`],
    /// [`Error::Closed`], [`Error::Storage`] if the commit failed.
    pub async fn write<T, F>(&self, opts: PutOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        let lane = &self.writer()?.lane;
        let work = Work::App(Box::new(move |conn| f(conn).map(|v| Box::new(v) as _)));
        let ack = lane
            .submit(
                Submission {
                    work,
                    bytes: 0,
                    blobs: 0,
                },
                &opts,
            )
            .await?;
        let value = ack.await.map_err(|_| lost_ack())??;
        let value = value.expect("app writes are acked with their value");
        Ok(*value
            .downcast::<T>()
            .expect("the value has the closure's type"))
    }

    /// Reads a blob's bytes, verified against its CID.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the stored bytes do not hash to the CID (they are never
    /// returned), [`Error::UnsupportedHash`], [`Error::Closed`].
    pub async fn get(&self, cid: &Cid) -> Result<Option<Bytes>> {
        self.get_many(std::slice::from_ref(cid))
            .await?
            .pop()
            .expect("one result per CID")
    }

    /// Reads several blobs in one hop to the data pool and one read snapshot; each result
    /// is verified against its CID like [`Store::get`]. The outer error is for the read as
    /// a whole; the inner ones are per CID ([`Error::Corrupt`], [`Error::UnsupportedHash`]).
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`].
    pub async fn get_many(&self, cids: &[Cid]) -> Result<Vec<Result<Option<Bytes>>>> {
        self.read_each(cids, crate::rows::get).await
    }

    /// Reads the bytes of each CID's multihash stored under any codec (the store keeps bytes
    /// once per multihash), as blobs addressed by the CIDs asked for, in one hop to the data
    /// pool and one read snapshot. Discovery stores a wanted CID from them without fetching
    /// it. The inner errors are per CID, as for [`Store::get_many`].
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`].
    pub async fn get_any_codec(&self, cids: &[Cid]) -> Result<Vec<Result<Option<Blob>>>> {
        self.read_each(cids, crate::rows::get_any_codec).await
    }

    /// Reads each of `cids` with `row` on the data pool, in one snapshot: a per-blob error
    /// (corrupt bytes, an unsupported hash) is that CID's result; any other ends the read.
    async fn read_each<T: Send + 'static>(
        &self,
        cids: &[Cid],
        row: fn(&Connection, &Cid) -> Result<Option<T>>,
    ) -> Result<Vec<Result<Option<T>>>> {
        self.ensure_open()?;
        let cids = cids.to_vec();
        self.inner
            .data_pool
            .read(move |conn| {
                in_snapshot(conn, cids.len(), |conn| {
                    let mut out = Vec::with_capacity(cids.len());
                    for cid in &cids {
                        out.push(match row(conn, cid) {
                            Err(e) if !e.is_per_blob() => return Err(e),
                            found => found,
                        });
                    }
                    Ok(out)
                })
            })
            .await
    }

    /// Reads a blob's metadata from the metadata-only `info` pool (never its bytes).
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`].
    pub async fn info(&self, cid: &Cid) -> Result<Option<BlobInfo>> {
        self.ensure_open()?;
        let cid = *cid;
        self.inner
            .info_pool
            .read(move |conn| crate::rows::info(conn, &cid))
            .await
    }

    /// The metadata of each of `cids` (`None` if not stored), in input order, from the
    /// metadata-only `info` pool in one read snapshot (never their bytes).
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`].
    pub async fn info_many(&self, cids: &[Cid]) -> Result<Vec<Option<BlobInfo>>> {
        self.ensure_open()?;
        let cids = cids.to_vec();
        self.inner
            .info_pool
            .read(move |conn| {
                in_snapshot(conn, cids.len(), |conn| {
                    cids.iter()
                        .map(|cid| crate::rows::info(conn, cid))
                        .collect()
                })
            })
            .await
    }

    /// Which of `cids` are stored, in input order, read in one snapshot.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`].
    pub async fn has_many(&self, cids: &[Cid]) -> Result<Vec<bool>> {
        self.ensure_open()?;
        let cids = cids.to_vec();
        self.inner
            .data_pool
            .read(move |conn| {
                in_snapshot(conn, cids.len(), |conn| {
                    cids.iter().map(|cid| crate::rows::has(conn, cid)).collect()
                })
            })
            .await
    }

    /// True if `cid` is stored.
    ///
    /// # Errors
    /// As [`Store::has_many`].
    pub async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.has_many(std::slice::from_ref(cid)).await?[0])
    }

    /// Runs a read-only closure on a pooled connection (apps reading their own tables or
    /// seedbank's). Reads never wait for the writer, nor for a checkpoint.
    ///
    /// A read on the data pool is under the **reader transaction limit**: if it holds its
    /// snapshot longer than `Config::checkpoint_max_wait` while the WAL is over its cap, its
    /// running or next SQL statement is interrupted and the read fails with
    /// [`Error::ReadExpired`], so that one long reader cannot stall ingest or grow the WAL.
    /// Read large sets in pieces (each its own `read`). A closure that keeps its transaction
    /// open without calling SQLite (sleeping, awaiting something) cannot be interrupted: it
    /// pins the WAL until it returns.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::ReadExpired`], [`Error::App`] with the closure's error.
    pub async fn read<T, F>(&self, pool: PoolKind, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        self.app_read(pool, true, f).await
    }

    /// As [`Store::read`], but never ended by the reader transaction limit: for seedbank's
    /// own scans (DAG walks, haves snapshots, GC marking), whose length the store's size
    /// bounds. While a scan holds a snapshot the WAL cannot be rewound past it, so the lane
    /// writes on past the cap instead of waiting (see the design doc, "WAL and
    /// checkpoints"). Apps should use [`Store::read`].
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::App`] with the closure's error.
    pub async fn scan<T, F>(&self, pool: PoolKind, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        self.app_read(pool, false, f).await
    }

    /// [`Store::read`] (`limited`) or [`Store::scan`].
    async fn app_read<T, F>(&self, pool: PoolKind, limited: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
    {
        self.ensure_open()?;
        let f = move |conn: &Connection| f(conn).map_err(Error::App);
        match pool {
            PoolKind::Info => self.inner.info_pool.read(f).await,
            PoolKind::Data => self.inner.data_pool.run(limited, f).await,
        }
    }

    /// Re-hashes every stored blob and runs SQLite's integrity check.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`] if the scan itself fails.
    pub async fn verify(&self) -> Result<crate::VerifyReport> {
        self.ensure_open()?;
        self.inner
            .data_pool
            .read(|conn| crate::verify::verify_all(conn, true))
            .await
    }

    /// Re-hashes every stored blob (no integrity check): the report's
    /// [`corrupt`](crate::VerifyReport::corrupt) list is what a repair removes.
    ///
    /// # Errors
    /// As [`Store::verify`].
    pub async fn verify_blobs(&self) -> Result<crate::VerifyReport> {
        self.ensure_open()?;
        self.inner
            .data_pool
            .read(|conn| crate::verify::verify_all(conn, false))
            .await
    }

    /// Counts what the database holds (a scan of the metadata, on the data pool).
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`].
    pub async fn contents(&self) -> Result<Contents> {
        self.ensure_open()?;
        self.inner
            .data_pool
            .read(|conn| {
                let tx = conn.unchecked_transaction().during("begin read")?;
                let cids: i64 = tx
                    .query_row(crate::schema::sql::COUNT_CIDS, [], |r| r.get(0))
                    .during("count")?;
                let (distinct, bytes): (i64, i64) = tx
                    .query_row(
                        "SELECT count(*), coalesce(sum(length(data)), 0) FROM blob_data",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .during("count")?;
                let schema_version: i64 = tx
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .during("count")?;
                Ok(Contents {
                    cids: cids as u64,
                    distinct_blobs: distinct as u64,
                    bytes: bytes as u64,
                    schema_version,
                })
            })
            .await
    }

    /// A snapshot of the store's counters and latencies.
    pub fn stats(&self) -> Stats {
        let queued = self.inner.writer.as_ref().map(|w| w.lane.queued());
        self.inner.stats.snapshot(queued.unwrap_or_default())
    }

    /// Stops accepting work, drains every queued request, commits, runs a TRUNCATE
    /// checkpoint and only then returns. Later calls on any clone get [`Error::Closed`];
    /// calling `close` again is a no-op.
    ///
    /// # Errors
    /// [`Error::Storage`] if the final checkpoint failed (everything acked is still durable).
    pub async fn close(&self) -> Result<()> {
        let _serial = self.inner.closing.lock().await;
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(w) = &inner.writer {
                w.lane.close();
                w.checkpointer.close()?;
            }
            // The writer connection is closed: another owner may open the file now.
            inner.lock.lock().take();
            inner.info_pool.close();
            inner.data_pool.close();
            Ok(())
        })
        .await
        .map_err(|source| Error::Task {
            what: "close",
            source,
        })?
    }
}

/// A reader that could not even be configured may have met a foreign or damaged file: say
/// so specifically when a plain look at the file shows it, else keep SQLite's error.
fn explain_open_error(path: &Path, err: Error) -> Error {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match Connection::open_with_flags(path, flags).map(|c| crate::schema::inspect(&c, path)) {
        Ok(Err(e @ (Error::Damaged { .. } | Error::ForeignDatabase { .. }))) => e,
        _ => err,
    }
}

/// The lane dropped a request without answering: only a panic in the lane itself does that
/// (it drains everything queued before it stops).
fn lost_ack() -> Error {
    Error::Panicked {
        message: "the writer lane lost the request".into(),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Without `close()`, still drain the lane so nothing acked-to-be is lost.
        if let Some(w) = &self.writer {
            w.lane.close();
            if let Err(e) = w.checkpointer.close() {
                tracing::warn!(error = %e, "final checkpoint on drop failed");
            }
        }
    }
}
