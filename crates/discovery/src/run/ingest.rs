//! Verifying fetched blobs and submitting them through the lane.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::{Blob, Priority};
use seedbank_index::{extract_links, Index, IndexPutOptions, TempPin};

use crate::error::{Error, Result};
use crate::haves::Haves;
use crate::item::ItemId;
use crate::scope::Scope;

/// Above this many bytes, hashing moves to a blocking thread so it does not stall the
/// runtime's other tasks.
const INLINE_VERIFY_BYTES: usize = 256 * 1024;

/// Checks a fetch answer against what was asked: every blob must be one asked for, at most
/// once, no larger than this store takes (`max_blob_size`), and hash to its CID. One bad
/// blob condemns the whole answer (a lying peer's bytes are never stored, not even those
/// that happen to verify): the fault is the peer's, never the run's.
///
/// # Errors
/// [`Error::HashMismatch`] or [`Error::Protocol`] naming `peer`.
pub(crate) async fn verify(
    peer: &str,
    asked: &[Cid],
    answer: Vec<(Cid, Bytes)>,
    max_blob_size: usize,
) -> Result<Vec<Blob>> {
    let asked: HashMap<ItemId, Cid> = asked.iter().map(|c| (ItemId::of(c), *c)).collect();
    let mut seen = HashSet::new();
    let mut pairs = Vec::with_capacity(answer.len());
    for (cid, data) in answer {
        let id = ItemId::of(&cid);
        let Some(ours) = asked.get(&id) else {
            return Err(protocol(
                peer,
                format!("sent {cid}, which was not asked for"),
            ));
        };
        if !seen.insert(id) {
            return Err(protocol(peer, format!("sent {cid} twice")));
        }
        if data.len() > max_blob_size {
            let n = data.len();
            let why =
                format!("sent {n} bytes for {cid}, over this node's limit of {max_blob_size}");
            return Err(protocol(peer, why));
        }
        pairs.push((*ours, data));
    }
    let total: usize = pairs.iter().map(|(_, d)| d.len()).sum();
    let peer = peer.to_string();
    if total <= INLINE_VERIFY_BYTES {
        return check_all(&peer, pairs);
    }
    tokio::task::spawn_blocking(move || check_all(&peer, pairs))
        .await
        .map_err(|e| Error::Aborted {
            reason: format!("verification task failed: {e}"),
        })?
}

fn check_all(peer: &str, pairs: Vec<(Cid, Bytes)>) -> Result<Vec<Blob>> {
    pairs
        .into_iter()
        .map(|(cid, data)| {
            Blob::with_cid(cid, data).map_err(|e| match e {
                seedbank_blobstore::Error::HashMismatch { cid } => Error::HashMismatch {
                    peer: peer.to_string(),
                    cid,
                },
                other => protocol(peer, format!("unverifiable blob for {cid}: {other}")),
            })
        })
        .collect()
}

fn protocol(peer: &str, reason: String) -> Error {
    Error::Protocol {
        peer: Some(peer.to_string()),
        reason,
    }
}

/// Stores verified blobs through the index (links indexed, named-scope membership recorded,
/// under the run's temp pin) at `Normal` priority, as one `put_many` that the store splits
/// into lane requests.
///
/// The write runs as a task of its own: dropping a `put_many` future cancels the lane
/// requests not started yet, and a session cancelled mid-store (the scope completed, the run
/// failed) must not throw away blobs it fetched and verified.
///
/// # Errors
/// [`Error::Index`] if the lane rejected or failed the write.
pub(crate) async fn submit(
    index: &Index,
    scope: &Scope,
    source: &str,
    pin: &TempPin,
    blobs: Vec<Blob>,
) -> Result<()> {
    let mut opts = IndexPutOptions::new(Priority::Normal, source).temp_pin(pin);
    if let Scope::Named(name) = scope {
        opts = opts.scope(name.clone());
    }
    let index = index.clone();
    finish(async move { index.put_many(blobs, opts).await }).await?;
    Ok(())
}

/// Runs a store write to its end even if the caller stops waiting.
///
/// # Errors
/// The write's error, or [`Error::Aborted`] if its task panicked.
pub(crate) async fn finish<T, F>(write: F) -> Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = seedbank_index::Result<T>> + Send + 'static,
{
    tokio::spawn(write)
        .await
        .map_err(|e| Error::Aborted {
            reason: format!("store write task failed: {e}"),
        })?
        .map_err(Error::from)
}

/// The links of fetched DAG blocks that may be new wants: not identity CIDs (never
/// missing) and not in the run's starting snapshot. Deduplicated, in link order.
pub(crate) fn children(blobs: &[Blob], haves: &Haves) -> Vec<Cid> {
    let mut seen = HashSet::new();
    blobs
        .iter()
        .flat_map(|b| extract_links(b.cid().codec(), b.data()).links)
        .filter(|c| c.hash().code() != 0x00)
        .filter(|c| seen.insert(ItemId::of(c)) && !haves.contains(c))
        .collect()
}
