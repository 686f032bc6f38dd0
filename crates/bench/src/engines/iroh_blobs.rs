//! `iroh-blobs` (feature `iroh-blobs`): iroh-blobs' [`FsStore`], what a Rust user would pick
//! instead of seedbank, used as its API suggests.
//!
//! - `put`: every blob's bytes added at once (the adds of one put joined), each kept by a
//!   persistent tag named `cid/<CID>` (one per CID, as seedbank keeps one metadata row per
//!   CID), then [`sync_db`](iroh_blobs::api::Store::sync_db): the put returns once that sync
//!   has committed the store's metadata (redb) to disk. iroh-blobs writes blobs over 16 KiB
//!   to their own data files and does not fsync those; its sync covers the metadata and
//!   the blobs inlined in it.
//! - `info`: [`status`](iroh_blobs::api::blobs::Blobs::status) of the CID's BLAKE3 digest
//!   (iroh-blobs addresses by BLAKE3 only: a CID with any other multihash is not found).
//! - `touch_peer`: iroh-blobs has no application table; the nearest bookkeeping write is a
//!   tag, so a connect sets tag `peer/<n>` (to the empty blob's hash) and syncs. A tag holds
//!   no counter: the run can count the peers recorded, not the connects.
//!
//! The store lives in its own directory next to the run's SQLite database (see
//! [`IrohBlobs::store_dir`]); after a run [`IrohBlobs::count_stored`] reopens it to count
//! what it kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use cid::Cid;
use futures_util::{future::try_join_all, StreamExt};
use iroh_blobs::api::blobs::BlobStatus;
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::{Hash, HashAndFormat};

use super::{Counters, Engine, PeerWrite};
use seedbank_blobstore::cid::multihash_code;
use seedbank_blobstore::{Blob, PutOptions};

/// Prefix of the tags that keep the workload's blobs: `cid/<CID>`.
const BLOB_TAG: &str = "cid/";
/// Prefix of the peer bookkeeping tags: `peer/<n>`.
const PEER_TAG: &str = "peer/";

/// iroh-blobs' file store.
pub struct IrohBlobs {
    store: FsStore,
    /// `sync_db` calls that returned.
    syncs: AtomicU64,
}

/// What an iroh-blobs store held after a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrohStored {
    /// `cid/…` tags whose blob is complete: CIDs stored.
    pub blobs: u64,
    /// `peer/…` tags: peers whose connect was recorded.
    pub peers: u64,
}

impl IrohBlobs {
    /// The store's directory for a run whose SQLite database is `db`: `iroh-blobs` beside it.
    pub fn store_dir(db: &Path) -> PathBuf {
        db.parent().unwrap_or(Path::new(".")).join("iroh-blobs")
    }

    /// Loads (or creates) the store in `dir` with iroh-blobs' default options (no GC).
    ///
    /// # Errors
    /// The store cannot be created or loaded.
    pub async fn open(dir: &Path) -> anyhow::Result<IrohBlobs> {
        let store = FsStore::load(dir)
            .await
            .map_err(|e| anyhow::anyhow!("loading iroh-blobs store {}: {e:#}", dir.display()))?;
        Ok(IrohBlobs {
            store,
            syncs: AtomicU64::new(0),
        })
    }

    /// Reopens the store in `dir` (closed by the run) and counts what it kept: blob tags
    /// whose blob is complete, and peer tags.
    ///
    /// # Errors
    /// The store cannot be loaded or listed.
    pub async fn count_stored(dir: &Path) -> anyhow::Result<IrohStored> {
        let engine = IrohBlobs::open(dir).await?;
        let counted = engine.count().await;
        engine.store.shutdown().await?;
        counted
    }

    async fn count(&self) -> anyhow::Result<IrohStored> {
        let mut stored = IrohStored::default();
        let mut tags = self.store.tags().list_prefix(BLOB_TAG).await?;
        while let Some(tag) = tags.next().await {
            if self.store.blobs().has(tag?.hash).await? {
                stored.blobs += 1;
            }
        }
        let mut peers = self.store.tags().list_prefix(PEER_TAG).await?;
        while let Some(tag) = peers.next().await {
            tag?;
            stored.peers += 1;
        }
        Ok(stored)
    }

    /// Commits the store's pending metadata writes; counted as one transaction.
    async fn sync(&self) -> anyhow::Result<()> {
        self.store.sync_db().await?;
        self.syncs.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Adds one blob and tags it `cid/<CID>`; checks iroh-blobs' hash against the CID's.
    async fn add(&self, blob: Blob) -> anyhow::Result<()> {
        let cid = *blob.cid();
        let tag = format!("{BLOB_TAG}{cid}");
        let added = self
            .store
            .add_bytes(blob.data().clone())
            .with_named_tag(tag)
            .await?;
        if let Some(expected) = blake3_hash(&cid) {
            anyhow::ensure!(
                added.hash == expected,
                "iroh-blobs hashed {cid} to {}, not its BLAKE3 digest",
                added.hash
            );
        }
        Ok(())
    }
}

/// The iroh-blobs hash of `cid`: its digest if its multihash is BLAKE3-256.
fn blake3_hash(cid: &Cid) -> Option<Hash> {
    let mh = cid.hash();
    if mh.code() != multihash_code::BLAKE3 {
        return None;
    }
    let digest: [u8; 32] = mh.digest().try_into().ok()?;
    Some(Hash::from_bytes(digest))
}

impl Engine for IrohBlobs {
    async fn put(&self, blobs: Vec<Blob>, _opts: PutOptions) -> anyhow::Result<()> {
        try_join_all(blobs.into_iter().map(|blob| self.add(blob))).await?;
        self.sync().await
    }

    async fn info(&self, cid: Cid) -> anyhow::Result<bool> {
        let Some(hash) = blake3_hash(&cid) else {
            return Ok(false);
        };
        let status = self.store.blobs().status(hash).await?;
        Ok(matches!(status, BlobStatus::Complete { .. }))
    }

    async fn touch_peer(&self, peer: u32, _opts: PutOptions) -> anyhow::Result<PeerWrite> {
        self.store
            .tags()
            .set(format!("{PEER_TAG}{peer}"), HashAndFormat::raw(Hash::EMPTY))
            .await?;
        self.sync().await?;
        Ok(PeerWrite::Applied)
    }

    fn counters(&self) -> Counters {
        Counters {
            busy_errors: 0,
            busy_waits: None,
            wal_peak_bytes: 0,
            transactions: self.syncs.load(Relaxed),
        }
    }

    async fn close(&self) -> anyhow::Result<Counters> {
        let counters = self.counters();
        self.store.shutdown().await?;
        Ok(counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedbank_blobstore::codec;

    #[test]
    fn a_blake3_cid_maps_to_iroh_blobs_own_hash() {
        let blob = Blob::new(codec::RAW, b"seedbank".to_vec());
        assert_eq!(blake3_hash(blob.cid()), Some(Hash::new(b"seedbank")));
    }
}
