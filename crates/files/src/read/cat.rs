//! A file's bytes as a stream, optionally a byte range of them.
//!
//! The reader walks the file's tree depth first. At each node it skips the children that
//! end before the range and stops at the first that starts after it, by the node's
//! `blocksizes`, so only blocks holding wanted bytes (and the nodes above them) are read.
//! Siblings are fetched a few at a time in one store round trip while the bytes held ahead
//! stay under [`PREFETCH_BYTES`]. Every child must have exactly the size its parent says,
//! or the read fails as corrupt instead of returning shifted bytes.

use std::collections::VecDeque;

use bytes::Bytes;
use cid::Cid;
use futures_util::Stream;
use seedbank_blobstore::Store;

use super::{fetch_many, present, Fetched, MAX_DEPTH};
use crate::error::{Error, Result};
use crate::node::{file_layout, Node};
use crate::unixfs::{Data, DataType};

/// Siblings fetched in one round trip.
const PREFETCH_BLOCKS: usize = 8;
/// Bytes of fetched blocks held ahead of the reader, across all levels, before it falls
/// back to one block per round trip.
const PREFETCH_BYTES: usize = 16 * 1024 * 1024;

/// A node whose children are being read.
struct Frame {
    /// `(child, its file bytes)`, in order.
    children: Vec<(Cid, u64)>,
    /// Index of the next child to read.
    next: usize,
    /// File offset where `children[next]` starts.
    offset: u64,
    /// Blocks already fetched for `children[next..]`, in order.
    fetched: VecDeque<Fetched>,
}

/// A file's bytes (or a range of them), read block by block as they are asked for.
///
/// Returned by [`Files::cat`](crate::Files::cat). Every block is verified against its CID
/// by the store before its bytes are returned. A missing or corrupt block ends the stream
/// with an error naming it, after every byte before it was returned.
pub struct FileReader {
    store: Store,
    root: Cid,
    size: u64,
    /// The range still to deliver: `[start, end)`.
    start: u64,
    end: u64,
    stack: Vec<Frame>,
    /// Bytes held in `Frame::fetched` across the stack.
    held: usize,
    /// A chunk ready before the stack is walked (the root's own bytes).
    ready: Option<Bytes>,
    failed: bool,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("root", &self.root)
            .field("size", &self.size)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish()
    }
}

impl FileReader {
    /// Opens the file `root` for reading `length` bytes (or to the end) from `offset`.
    pub(crate) async fn open(
        store: Store,
        root: Cid,
        offset: u64,
        length: Option<u64>,
    ) -> Result<FileReader> {
        let node = super::load(&store, &root).await?;
        let kind = node.kind();
        let size = match node.file_size(&root)? {
            Some(size) if kind == crate::Kind::File => size,
            _ => {
                return Err(Error::NotAFile {
                    cid: root,
                    found: kind,
                })
            }
        };
        if offset > size {
            return Err(Error::RangeNotSatisfiable { offset, size });
        }
        let end = length.map_or(size, |l| offset.saturating_add(l).min(size));
        let mut reader = FileReader {
            store,
            root,
            size,
            start: offset,
            end,
            stack: Vec::new(),
            held: 0,
            ready: None,
            failed: false,
        };
        reader.ready = reader.enter(&root, node, 0)?;
        Ok(reader)
    }

    /// The whole file's size in bytes.
    pub fn file_size(&self) -> u64 {
        self.size
    }

    /// Bytes this reader returns in all: the range's length.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's root CID.
    pub fn root(&self) -> &Cid {
        &self.root
    }

    /// The next bytes of the range (at most one block's worth), or `None` at its end.
    ///
    /// # Errors
    /// [`Error::MissingBlock`] naming the first block that is not stored,
    /// [`Error::Read`] for a block that fails verification, [`Error::Corrupt`] for a node
    /// that is not a valid file node or whose sizes disagree with its parent's,
    /// [`Error::TooDeep`]. After an error the reader returns `None`.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        if self.failed {
            return Ok(None);
        }
        let next = self.advance().await;
        if next.is_err() {
            self.failed = true;
            self.stack.clear();
        }
        next
    }

    /// The reader as a stream of chunks.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes>> + Send {
        futures_util::stream::try_unfold(self, |mut reader| async move {
            Ok(reader.next_chunk().await?.map(|chunk| (chunk, reader)))
        })
    }

    async fn advance(&mut self) -> Result<Option<Bytes>> {
        if let Some(chunk) = self.ready.take() {
            return Ok(Some(chunk));
        }
        loop {
            let (start, end) = (self.start, self.end);
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            // Children wholly before the range are skipped unread.
            while frame.next < frame.children.len()
                && frame.fetched.is_empty()
                && frame.offset + frame.children[frame.next].1 <= start
            {
                frame.offset += frame.children[frame.next].1;
                frame.next += 1;
            }
            if frame.next >= frame.children.len() || frame.offset >= end {
                let done = self.stack.pop().expect("a frame");
                self.held -= held_bytes(&done.fetched);
                continue;
            }
            if frame.fetched.is_empty() {
                self.fetch_ahead().await?;
            }
            let frame = self.stack.last_mut().expect("a frame");
            let fetched = frame.fetched.pop_front().expect("fetched above");
            let (cid, size) = frame.children[frame.next];
            let at = frame.offset;
            frame.offset += size;
            frame.next += 1;
            let bytes = present(&cid, fetched)?;
            self.held -= bytes.len();
            let node = Node::decode(&cid, bytes)?;
            match node.file_size(&cid)? {
                Some(s) if s == size && node.kind() == crate::Kind::File => {}
                found => {
                    return Err(Error::corrupt(
                        &cid,
                        format!("its parent says {size} file bytes; it holds {found:?}"),
                    ))
                }
            }
            if let Some(chunk) = self.enter(&cid, node, at)? {
                return Ok(Some(chunk));
            }
        }
    }

    /// Takes in a file node starting at file offset `at`: returns its own bytes within the
    /// range and pushes its children, if any fall in the range.
    fn enter(&mut self, cid: &Cid, node: Node, at: u64) -> Result<Option<Bytes>> {
        let (own, children) = match node {
            Node::Raw(bytes) => (bytes, Vec::new()),
            Node::Pb { links, data } => {
                file_layout(cid, &data, links.len())?;
                let Data {
                    kind,
                    data: inline,
                    blocksizes,
                    ..
                } = data;
                if !matches!(kind, DataType::File | DataType::Raw) {
                    return Err(Error::corrupt(cid, "a file's child is not a file node"));
                }
                let children = links.into_iter().map(|l| l.cid).zip(blocksizes).collect();
                (inline.unwrap_or_default(), children)
            }
        };
        let own_end = at + own.len() as u64;
        let chunk = if own_end > self.start && at < self.end {
            let from = self.start.saturating_sub(at) as usize;
            let to = (self.end.min(own_end) - at) as usize;
            Some(own.slice(from..to))
        } else {
            None
        };
        if !children.is_empty() && own_end < self.end {
            if self.stack.len() >= MAX_DEPTH {
                return Err(Error::TooDeep {
                    cid: *cid,
                    limit: MAX_DEPTH,
                });
            }
            self.stack.push(Frame {
                children,
                next: 0,
                offset: own_end,
                fetched: VecDeque::new(),
            });
        }
        Ok(chunk.filter(|c| !c.is_empty()))
    }

    /// Fetches the top frame's next children that fall in the range: several in one round
    /// trip while the bytes held ahead are under budget, else one.
    async fn fetch_ahead(&mut self) -> Result<()> {
        let want = if self.held < PREFETCH_BYTES {
            PREFETCH_BLOCKS
        } else {
            1
        };
        let end = self.end;
        let frame = self.stack.last_mut().expect("a frame");
        let mut cids = Vec::with_capacity(want);
        let mut offset = frame.offset;
        for (cid, size) in frame.children[frame.next..].iter().take(want) {
            if offset >= end {
                break;
            }
            cids.push(*cid);
            offset += size;
        }
        let fetched = fetch_many(&self.store, &cids).await?;
        let frame = self.stack.last_mut().expect("a frame");
        self.held += held_bytes(&fetched);
        frame.fetched.extend(fetched);
        Ok(())
    }
}

fn held_bytes<'a>(fetched: impl IntoIterator<Item = &'a Fetched>) -> usize {
    fetched
        .into_iter()
        .map(|f| {
            f.as_ref()
                .ok()
                .and_then(|b| b.as_ref())
                .map_or(0, Bytes::len)
        })
        .sum()
}
