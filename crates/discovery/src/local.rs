//! Reconcile by content: bytes stored here under another codec are never fetched again.
//!
//! The store keeps bytes once per multihash and one metadata row per CID. A wanted CID whose
//! multihash is stored under another codec gets its row from the local bytes
//! ([`Store::get_any_codec`](seedbank_blobstore::Store::get_any_codec), verified against the
//! wanted CID), then stored by the run like a fetched blob (links indexed, under the run's
//! temp pin), costing no message.

use cid::Cid;
use seedbank_blobstore::Blob;
use seedbank_index::Index;

use crate::error::Result;

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
    let found = index.store().get_any_codec(absent).await?;
    // A per-CID error is corrupt or unreadable bytes here: fetch that one instead.
    Ok(found.into_iter().filter_map(|r| r.ok().flatten()).collect())
}
