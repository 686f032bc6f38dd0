//! `limit` and `limit-bounded`: one connection inserting in large transactions with nothing
//! else running. The machine's ceilings for this schema: no lock contention, no readers.
//! `limit` runs no checkpoint during the run (`wal_autocheckpoint = 0`; the WAL grows to the
//! size of the ingest); `limit-bounded` runs a TRUNCATE checkpoint after any commit that
//! leaves the WAL over the cap, so it pays for checkpoints as seedbank does.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use cid::Cid;

use super::{insert_blobs, open_connection, query_info, upsert_peer, Counters, Engine, PeerWrite};
use super::{EngineSettings, PEERS_DDL};
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{Blob, PutOptions};

/// The single-connection ceiling.
pub struct Limit {
    /// std `Mutex`: held only on blocking threads, never across an `.await`.
    conn: Arc<Mutex<Connection>>,
    transactions: Arc<AtomicU64>,
    /// `limit-bounded`: the WAL file and the cap it is kept under.
    bound: Option<(Arc<Path>, u64)>,
}

impl Limit {
    /// Opens the engine's only connection on a database made by `prepare_database`.
    ///
    /// # Errors
    /// SQLite errors opening or configuring the connection.
    pub fn open(path: &Path, settings: &EngineSettings) -> anyhow::Result<Limit> {
        Self::open_with(path, settings, None)
    }

    /// Opens `limit-bounded`: the WAL kept under `settings.bounded_wal_cap`, the empty
    /// database first rebuilt at `settings.bounded_page_size` if one is set.
    ///
    /// # Errors
    /// SQLite errors opening, rebuilding or configuring the database.
    pub fn open_bounded(path: &Path, settings: &EngineSettings) -> anyhow::Result<Limit> {
        if let Some(size) = settings.bounded_page_size {
            // The page size of a WAL database can only change outside WAL mode.
            let conn = Connection::open(path)?;
            conn.execute_batch(&format!(
                "PRAGMA journal_mode = DELETE; PRAGMA page_size = {size}; VACUUM;
                 PRAGMA journal_mode = WAL;"
            ))?;
        }
        let wal: Arc<Path> = seedbank_blobstore::wal_path(path).into();
        Self::open_with(path, settings, Some((wal, settings.bounded_wal_cap)))
    }

    fn open_with(
        path: &Path,
        settings: &EngineSettings,
        bound: Option<(Arc<Path>, u64)>,
    ) -> anyhow::Result<Limit> {
        let conn = open_connection(path, settings.synchronous)?;
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -32768;")?;
        conn.execute_batch(PEERS_DDL)?;
        Ok(Limit {
            conn: Arc::new(Mutex::new(conn)),
            transactions: Arc::new(AtomicU64::new(0)),
            bound,
        })
    }

    /// Runs `f` in one write transaction on a blocking thread.
    async fn transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (conn, transactions) = (self.conn.clone(), self.transactions.clone());
        let bound = self.bound.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().expect("limit connection lock");
            let tx = conn.transaction_with_behavior(
                seedbank_blobstore::rusqlite::TransactionBehavior::Immediate,
            )?;
            let value = f(&tx)?;
            tx.commit()?;
            transactions.fetch_add(1, Relaxed);
            if let Some((wal, cap)) = &bound {
                // The only connection: TRUNCATE never waits for a reader or a writer.
                if std::fs::metadata(wal).map_or(0, |m| m.len()) > *cap {
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                }
            }
            Ok(value)
        })
        .await?
    }
}

impl Engine for Limit {
    async fn put(&self, blobs: Vec<Blob>, _opts: PutOptions) -> anyhow::Result<()> {
        self.transaction(move |conn| Ok(insert_blobs(conn, &blobs)?))
            .await
    }

    async fn info(&self, cid: Cid) -> anyhow::Result<bool> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            Ok(query_info(
                &conn.lock().expect("limit connection lock"),
                &cid,
            )?)
        })
        .await?
    }

    async fn touch_peer(&self, peer: u32, _opts: PutOptions) -> anyhow::Result<PeerWrite> {
        self.transaction(move |conn| Ok(upsert_peer(conn, peer)?))
            .await?;
        Ok(PeerWrite::Applied)
    }

    fn counters(&self) -> Counters {
        Counters {
            transactions: self.transactions.load(Relaxed),
            ..Counters::default()
        }
    }

    async fn close(&self) -> anyhow::Result<Counters> {
        Ok(self.counters())
    }
}
