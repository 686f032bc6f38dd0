//! The engines compared, behind one trait, and the SQL they share.
//!
//! Every engine writes the blobstore's own schema (created by opening and closing a real
//! [`Store`](seedbank_blobstore::Store)) with the same statements the lane runs, so only the
//! way writes and reads reach SQLite differs. The one exception, `iroh-blobs` (feature
//! `iroh-blobs`), is another store altogether: iroh-blobs' own file store, for comparison.

#[cfg(feature = "iroh-blobs")]
mod iroh_blobs;
mod limit;
mod naive;
mod seedbank;

use std::future::Future;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use serde::Serialize;

use seedbank_blobstore::cid::multihash_key;
use seedbank_blobstore::rusqlite::{self, Connection, ErrorCode, OptionalExtension};
use seedbank_blobstore::{sql, Blob, Config, PutOptions, Store, Synchronous};

#[cfg(feature = "iroh-blobs")]
pub use iroh_blobs::{IrohBlobs, IrohStored};
pub use limit::Limit;
pub use naive::Naive;
pub use seedbank::Seedbank;

/// Which engine a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// One connection inserting in large transactions, nothing else running, no checkpoint
    /// during the run (the WAL grows unbounded): the ceiling of a short burst.
    Limit,
    /// As `limit`, but keeping the WAL under seedbank's cap by a TRUNCATE checkpoint
    /// whenever it passes it: the ceiling of sustained ingest with a bounded WAL.
    LimitBounded,
    /// A shared pool for reads and writes, `BEGIN IMMEDIATE` with a 10 s busy timeout.
    Naive,
    /// The real store (detailed stats on, the default).
    Seedbank,
    /// The real store with `Config::detailed_stats = false` (for the stats overhead).
    #[value(skip)]
    SeedbankNoStats,
    /// iroh-blobs' FsStore (feature `iroh-blobs`): each put's blobs added at once, tagged,
    /// then `sync_db`.
    #[cfg(feature = "iroh-blobs")]
    IrohBlobs,
}

impl EngineKind {
    /// Name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Limit => "limit",
            EngineKind::LimitBounded => "limit-bounded",
            EngineKind::Naive => "naive",
            EngineKind::Seedbank => "seedbank",
            EngineKind::SeedbankNoStats => "seedbank-nostats",
            #[cfg(feature = "iroh-blobs")]
            EngineKind::IrohBlobs => "iroh-blobs",
        }
    }

    /// The engines compared when none are named: `limit`, `limit-bounded`, `naive`,
    /// `seedbank`, and `iroh-blobs` when built with that feature.
    pub fn defaults() -> Vec<EngineKind> {
        let engines = vec![
            EngineKind::Limit,
            EngineKind::LimitBounded,
            EngineKind::Naive,
            EngineKind::Seedbank,
        ];
        #[cfg(feature = "iroh-blobs")]
        let engines = [engines, vec![EngineKind::IrohBlobs]].concat();
        engines
    }

    /// How the runner drives the engine.
    pub fn drive(self) -> Drive {
        match self {
            EngineKind::Limit | EngineKind::LimitBounded => Drive::Alone,
            _ => Drive::Concurrent,
        }
    }
}

/// How an engine is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// All producers, readers and extra writers at once.
    Concurrent,
    /// One caller putting every blob in large transactions; no readers, nothing else.
    Alone,
}

/// Settings every engine of a run shares.
#[derive(Clone, Debug, Serialize)]
pub struct EngineSettings {
    /// `synchronous` for every engine's writes.
    pub synchronous: Synchronous,
    /// Connections in the naive engine's shared pool.
    pub naive_pool: usize,
    /// The naive engine's busy timeout, ms.
    pub naive_busy_timeout_ms: u64,
    /// Blobs per transaction of the limit engine.
    pub limit_txn_blobs: usize,
    /// Bytes per transaction of the limit engine.
    pub limit_txn_bytes: usize,
    /// The WAL cap `limit-bounded` keeps (seedbank's default cap).
    pub bounded_wal_cap: u64,
    /// Page size `limit-bounded` rebuilds the empty database with (`None`: the store's).
    pub bounded_page_size: Option<u32>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        let batch = Config::default().batch;
        EngineSettings {
            synchronous: Synchronous::Full,
            naive_pool: 16,
            naive_busy_timeout_ms: 10_000,
            // The largest batch the lane may commit: seedbank reaches the limit only if it
            // always fills whole batches.
            limit_txn_blobs: batch.max_blobs,
            limit_txn_bytes: batch.max_bytes,
            bounded_wal_cap: Config::default().wal_cap_bytes,
            bounded_page_size: None,
        }
    }
}

/// What happened to one best-effort peer-row write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerWrite {
    /// Written and committed.
    Applied,
    /// Replaced by a newer write for the same peer before it ran (seedbank coalescing).
    Coalesced,
    /// Failed (SQLITE_BUSY after the busy timeout); a best-effort write is not retried.
    Dropped,
}

/// Counters an engine keeps about itself.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counters {
    /// SQLITE_BUSY / SQLITE_LOCKED errors returned to a caller.
    pub busy_errors: u64,
    /// Times a connection slept in SQLite's busy handler waiting for the write lock (each
    /// one holds a pooled connection idle). `None` where the engine does not count them.
    pub busy_waits: Option<u64>,
    /// Largest WAL size the engine itself observed, bytes (0 if it does not track it).
    pub wal_peak_bytes: u64,
    /// Write transactions committed.
    pub transactions: u64,
}

/// One way of storing blobs in SQLite. The runner drives every engine through this trait
/// only, so the three see identical calls.
pub trait Engine: Send + Sync + 'static {
    /// Stores `blobs` as one write and resolves once it is durable (committed).
    fn put(
        &self,
        blobs: Vec<Blob>,
        opts: PutOptions,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Reads one blob's metadata (size, insert time); true if it is stored.
    fn info(&self, cid: Cid) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Records "peer `peer` connected" in the app's own table: a best-effort bookkeeping
    /// write of the kind sync daemons make on every connect.
    fn touch_peer(
        &self,
        peer: u32,
        opts: PutOptions,
    ) -> impl Future<Output = anyhow::Result<PeerWrite>> + Send;

    /// Counters so far.
    fn counters(&self) -> Counters;

    /// The engine's own statistics as JSON, if it keeps any.
    fn details(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Finishes outstanding work and closes; returns the final counters.
    fn close(&self) -> impl Future<Output = anyhow::Result<Counters>> + Send;
}

/// Creates the blobstore schema at `path` with a real store, plus the app table that
/// peer-row writes go to.
pub async fn prepare_database(path: &Path) -> anyhow::Result<()> {
    let store = Store::open(path, Config::default())?;
    store.close().await?;
    let conn = Connection::open(path)?;
    conn.execute_batch(PEERS_DDL)?;
    Ok(())
}

/// The app table of the sync-burst scenario.
pub(crate) const PEERS_DDL: &str = "CREATE TABLE IF NOT EXISTS bench_peers (
    peer      INTEGER PRIMARY KEY,
    last_seen INTEGER NOT NULL,
    connects  INTEGER NOT NULL
)";

/// One peer-row write: insert or bump.
pub(crate) const PEER_UPSERT: &str = "INSERT INTO bench_peers (peer, last_seen, connects)
    VALUES (?1, ?2, 1)
    ON CONFLICT (peer) DO UPDATE SET last_seen = excluded.last_seen, connects = connects + 1";

/// Inserts blobs as the lane does: bytes once per multihash, one metadata row per CID.
pub(crate) fn insert_blobs(conn: &Connection, blobs: &[Blob]) -> rusqlite::Result<()> {
    let now_ms = unix_millis();
    // The blobstore's own statements, so limit and naive do exactly the lane's SQL work.
    let mut data = sql::DataStatements::prepare(conn)?;
    let mut insert_meta = conn.prepare_cached(sql::INSERT_META)?;
    for blob in blobs {
        let mh = multihash_key(blob.cid());
        let data_id = data.store(&mh, blob.data())?;
        let codec = blob.cid().codec() as i64;
        insert_meta.execute((&mh, codec, data_id, blob.len() as i64, now_ms))?;
    }
    Ok(())
}

/// The `info` query of `Store::info`.
pub(crate) fn query_info(conn: &Connection, cid: &Cid) -> rusqlite::Result<bool> {
    let found = conn
        .prepare_cached(sql::INFO)?
        .query_row((multihash_key(cid), cid.codec() as i64), |r| {
            let size: i64 = r.get(0)?;
            let at: i64 = r.get(1)?;
            Ok(size >= 0 && at >= 0)
        })
        .optional()?;
    Ok(found.is_some())
}

/// Runs one peer-row upsert.
pub(crate) fn upsert_peer(conn: &Connection, peer: u32) -> rusqlite::Result<()> {
    conn.prepare_cached(PEER_UPSERT)?
        .execute((peer, unix_millis()))?;
    Ok(())
}

/// Opens a read-write connection with WAL and the run's `synchronous`.
pub(crate) fn open_connection(path: &Path, sync: Synchronous) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    debug_assert!(mode.eq_ignore_ascii_case("wal"));
    let sync = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    // foreign_keys as seedbank's writer sets it: a baseline paying for reference checks
    // seedbank skips would flatter seedbank.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF;"
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// True for SQLITE_BUSY and SQLITE_LOCKED (any extended code).
pub(crate) fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// CIDs stored (metadata rows), read with a fresh connection after a run.
pub fn count_stored(path: &Path) -> anyhow::Result<u64> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let n: i64 = conn.query_row(sql::COUNT_CIDS, [], |r| r.get(0))?;
    Ok(n as u64)
}

/// The peer table as the run left it: `(rows, sum of connects)`; `(0, 0)` without the table.
/// Every committed peer write adds one to its row's `connects`.
pub fn count_peer_rows(path: &Path) -> anyhow::Result<(u64, u64)> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'bench_peers'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok((0, 0));
    }
    let (rows, connects): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(connects), 0) FROM bench_peers",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((rows as u64, connects as u64))
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
