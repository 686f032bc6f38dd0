//! Reconcile by content: bytes stored here under another codec are never fetched again.
//!
//! The store keeps bytes once per multihash (`blob_data`) and one metadata row per CID. A
//! wanted CID whose multihash is stored under another codec gets its row from the local
//! bytes (verified against the wanted CID, then written through the index so its links are
//! indexed and it joins the scope), costing no message.

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::cid::multihash_key;
use seedbank_blobstore::rusqlite::OptionalExtension;
use seedbank_blobstore::{Blob, PoolKind, Priority, Store};
use seedbank_index::{Index, IndexPutOptions, TempPin};

use crate::error::Result;
use crate::run::ingest;
use crate::scope::Scope;

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

/// Of `absent` (CIDs not stored here), stores those whose bytes are stored under another
/// codec, from those bytes, joining `scope` when it is named and `pin`. Returns the CIDs
/// stored.
///
/// # Errors
/// [`Error::Index`](crate::Error::Index) / [`Error::Blobstore`](crate::Error::Blobstore)
/// if the read or the write failed.
pub(crate) async fn adopt(
    index: &Index,
    scope: &Scope,
    source: &str,
    pin: &TempPin,
    absent: &[Cid],
) -> Result<Vec<Cid>> {
    if absent.is_empty() {
        return Ok(Vec::new());
    }
    let found = bytes_by_multihash(index.store(), absent).await?;
    // Bytes that do not hash to the CID are corrupt here: fetch them instead.
    let blobs: Vec<Blob> = absent
        .iter()
        .zip(found)
        .filter_map(|(cid, data)| Blob::with_cid(*cid, data?).ok())
        .collect();
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    let mut opts = IndexPutOptions::new(Priority::Normal, source).temp_pin(pin);
    if let Scope::Named(name) = scope {
        opts = opts.scope(name.clone());
    }
    let index = index.clone();
    ingest::finish(async move { index.put_many(blobs, opts).await }).await?;
    Ok(cids)
}
