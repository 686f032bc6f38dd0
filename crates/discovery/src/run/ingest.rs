//! Blobs on their way into the store: verified (a peer's answer), parsed once for their
//! links, and written through the one ingest path every stored blob of a run takes.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::{Blob, Priority, PutOptions};
use seedbank_index::{extract_links, Extracted, Index, TempPin};

use crate::error::{Error, Result};
use crate::haves::Haves;
use crate::item::ItemId;
use crate::scope::Scope;

/// Above this many bytes, hashing and parsing move to a blocking thread so they do not stall
/// the runtime's other tasks.
const INLINE_BYTES: usize = 256 * 1024;

/// A verified blob and its links, extracted once: the run learns a DAG block's children
/// from them and the index stores them as its link rows.
pub(crate) struct Parsed {
    pub blob: Blob,
    pub links: Extracted,
}

impl Parsed {
    /// Extracts `blob`'s links.
    pub fn new(blob: Blob) -> Self {
        let links = extract_links(blob.cid().codec(), blob.data());
        Parsed { blob, links }
    }

    pub fn cid(&self) -> &Cid {
        self.blob.cid()
    }
}

/// Checks a fetch answer against what was asked: every blob must be one asked for, at most
/// once, no larger than this store takes (`max_blob_size`), and hash to its CID. One bad
/// blob condemns the whole answer (a lying peer's bytes are never stored, not even those
/// that happen to verify): the fault is the peer's, never the run's. Each blob's links are
/// extracted in the same pass.
///
/// # Errors
/// [`Error::HashMismatch`] or [`Error::Protocol`] naming `peer`.
pub(crate) async fn verify(
    peer: &str,
    asked: &[Cid],
    answer: Vec<(Cid, Bytes)>,
    max_blob_size: usize,
) -> Result<Vec<Parsed>> {
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
    if total <= INLINE_BYTES {
        return check_all(&peer, pairs);
    }
    tokio::task::spawn_blocking(move || check_all(&peer, pairs))
        .await
        .map_err(|e| Error::task_failed("verification", e))?
}

fn check_all(peer: &str, pairs: Vec<(Cid, Bytes)>) -> Result<Vec<Parsed>> {
    pairs
        .into_iter()
        .map(|(cid, data)| {
            let blob = Blob::with_cid(cid, data).map_err(|e| match e {
                seedbank_blobstore::Error::HashMismatch { cid } => Error::HashMismatch {
                    peer: peer.to_string(),
                    cid,
                },
                other => Error::protocol_caused(
                    Some(peer.into()),
                    format!("unverifiable blob for {cid}"),
                    other,
                ),
            })?;
            Ok(Parsed::new(blob))
        })
        .collect()
}

fn protocol(peer: &str, reason: String) -> Error {
    Error::Protocol {
        peer: Some(peer.to_string()),
        reason,
        source: None,
    }
}

/// The one way a run stores blobs (fetched from peers, or made from bytes stored here under
/// another codec): through the index with the links already extracted (link rows indexed,
/// named-scope membership recorded), under the run's temp pin, at `Normal` priority, as one
/// staged put that the store splits into lane requests.
///
/// The write runs as a task of its own: dropping a put future cancels the lane requests not
/// started yet, and a session cancelled mid-store (the scope completed, the run failed)
/// must not throw away blobs it fetched and verified.
///
/// # Errors
/// [`Error::Index`] if the lane rejected or failed the write.
pub(crate) async fn store(
    index: &Index,
    scope: &Scope,
    source: &str,
    pin: &TempPin,
    blobs: Vec<Parsed>,
) -> Result<()> {
    if blobs.is_empty() {
        return Ok(());
    }
    let scopes: &[String] = match scope {
        Scope::Named(name) => std::slice::from_ref(name),
        Scope::Dag(_) => &[],
    };
    // Before submission: no lane transaction (nor a collection) sees them unpinned.
    let cids: Vec<Cid> = blobs.iter().map(|p| *p.cid()).collect();
    pin.add(&cids);
    let staged = blobs
        .into_iter()
        .map(|p| index.stage_extracted(p.blob, &p.links, scopes))
        .collect();
    let opts = PutOptions::new(Priority::Normal, source);
    let index = index.clone();
    finish(async move { index.put_staged(staged, opts).await }).await?;
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
        .map_err(|e| Error::task_failed("store write", e))?
        .map_err(Error::from)
}

/// The links of parsed DAG blocks that may be new wants: not identity CIDs (never missing)
/// and not in the run's starting snapshot. Deduplicated, in link order.
pub(crate) fn children(blobs: &[Parsed], haves: &Haves) -> Vec<Cid> {
    let mut seen = HashSet::new();
    blobs
        .iter()
        .flat_map(|p| p.links.links.iter().copied())
        .filter(|c| c.hash().code() != 0x00)
        .filter(|c| seen.insert(ItemId::of(c)) && !haves.contains(c))
        .collect()
}
