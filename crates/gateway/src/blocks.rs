//! Reading blocks from the store: identity CIDs decoded in place, everything else verified
//! by the store; batches bounded by the stored sizes, never by what a block claims.

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::Store;

/// Multihash code of the identity "hash".
const IDENTITY: u64 = 0x00;

/// Blocks fetched in one store round trip, at most.
pub(crate) const BATCH_BLOCKS: usize = 32;

/// True for CIDs whose bytes are their digest (never stored, never sent in a CAR).
pub(crate) fn is_identity(cid: &Cid) -> bool {
    cid.hash().code() == IDENTITY
}

/// Why a block could not be had.
#[derive(Debug)]
pub(crate) enum BlockError {
    /// Not stored (or stored bytes that no longer match: never served).
    Missing(Cid),
    /// The store failed (closed, I/O).
    Store(seedbank_blobstore::Error),
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockError::Missing(cid) => write!(f, "block {cid} is not available"),
            BlockError::Store(_) => write!(f, "reading blocks failed"),
        }
    }
}

impl std::error::Error for BlockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BlockError::Missing(_) => None,
            BlockError::Store(e) => Some(e),
        }
    }
}

/// One block's bytes.
pub(crate) async fn get(store: &Store, cid: &Cid) -> Result<Bytes, BlockError> {
    let mut got = get_many(store, std::slice::from_ref(cid)).await?;
    got.pop().flatten().ok_or(BlockError::Missing(*cid))
}

/// The bytes of `cids` in order, `None` for those not available (absent, or stored bytes
/// that fail verification), in one store round trip for the stored ones.
pub(crate) async fn get_many(
    store: &Store,
    cids: &[Cid],
) -> Result<Vec<Option<Bytes>>, BlockError> {
    let stored: Vec<Cid> = cids.iter().filter(|c| !is_identity(c)).copied().collect();
    let mut from_store = if stored.is_empty() {
        Vec::new()
    } else {
        store.get_many(&stored).await.map_err(BlockError::Store)?
    }
    .into_iter();
    let mut out = Vec::with_capacity(cids.len());
    for cid in cids {
        if is_identity(cid) {
            out.push(Some(Bytes::copy_from_slice(cid.hash().digest())));
        } else {
            // A block whose stored bytes fail verification is as good as absent here;
            // the store counts and reports corruption itself.
            out.push(from_store.next().and_then(|r| r.ok()).flatten());
        }
    }
    Ok(out)
}

/// How many of `cids` (at least one) to fetch in one round trip so that their stored bytes
/// stay within `budget`: sizes come from the metadata-only pool, never from the DAG.
pub(crate) async fn batch_len(store: &Store, cids: &[Cid], budget: usize) -> usize {
    let mut bytes: u64 = 0;
    let mut n = 0;
    for cid in cids.iter().take(BATCH_BLOCKS) {
        if !is_identity(cid) {
            let size = match store.info(cid).await {
                Ok(Some(info)) => info.size,
                // Absent: fetched alone, so it ends the batch where it stands.
                _ => return n.max(1),
            };
            bytes = bytes.saturating_add(size);
            if n > 0 && bytes > budget as u64 {
                break;
            }
        }
        n += 1;
    }
    n.max(1)
}
