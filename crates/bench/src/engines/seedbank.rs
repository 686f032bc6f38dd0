//! `seedbank`: the real [`Store`], used exactly as an application would.

use std::path::Path;

use cid::Cid;

use super::{upsert_peer, Counters, Engine, EngineSettings, PeerWrite};
use seedbank_blobstore::{Blob, Config, Error, PutOptions, Stats, Store};

/// The real store.
pub struct Seedbank {
    store: Store,
}

impl Seedbank {
    /// Opens the store with default settings except `synchronous` and `detailed_stats`.
    ///
    /// # Errors
    /// Whatever [`Store::open`] returns.
    pub fn open(
        path: &Path,
        settings: &EngineSettings,
        detailed_stats: bool,
    ) -> anyhow::Result<Seedbank> {
        let config = Config {
            synchronous: settings.synchronous,
            detailed_stats,
            ..Config::default()
        };
        Ok(Seedbank {
            store: Store::open(path, config)?,
        })
    }

    /// The store's own counters.
    pub fn stats(&self) -> Stats {
        self.store.stats()
    }
}

fn counters_of(stats: &Stats) -> Counters {
    Counters {
        busy_errors: stats.sqlite_busy,
        // seedbank installs no counting busy handler: its writer never contends, and any
        // SQLITE_BUSY it met would show in `busy_errors`.
        busy_waits: None,
        wal_peak_bytes: stats.wal.peak_bytes,
        transactions: stats.batches,
    }
}

impl Engine for Seedbank {
    async fn put(&self, blobs: Vec<Blob>, opts: PutOptions) -> anyhow::Result<()> {
        self.store.put_many(blobs, opts).await?;
        Ok(())
    }

    async fn info(&self, cid: Cid) -> anyhow::Result<bool> {
        Ok(self.store.info(&cid).await?.is_some())
    }

    async fn touch_peer(&self, peer: u32, opts: PutOptions) -> anyhow::Result<PeerWrite> {
        let opts = opts.coalesce(format!("peer:{peer}"));
        match self
            .store
            .write(opts, move |conn| Ok(upsert_peer(conn, peer)?))
            .await
        {
            Ok(()) => Ok(PeerWrite::Applied),
            Err(Error::Superseded) => Ok(PeerWrite::Coalesced),
            Err(e) if e.is_busy() => Ok(PeerWrite::Dropped),
            Err(e) => Err(e.into()),
        }
    }

    fn counters(&self) -> Counters {
        counters_of(&self.store.stats())
    }

    fn details(&self) -> serde_json::Value {
        serde_json::to_value(self.store.stats()).unwrap_or_default()
    }

    async fn close(&self) -> anyhow::Result<Counters> {
        // Counters before close: the final TRUNCATE checkpoint is not part of the run.
        let counters = self.counters();
        self.store.close().await?;
        Ok(counters)
    }
}
