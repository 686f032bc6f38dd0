//! Reconcile by content: bytes stored here under another codec are never fetched again.
//!
//! The store keeps bytes once per multihash (`blob_data`) and one metadata row per CID. A
//! wanted CID whose multihash is stored under another codec gets its row from the local
//! bytes (verified against the wanted CID), then the run stores it like a fetched blob
//! (links indexed, under the run's temp pin), costing no message.

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::cid::multihash_key;
use seedbank_blobstore::rusqlite::OptionalExtension;
use seedbank_blobstore::{Blob, PoolKind, Store};
use seedbank_index::Index;

use crate::error::Result;

/// The stored bytes of each CID's multihash, whatever codec they were stored under. Read
/// in one hop to the data pool. The blobstore has no public read by multihash; its `scan`
/// hook exists for the index and discovery crates, so the one statement lives here.
async fn bytes_by_multihash(store: &Store, cids: &[Cid]) -> Result<Vec<Option<Bytes>>> {
    let keys: Vec<Vec<u8>> = cids.iter().map(multihash_key).collect();
    let found = store
        .scan(PoolKind::Data, move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT d.data FROM blobs b JOIN blob_data d ON d.id = b.data_id
                 WHERE b.mh = ?1 LIMIT 1",
            )?;
            let mut out = Vec::with_capacity(keys.len());
            for key in &keys {
                let data: Option<Vec<u8>> = stmt.query_row([key], |r| r.get(0)).optional()?;
                out.push(data.map(Bytes::from));
            }
            Ok(out)
        })
        .await?;
    Ok(found)
}

/// Of `absent` (CIDs not stored here), those whose bytes are stored here under another
/// codec, as blobs made from those bytes (verified against the wanted CID; bytes that do not
/// hash to it are corrupt here and left out, to be fetched instead). Nothing is written:
/// the run stores them through its one ingest path.
///
/// # Errors
/// [`Error::Blobstore`](crate::Error::Blobstore) if the read failed.
pub(crate) async fn local_copies(index: &Index, absent: &[Cid]) -> Result<Vec<Blob>> {
    if absent.is_empty() {
        return Ok(Vec::new());
    }
    let found = bytes_by_multihash(index.store(), absent).await?;
    Ok(absent
        .iter()
        .zip(found)
        .filter_map(|(cid, data)| Blob::with_cid(*cid, data?).ok())
        .collect())
}
