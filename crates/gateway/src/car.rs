//! CAR responses: a CARv1 streamed block by block from the store in depth-first order
//! (links in order), the blocks that verify the path first, then the terminus's DAG as
//! `dag-scope` and `entity-bytes` ask.
//!
//! Memory is bounded whatever the DAG: the walk holds one frame per level (a level whose
//! links are all taken is dropped before its last child is entered, so a chain costs one
//! frame), fetched blocks stay under a byte budget taken from the stored sizes, and
//! `dups=n` remembers 16 bytes per distinct block sent, up to a configured count.

use std::collections::{HashSet, VecDeque};

use bytes::{Bytes, BytesMut};
use cid::Cid;
use seedbank_blobstore::Store;
use seedbank_index::car::CarWriter;

use crate::blocks::{self, is_identity};
use crate::body::{why, Sink, Stop};
use crate::request::{CarRequest, Scope};
use crate::unixfs::{self, DataType, Node, PbUnixfs, RAW};

/// Blocks up to this size are copied into a shared chunk; larger ones are sent as they are.
const COALESCE_BLOCK: usize = 16 * 1024;
/// A shared chunk is sent once it holds this much.
const CHUNK_BYTES: usize = 64 * 1024;

/// Everything a CAR response needs, decided before the status line was sent.
pub(crate) struct CarJob {
    pub store: Store,
    /// The CID in the header's `roots`.
    pub header_root: Cid,
    /// Blocks that verify the path, in order.
    pub path_blocks: Vec<Cid>,
    pub terminus: Cid,
    /// The terminus's bytes, read while resolving the path.
    pub terminus_block: Bytes,
    /// How the terminus is walked.
    pub mode: Mode,
    pub dups: bool,
    /// Bytes of blocks fetched ahead of the writer.
    pub fetch_budget: usize,
    /// Distinct blocks remembered for `dups=n`.
    pub max_dedup: usize,
    /// Deepest walk.
    pub max_depth: usize,
}

/// Which links of a block the walk follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// None: the block alone.
    Only,
    /// Every link, recursively (`dag-scope=all`).
    All,
    /// Sub-shards of a HAMT directory (its entries are not followed).
    Shards,
    /// The children of a file node holding bytes `[first, last]` of the file; `at` is the
    /// file offset where this node's bytes start.
    File { first: u64, last: u64, at: u64 },
}

/// The walk mode of the terminus for a CAR request, given its block. `Err` carries a
/// 400 message when `entity-bytes` lies wholly past the end of a file.
pub(crate) fn terminus_mode(req: &CarRequest, cid: &Cid, block: &Bytes) -> Result<Mode, String> {
    match req.scope {
        Scope::Block => Ok(Mode::Only),
        Scope::All => Ok(Mode::All),
        Scope::Entity => {
            let node = unixfs::Node::decode(cid, block);
            if let Some(size) = node.file_size() {
                let Some(eb) = req.entity_bytes else {
                    return Ok(match node {
                        Node::Raw(_) => Mode::Only,
                        _ => Mode::File {
                            first: 0,
                            last: u64::MAX,
                            at: 0,
                        },
                    });
                };
                if eb.from >= 0 && eb.from as u64 >= size && size > 0 {
                    return Err(format!(
                        "entity-bytes starts at byte {}, past the end of the {size}-byte file",
                        eb.from
                    ));
                }
                return Ok(match eb.resolve(size) {
                    Some((first, last)) if !matches!(node, Node::Raw(_)) => {
                        Mode::File { first, last, at: 0 }
                    }
                    // A zero-length range is answered as dag-scope=block.
                    _ => Mode::Only,
                });
            }
            Ok(match node.kind() {
                Some(DataType::HamtShard) => Mode::Shards,
                _ => Mode::Only,
            })
        }
    }
}

/// Why a CAR stream stopped early.
enum Abort {
    Stop(Stop),
    /// Text, not an error: it is logged and the client only sees the connection end.
    Fail(String),
}

impl From<Stop> for Abort {
    fn from(s: Stop) -> Self {
        Abort::Stop(s)
    }
}

/// Streams the CAR into `sink`; ends it cleanly only if every block was sent.
pub(crate) async fn produce(job: CarJob, sink: Sink) {
    match run(job, &sink).await {
        Ok(()) => sink.finish().await,
        Err(Abort::Fail(why)) => sink.fail(why).await,
        Err(Abort::Stop(Stop::TimedOut)) => sink.fail("the response took too long".into()).await,
        Err(Abort::Stop(Stop::Gone)) => {}
    }
}

/// The CARv1 header naming `root`.
pub(crate) async fn header(root: &Cid) -> Bytes {
    match CarWriter::new(Vec::new(), std::slice::from_ref(root)).await {
        Ok(w) => match w.finish().await {
            Ok(v) => Bytes::from(v),
            Err(_) => Bytes::new(),
        },
        Err(_) => Bytes::new(),
    }
}

/// One item of a frame: a block to visit, how, and its bytes once fetched.
struct Item {
    cid: Cid,
    mode: Mode,
    fetched: Option<Option<Bytes>>,
}

struct Walk<'a> {
    job: &'a CarJob,
    sink: &'a Sink,
    out: BytesMut,
    seen: HashSet<[u8; 16]>,
    key: [u8; 32],
    /// Bytes fetched ahead and not yet sent, across every frame.
    held: usize,
}

async fn run(job: CarJob, sink: &Sink) -> Result<(), Abort> {
    let mut walk = Walk {
        job: &job,
        sink,
        out: BytesMut::new(),
        seen: HashSet::new(),
        key: rand::random(),
        held: 0,
    };
    walk.out.extend_from_slice(&header(&job.header_root).await);
    for cid in &job.path_blocks {
        if walk.first_visit(cid)? {
            let data = blocks::get(&job.store, cid)
                .await
                .map_err(|e| Abort::Fail(why(&e)))?;
            walk.emit(cid, data).await?;
        }
    }
    let mut stack: Vec<VecDeque<Item>> = vec![VecDeque::from([Item {
        cid: job.terminus,
        mode: job.mode,
        fetched: Some(Some(job.terminus_block.clone())),
    }])];
    while let Some(frame) = stack.last_mut() {
        let Some(item) = frame.front() else {
            stack.pop();
            continue;
        };
        let skippable = walk.skippable(item);
        if item.fetched.is_none() && !skippable {
            walk.fetch_ahead(frame).await?;
        }
        let Some(item) = frame.pop_front() else {
            continue;
        };
        if let Some(Some(data)) = &item.fetched {
            walk.held = walk.held.saturating_sub(data.len());
        }
        if frame.is_empty() {
            // Taken all of this level's links: drop it before going down (a chain of
            // single links keeps one frame).
            stack.pop();
        }
        if skippable {
            continue;
        }
        let data = item
            .fetched
            .flatten()
            .ok_or_else(|| Abort::Fail(format!("block {} is not available", item.cid)))?;
        let children = children(&item.cid, &data, item.mode)?;
        if walk.first_visit(&item.cid)? {
            walk.emit(&item.cid, data).await?;
        }
        if !children.is_empty() {
            if stack.len() >= job.max_depth {
                return Err(Abort::Fail(format!(
                    "the DAG under {} is deeper than {} levels",
                    job.terminus, job.max_depth
                )));
            }
            stack.push(children);
        }
    }
    walk.flush().await?;
    Ok(())
}

impl Walk<'_> {
    fn dedup_key(&self, cid: &Cid) -> [u8; 16] {
        let h = blake3::keyed_hash(&self.key, &cid.to_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        k
    }

    /// True when `item` needs neither sending nor walking: with `dups=n`, a block sent
    /// before whose subtree was walked then (or that has none).
    fn skippable(&self, item: &Item) -> bool {
        if self.job.dups {
            return false;
        }
        let subtree_done = !matches!(item.mode, Mode::File { .. }) || item.cid.codec() == RAW;
        subtree_done && (is_identity(&item.cid) || self.seen.contains(&self.dedup_key(&item.cid)))
    }

    /// Records `cid` as sent; false if it must not be sent (identity, or a duplicate
    /// under `dups=n`).
    fn first_visit(&mut self, cid: &Cid) -> Result<bool, Abort> {
        if is_identity(cid) {
            return Ok(false);
        }
        if self.job.dups {
            return Ok(true);
        }
        if self.seen.len() >= self.job.max_dedup {
            return Err(Abort::Fail(format!(
                "more than {} distinct blocks: ask with dups=y",
                self.job.max_dedup
            )));
        }
        Ok(self.seen.insert(self.dedup_key(cid)))
    }

    /// Fetches the frame's next blocks that have not been fetched, within the budget.
    async fn fetch_ahead(&mut self, frame: &mut VecDeque<Item>) -> Result<(), Abort> {
        let pending: Vec<usize> = frame
            .iter()
            .enumerate()
            .filter(|(_, it)| it.fetched.is_none() && !self.skippable(it))
            .map(|(i, _)| i)
            .take(blocks::BATCH_BLOCKS)
            .collect();
        let cids: Vec<Cid> = pending.iter().map(|i| frame[*i].cid).collect();
        // What upper levels hold ahead counts too: past the budget, one block at a time.
        let room = self.job.fetch_budget.saturating_sub(self.held);
        let n = if room == 0 {
            1
        } else {
            blocks::batch_len(&self.job.store, &cids, room).await
        };
        let got = blocks::get_many(&self.job.store, &cids[..n])
            .await
            .map_err(|e| Abort::Fail(why(&e)))?;
        for (i, data) in pending.into_iter().zip(got) {
            self.held += data.as_ref().map_or(0, Bytes::len);
            frame[i].fetched = Some(data);
        }
        Ok(())
    }

    /// Appends one CAR section.
    async fn emit(&mut self, cid: &Cid, data: Bytes) -> Result<(), Abort> {
        let cid_bytes = cid.to_bytes();
        let mut varint = unsigned_varint::encode::u64_buffer();
        let prefix =
            unsigned_varint::encode::u64((cid_bytes.len() + data.len()) as u64, &mut varint);
        self.out.extend_from_slice(prefix);
        self.out.extend_from_slice(&cid_bytes);
        if data.len() >= COALESCE_BLOCK {
            self.flush().await?;
            self.sink.send(data).await?;
        } else {
            self.out.extend_from_slice(&data);
            if self.out.len() >= CHUNK_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Abort> {
        if !self.out.is_empty() {
            let chunk = self.out.split().freeze();
            self.sink.send(chunk).await?;
        }
        Ok(())
    }
}

/// The links of `cid` the walk follows in `mode`, in order.
fn children(cid: &Cid, data: &Bytes, mode: Mode) -> Result<VecDeque<Item>, Abort> {
    let item = |cid, mode| Item {
        cid,
        mode,
        fetched: None,
    };
    Ok(match mode {
        Mode::Only => VecDeque::new(),
        Mode::All => seedbank_index::extract_links(cid.codec(), data)
            .links
            .into_iter()
            .map(|c| item(c, Mode::All))
            .collect(),
        Mode::Shards => match Node::decode(cid, data) {
            Node::Pb(PbUnixfs {
                links,
                data: Some(d),
            }) if d.kind == DataType::HamtShard => {
                let width = unixfs::shard_width(&d).unwrap_or(usize::MAX);
                links
                    .into_iter()
                    .filter(|l| l.name.as_ref().is_some_and(|n| n.len() == width))
                    .map(|l| item(l.cid, Mode::Shards))
                    .collect()
            }
            _ => VecDeque::new(),
        },
        Mode::File { first, last, at } => match Node::decode(cid, data) {
            Node::Raw(_) => VecDeque::new(),
            Node::Pb(PbUnixfs {
                links,
                data: Some(d),
            }) if matches!(d.kind, DataType::File | DataType::Raw) => {
                if links.len() != d.blocksizes.len() {
                    return Err(Abort::Fail(format!(
                        "file node {cid} has {} links and {} blocksizes",
                        links.len(),
                        d.blocksizes.len()
                    )));
                }
                let mut off = at.saturating_add(d.data.as_ref().map_or(0, |b| b.len() as u64));
                let mut out = VecDeque::new();
                for (l, size) in links.into_iter().zip(d.blocksizes) {
                    let end = off.saturating_add(size);
                    if off > last {
                        break;
                    }
                    if end > first {
                        out.push_back(item(
                            l.cid,
                            Mode::File {
                                first,
                                last,
                                at: off,
                            },
                        ));
                    }
                    off = end;
                }
                out
            }
            _ => {
                return Err(Abort::Fail(format!(
                    "{cid} is not a UnixFS file node inside a file"
                )))
            }
        },
    })
}
