//! Reading: blocks (verified by the store, identity CIDs decoded in place), files as byte
//! streams, directory listings and path resolution.

mod cat;
pub(crate) mod ls;

pub use cat::FileReader;
pub use ls::Entry;

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::Store;

use crate::error::{Error, Result};
use crate::node::{identity_bytes, Node};

/// Deepest file or directory DAG read (a balanced file of 1,024-link nodes is 7 levels
/// deep at 1 EiB; a HAMT adds a level per 8 bits of hash). Bounds the memory of a walk
/// over a hostile DAG.
pub(crate) const MAX_DEPTH: usize = 64;

/// One block's outcome within a batch read: its bytes, absent, or the store's error.
pub(crate) type Fetched = Result<Option<Bytes>, seedbank_blobstore::Error>;

/// Reads blocks in one store round trip (identity CIDs need none); each result is verified
/// against its CID by the store.
pub(crate) async fn fetch_many(store: &Store, cids: &[Cid]) -> Result<Vec<Fetched>> {
    let stored: Vec<Cid> = cids
        .iter()
        .filter(|c| identity_bytes(c).is_none())
        .copied()
        .collect();
    let mut from_store = if stored.is_empty() {
        Vec::new()
    } else {
        store
            .get_many(&stored)
            .await
            .map_err(|source| Error::Read {
                cid: stored[0],
                source: Box::new(source),
            })?
    }
    .into_iter();
    Ok(cids
        .iter()
        .map(|cid| match identity_bytes(cid) {
            Some(bytes) => Ok(Some(bytes)),
            None => from_store.next().unwrap_or(Ok(None)),
        })
        .collect())
}

/// One block, decoded; a missing block is [`Error::MissingBlock`].
pub(crate) async fn load(store: &Store, cid: &Cid) -> Result<Node> {
    let fetched = fetch_many(store, std::slice::from_ref(cid)).await?;
    let bytes = present(cid, fetched.into_iter().next().unwrap_or(Ok(None)))?;
    Node::decode(cid, bytes)
}

/// The bytes of a fetched block, or the error that stands for it.
pub(crate) fn present(cid: &Cid, fetched: Fetched) -> Result<Bytes> {
    match fetched {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(Error::MissingBlock { cid: *cid }),
        Err(source) => Err(Error::Read {
            cid: *cid,
            source: Box::new(source),
        }),
    }
}
