//! Reading files on the blocking pool, many reads per hand-off.
//!
//! Every `tokio::fs` call is one hand-off to the blocking pool and one wake-up back: a small
//! file cost three (open, read, the read that finds the end), and context switches were
//! 40% of a 10,000-file add's CPU. Here one blocking task reads and hashes a group of small
//! files whole, or several chunks of a large file, and returns their blocks; the next group
//! is read while the last one's blocks are written. Hashing happens in the same task, off
//! the runtime's threads.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use seedbank_blobstore::Blob;
use tokio::task::JoinHandle;

use super::file::{leaf, Balanced};
use super::io_error;
use crate::error::{Error, Result};
use crate::node::Child;
use crate::profile::Profile;

/// A blocking task returns once it has read this many bytes ...
const GROUP_BYTES: usize = 4 * 1024 * 1024;
/// ... or this many small files.
const GROUP_FILES: usize = 256;

/// Reads up to `size` bytes from `file`: a full chunk unless the file ends first. The
/// buffer is allocated at the chunk size (`size` is the profile's, never a number from the
/// input) and read into without zeroing; a short chunk keeps only its bytes.
fn read_chunk(file: &mut File, size: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(size);
    file.take(size as u64).read_to_end(&mut buf)?;
    if buf.len() < size {
        buf.shrink_to_fit();
    }
    Ok(buf)
}

/// Consecutive leaves of one file, read and hashed by one blocking task.
pub(super) struct Chunks {
    /// Each chunk's leaf block and what its parent records.
    pub leaves: Vec<(Blob, Child)>,
    /// The file ended within this group.
    pub end: bool,
}

/// Reads a large file's chunks a group at a time, one group ahead of the caller.
pub(super) struct ChunkReader {
    path: Arc<Path>,
    next: Option<JoinHandle<(File, Result<Chunks>)>>,
}

impl ChunkReader {
    /// Opens `path` and starts reading its first group.
    pub async fn open(path: &Path, profile: Profile) -> Result<ChunkReader> {
        let path: Arc<Path> = path.into();
        let file = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || File::open(&path).map_err(|e| io_error(&path, e)))
                .await
                .map_err(Error::Task)??
        };
        let mut reader = ChunkReader { path, next: None };
        reader.start(file, profile);
        Ok(reader)
    }

    fn start(&mut self, mut file: File, profile: Profile) {
        let path = self.path.clone();
        self.next = Some(tokio::task::spawn_blocking(move || {
            let chunks = read_chunks(&mut file, &path, profile);
            (file, chunks)
        }));
    }

    /// The next group of leaves (empty with `end` once the file is read); the group after
    /// it is read meanwhile.
    pub async fn next(&mut self, profile: Profile) -> Result<Chunks> {
        let Some(task) = self.next.take() else {
            return Ok(Chunks {
                leaves: Vec::new(),
                end: true,
            });
        };
        let (file, chunks) = task.await.map_err(Error::Task)?;
        let chunks = chunks?;
        if !chunks.end {
            self.start(file, profile);
        }
        Ok(chunks)
    }
}

impl Drop for ChunkReader {
    /// A read ahead that nobody will take finishes its group and is dropped (a blocking
    /// task cannot be stopped midway); its file closes with it.
    fn drop(&mut self) {
        if let Some(task) = self.next.take() {
            task.abort();
        }
    }
}

/// Reads chunks until about [`GROUP_BYTES`] or the end of the file.
fn read_chunks(file: &mut File, path: &Path, profile: Profile) -> Result<Chunks> {
    let size = profile.chunk_size();
    let mut leaves = Vec::new();
    let mut bytes = 0;
    loop {
        let chunk = read_chunk(file, size).map_err(|e| io_error(path, e))?;
        let n = chunk.len();
        if n > 0 {
            leaves.push(leaf(profile, Bytes::from(chunk)));
            bytes += n;
        }
        if n < size {
            return Ok(Chunks { leaves, end: true });
        }
        if bytes >= GROUP_BYTES {
            return Ok(Chunks { leaves, end: false });
        }
    }
}

/// A small file read whole: its blocks (its leaf, or the empty file's) and its root.
pub(super) struct SmallFile {
    /// Blocks to write.
    pub blocks: Vec<Blob>,
    /// The file's root (its only leaf).
    pub root: Child,
    /// Bytes read.
    pub bytes: u64,
}

/// What the group reader found for one file.
pub(super) enum FileRead {
    /// Read whole: at most one chunk.
    Small(SmallFile),
    /// Larger than one chunk (also when it grew while read): stream it with a
    /// [`ChunkReader`].
    Large,
}

type Group = Vec<Result<FileRead>>;

/// Reads the regular files of one directory, in order, a group per blocking task and one
/// group ahead of the caller.
pub(super) struct SmallFiles {
    paths: Arc<[PathBuf]>,
    profile: Profile,
    /// Index of the first file not yet handed to a task.
    sent: usize,
    ready: std::collections::VecDeque<Result<FileRead>>,
    next: Option<JoinHandle<Group>>,
}

impl SmallFiles {
    /// Starts reading `paths` (the directory's regular files, in the order they are asked
    /// for).
    pub fn new(paths: Vec<PathBuf>, profile: Profile) -> SmallFiles {
        let mut files = SmallFiles {
            paths: paths.into(),
            profile,
            sent: 0,
            ready: Default::default(),
            next: None,
        };
        files.start();
        files
    }

    fn start(&mut self) {
        if self.sent >= self.paths.len() {
            return;
        }
        let (paths, from, profile) = (self.paths.clone(), self.sent, self.profile);
        let until = (from + GROUP_FILES).min(paths.len());
        self.next = Some(tokio::task::spawn_blocking(move || {
            read_group(&paths[from..until], profile)
        }));
    }

    /// The next file, in the order of the paths given.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; after an error the reader has nothing more.
    pub async fn next(&mut self) -> Result<FileRead> {
        if self.ready.is_empty() {
            let task = self.next.take().ok_or(Error::Unsupported {
                path: PathBuf::new(),
                reason: "more files asked for than listed",
            })?;
            let group = task.await.map_err(Error::Task)?;
            self.sent += group.len();
            self.ready.extend(group);
            self.start();
        }
        self.ready.pop_front().ok_or(Error::Unsupported {
            path: PathBuf::new(),
            reason: "an empty group of files",
        })?
    }
}

impl Drop for SmallFiles {
    fn drop(&mut self) {
        if let Some(task) = self.next.take() {
            task.abort();
        }
    }
}

/// Reads files of `paths` from the first until about [`GROUP_BYTES`] are read, a file
/// fails (its error ends the group) or a file is larger than one chunk (it ends the group
/// too, so the caller streams it before the next group is read). At least one file.
fn read_group(paths: &[PathBuf], profile: Profile) -> Group {
    let mut group = Vec::new();
    let mut bytes = 0u64;
    for path in paths {
        let read = read_small(path, profile);
        let stop = match &read {
            Ok(FileRead::Small(file)) => {
                bytes += file.bytes;
                bytes >= GROUP_BYTES as u64
            }
            Ok(FileRead::Large) | Err(_) => true,
        };
        group.push(read);
        if stop {
            break;
        }
    }
    group
}

/// Reads `path` whole if it holds at most one chunk.
fn read_small(path: &Path, profile: Profile) -> Result<FileRead> {
    let size = profile.chunk_size();
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    if len > size as u64 {
        return Ok(FileRead::Large);
    }
    // `len` is at most one chunk here. One byte more than a chunk tells a file that grew
    // since its size was read.
    let mut buf = Vec::with_capacity(len as usize);
    file.take(size as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(path, e))?;
    if buf.len() > size {
        return Ok(FileRead::Large);
    }
    let bytes = buf.len() as u64;
    let mut tree = Balanced::new(profile);
    let mut blocks = Vec::new();
    if !buf.is_empty() {
        let (blob, child) = leaf(profile, Bytes::from(buf));
        blocks.push(blob);
        tree.push(child, &mut blocks)?;
    }
    let root = tree.finish(&mut blocks)?;
    Ok(FileRead::Small(SmallFile {
        blocks,
        root,
        bytes,
    }))
}
