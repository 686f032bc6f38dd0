//! One CAR stream of a DAG from a gateway (`?format=car&dag-scope=all`), read block by
//! block: every block must be the root or a link of a block received before it (so only
//! blocks of the requested DAG are accepted), hash to its CID, and fit the block limit;
//! the stream must not end while blocks it linked to are still missing.

use std::collections::HashSet;
use std::time::Instant;

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::Blob;
use seedbank_discovery::{Error, ItemId};
use seedbank_index::car::{CarReader, MAX_CID_BYTES};
use tokio_util::io::StreamReader;

use super::http::{self, Body};

/// Multihash code of the identity hash: such CIDs carry their bytes and are never wanted.
const IDENTITY: u64 = 0x00;

/// What reading the stream gave.
pub(crate) enum Event {
    /// A block of the DAG, verified.
    Block(Cid, Bytes),
    /// The stream ended with every linked block sent.
    End,
    /// The stream is given up without blame (it grew past the link limit): the blocks it
    /// would have brought are fetched otherwise.
    Abandon,
}

/// A CAR stream in progress.
pub(crate) struct DagStream {
    root: Cid,
    reader: CarReader<StreamReader<Body, Bytes>>,
    /// Blocks linked from received ones (or the root) and not received yet.
    pending: HashSet<ItemId>,
    /// Blocks received.
    received: HashSet<ItemId>,
    /// The response said `dups=y`: a block may come again.
    dups: bool,
    opened: Instant,
    max_links: usize,
    max_block: usize,
}

impl DagStream {
    /// Starts reading `body`, the answer to a CAR request for `root`; `content_type` is
    /// the response's. Checks the header names `root`.
    pub async fn start(
        peer: &str,
        root: Cid,
        body: Body,
        content_type: &str,
        max_block: usize,
        max_links: usize,
    ) -> Result<DagStream, Error> {
        let dups = content_type
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("dups=y"));
        let reader = CarReader::new(StreamReader::new(body), max_block + MAX_CID_BYTES)
            .await
            .map_err(|e| car_error(peer, &root, e))?;
        if !reader.roots().contains(&root) {
            return Err(http::lied(
                peer,
                format!("the CAR asked for {root} names other roots"),
            ));
        }
        Ok(DagStream {
            pending: HashSet::from([ItemId::of(&root)]),
            received: HashSet::new(),
            root,
            reader,
            dups,
            opened: Instant::now(),
            max_links,
            max_block,
        })
    }

    /// When the request was answered.
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// True if `cid` is a block of this DAG the stream has still to send.
    pub fn covers(&self, cid: &Cid) -> bool {
        self.pending.contains(&ItemId::of(cid))
    }

    /// The next block, checked and verified.
    ///
    /// # Errors
    /// [`Error::HashMismatch`] for bytes that do not hash to their CID;
    /// [`Error::Protocol`] for a block outside the DAG (or sent twice under `dups=n`) or a
    /// malformed CAR; [`Error::Transport`] for a cut or truncated stream;
    /// [`Error::Timeout`] for a stall.
    pub async fn next(&mut self, peer: &str) -> Result<Event, Error> {
        loop {
            let block = self
                .reader
                .next_block()
                .await
                .map_err(|e| car_error(peer, &self.root, e))?;
            let Some(block) = block else {
                let missing = self.pending.len();
                if missing > 0 {
                    return Err(http::failed(
                        peer,
                        format!(
                            "the CAR of {} ended with {missing} blocks of its DAG not sent (truncated)",
                            self.root
                        ),
                    ));
                }
                return Ok(Event::End);
            };
            let (cid, data) = (block.cid, block.data);
            if data.len() > self.max_block {
                return Err(http::lied(
                    peer,
                    format!(
                        "sent {} bytes for {cid}, over the limit of {}",
                        data.len(),
                        self.max_block
                    ),
                ));
            }
            let id = ItemId::of(&cid);
            let identity = cid.hash().code() == IDENTITY;
            let wanted = self.pending.remove(&id);
            let again = !wanted && self.received.contains(&id);
            let allowed = wanted || identity || (again && self.dups);
            if !allowed {
                let why = if again {
                    format!("sent {cid} twice in a dups=n CAR of {}", self.root)
                } else {
                    format!("sent {cid}, which is not in the DAG of {}", self.root)
                };
                return Err(http::lied(peer, why));
            }
            verify(peer, cid, &data)?;
            if !wanted {
                // An identity block or an allowed duplicate: nothing new.
                continue;
            }
            self.received.insert(id);
            for link in seedbank_index::extract_links(cid.codec(), &data).links {
                if link.hash().code() == IDENTITY {
                    continue;
                }
                let link = ItemId::of(&link);
                if !self.received.contains(&link) {
                    self.pending.insert(link);
                }
            }
            if self.pending.len() + self.received.len() > self.max_links {
                tracing::debug!(root = %self.root, "gateway CAR stream over the link limit");
                return Ok(Event::Abandon);
            }
            return Ok(Event::Block(cid, data));
        }
    }
}

/// Checks `data` hashes to `cid`.
pub(crate) fn verify(peer: &str, cid: Cid, data: &Bytes) -> Result<(), Error> {
    Blob::with_cid(cid, data.clone())
        .map(drop)
        .map_err(|e| match e {
            seedbank_blobstore::Error::HashMismatch { cid } => Error::HashMismatch {
                peer: peer.to_string(),
                cid,
            },
            other => http::lied_caused(peer, format!("unverifiable block {cid}"), other),
        })
}

/// A CAR read error: a stall, a cut body, or a malformed or truncated CAR.
fn car_error(peer: &str, root: &Cid, e: seedbank_index::Error) -> Error {
    match e {
        seedbank_index::Error::CarIo { source, .. } => http::read_error(peer, source),
        other => http::failed_caused(peer, format_args!("bad CAR for {root}"), other),
    }
}
