//! Files: fixed-size chunks, leaves, and the balanced tree above them, built as the chunks
//! stream in.
//!
//! The tree is the reference importers' `balanced` layout: leaves are grouped `max_links`
//! at a time under parents, parents `max_links` at a time under grandparents, and so on
//! until one node is left. A file of one chunk is that chunk's leaf itself. Here each level
//! keeps only its unfinished group, and a group is turned into a parent the moment it is
//! full, so memory is one partial group per level, never the file.

use bytes::Bytes;
use seedbank_blobstore::Blob;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::Result;
use crate::node::{link, pb_block, raw_block, Child};
use crate::profile::Profile;
use crate::unixfs::{Data, DataType};

/// Reads up to `size` bytes: a full chunk unless the reader ends first.
pub(crate) async fn read_chunk<R: AsyncRead + Unpin>(
    reader: &mut R,
    size: usize,
) -> std::io::Result<Bytes> {
    // `size` is the profile's chunk size, never a number from the input. Read into spare
    // capacity (no zeroing: that was 29% of a small-file add's CPU), never past `size`.
    let mut buf = Vec::with_capacity(size);
    while buf.len() < size {
        match reader.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if buf.len() < size {
        // A short (last or only) chunk keeps only its bytes, not a chunk-sized allocation:
        // a directory of small files held 1 MiB per file (1 GiB RSS for 10,000).
        buf.shrink_to_fit();
    }
    Ok(Bytes::from(buf))
}

/// The leaf block of one chunk.
pub(crate) fn leaf(profile: Profile, chunk: Bytes) -> (Blob, Child) {
    let file_size = chunk.len() as u64;
    let blob = if profile.raw_leaves() {
        raw_block(chunk)
    } else {
        let mut data = Data::new(DataType::File);
        data.filesize = Some(file_size);
        if !chunk.is_empty() {
            data.data = Some(chunk);
        }
        pb_block(Vec::new(), &data, profile.cid_version())
    };
    let child = Child {
        cid: *blob.cid(),
        file_size,
        tsize: blob.len() as u64,
    };
    (blob, child)
}

/// The balanced tree over a file's leaves, fed leaf by leaf.
pub(crate) struct Balanced {
    profile: Profile,
    /// `levels[0]` holds leaves, `levels[1]` parents of leaves, ...: each level's group
    /// not yet full.
    levels: Vec<Vec<Child>>,
    leaves: u64,
}

impl Balanced {
    pub fn new(profile: Profile) -> Self {
        Balanced {
            profile,
            levels: Vec::new(),
            leaves: 0,
        }
    }

    /// Adds the next leaf; parents completed by it are pushed to `out`.
    pub fn push(&mut self, leaf: Child, out: &mut Vec<Blob>) -> Result<()> {
        self.leaves += 1;
        self.push_at(0, leaf, out)
    }

    fn push_at(&mut self, level: usize, child: Child, out: &mut Vec<Blob>) -> Result<()> {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push(child);
        if self.levels[level].len() >= self.profile.max_links() {
            let group = std::mem::take(&mut self.levels[level]);
            let parent = self.parent(group, out)?;
            self.push_at(level + 1, parent, out)?;
        }
        Ok(())
    }

    /// Closes the tree: returns the root (the only leaf of a one-chunk file).
    pub fn finish(mut self, out: &mut Vec<Blob>) -> Result<Child> {
        if self.leaves == 0 {
            let (blob, empty) = leaf(self.profile, Bytes::new());
            out.push(blob);
            return Ok(empty);
        }
        if self.leaves == 1 {
            if let Some(leaf) = self.levels.first_mut().and_then(Vec::pop) {
                return Ok(leaf);
            }
        }
        let mut level = 0;
        while level < self.levels.len() {
            let group = std::mem::take(&mut self.levels[level]);
            let higher = self.levels[level + 1..].iter().any(|l| !l.is_empty());
            // A level's lone node is the root once nothing waits above it; leaves always
            // get a parent (unless the file is one chunk, above).
            if level > 0 && group.len() == 1 && !higher {
                return Ok(group.into_iter().next().expect("one node"));
            }
            if !group.is_empty() {
                let parent = self.parent(group, out)?;
                self.push_at(level + 1, parent, out)?;
            }
            level += 1;
        }
        // Not reached: the highest level always ends the loop holding one node.
        Err(crate::error::Error::Unsupported {
            path: std::path::PathBuf::new(),
            reason: "the file tree did not close",
        })
    }

    /// A File node over `children` (children without content are left out, as the
    /// importers do).
    fn parent(&self, children: Vec<Child>, out: &mut Vec<Blob>) -> Result<Child> {
        let mut data = Data::new(DataType::File);
        let mut links = Vec::with_capacity(children.len());
        let (mut file_size, mut tsize) = (0u64, 0u64);
        for child in children.iter().filter(|c| c.file_size > 0) {
            data.blocksizes.push(child.file_size);
            links.push(link(String::new(), child));
            file_size += child.file_size;
            tsize += child.tsize;
        }
        data.filesize = Some(file_size);
        let blob = pb_block(links, &data, self.profile.cid_version());
        let parent = Child {
            cid: *blob.cid(),
            file_size,
            tsize: tsize + blob.len() as u64,
        };
        out.push(blob);
        Ok(parent)
    }
}
