//! Adding files and directories: read, chunk, hash, build the DAG, write it in batches.

mod dir;
mod file;
mod read;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::{Blob, Priority, PutOptions};
use seedbank_index::IndexPutOptions;
use tokio::io::AsyncRead;

use crate::error::{Error, Result};
use crate::node::{pb_block, Child};
use crate::unixfs::{Data, DataType};
use crate::{Files, Kind, Profile};

use file::{leaf, read_chunk, Balanced};
use read::ChunkReader;
use writer::BlockWriter;

/// Called with the number of file bytes read since the previous call.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// Options of [`Files::add_reader`] and [`Files::add_path`].
#[derive(Clone)]
pub struct AddOptions {
    /// The CID profile (default [`Profile::UnixfsV1_2025`]).
    pub profile: Profile,
    /// Pin the root under this name (replacing a pin of that name) before the add returns.
    pub pin: Option<String>,
    /// Include entries whose names start with `.` when adding a directory (default false,
    /// as IPIP-499's profiles say; a hidden path given to [`Files::add_path`] itself is
    /// always added).
    pub hidden: bool,
    /// Priority class and source of the writes (default `Normal`, source `"files"`).
    pub put: PutOptions,
    /// Told how many bytes were read, after each chunk.
    pub progress: Option<ProgressFn>,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            profile: Profile::default(),
            pin: None,
            hidden: false,
            put: PutOptions::new(Priority::Normal, "files"),
            progress: None,
        }
    }
}

impl fmt::Debug for AddOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddOptions")
            .field("profile", &self.profile)
            .field("pin", &self.pin)
            .field("hidden", &self.hidden)
            .field("put", &self.put)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl AddOptions {
    /// Default options with `profile`.
    pub fn new(profile: Profile) -> Self {
        AddOptions {
            profile,
            ..Default::default()
        }
    }

    /// Pins the root under `name`.
    pub fn pin(mut self, name: impl Into<String>) -> Self {
        self.pin = Some(name.into());
        self
    }
}

/// One file, directory or symlink an add stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedEntry {
    /// Path relative to what was added, `/`-separated; `""` for the root itself.
    pub path: String,
    /// Its CID.
    pub cid: Cid,
    /// What it is.
    pub kind: Kind,
    /// Its cumulative size: every block under it, its own included (the `Tsize` a parent
    /// records).
    pub dag_size: u64,
}

/// What an add stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    /// The root CID.
    pub root: Cid,
    /// Every file, directory and symlink, children before their directory, the root last.
    pub entries: Vec<AddedEntry>,
    /// File bytes read.
    pub bytes: u64,
    /// Blocks written (with repeats: a block that occurs twice is written twice).
    pub blocks: u64,
}

/// One add in progress: the profile, the writer (holding the temp pin) and what was added.
struct Adder {
    profile: Profile,
    hidden: bool,
    pin: Option<String>,
    progress: Option<ProgressFn>,
    writer: BlockWriter,
    entries: Vec<AddedEntry>,
    bytes: u64,
}

impl Files {
    /// Adds the bytes of `reader` as one file; its entry's path is `""`.
    ///
    /// The reader is read one chunk at a time; blocks are written in batches while later
    /// chunks are read, so memory stays a few batches whatever the size. Every block is
    /// held by a temp pin until the root is committed (and pinned, with
    /// [`AddOptions::pin`]).
    ///
    /// # Errors
    /// [`Error::Io`] if the reader fails, [`Error::Write`] if the store refuses a write,
    /// [`Error::ChunkTooLarge`] if the store's blob limit is below the profile's chunks.
    pub async fn add_reader<R: AsyncRead + Unpin + Send>(
        &self,
        reader: R,
        opts: &AddOptions,
    ) -> Result<Added> {
        let mut adder = self.adder(opts)?;
        let root = adder.file(reader, Path::new("-")).await?;
        adder.entry(String::new(), &root, Kind::File);
        adder.finish(root.cid).await
    }

    /// Adds a file, a symlink (kept as a link, not followed) or a directory with everything
    /// in it (without hidden entries unless [`AddOptions::hidden`]).
    ///
    /// # Errors
    /// As [`Files::add_reader`], and [`Error::Io`] for a path that cannot be read,
    /// [`Error::Unsupported`] for a name that is not UTF-8 or a device, socket or FIFO.
    pub async fn add_path(&self, path: impl AsRef<Path>, opts: &AddOptions) -> Result<Added> {
        let path = path.as_ref();
        let meta = tokio::fs::symlink_metadata(path)
            .await
            .map_err(|e| io_error(path, e))?;
        let mut adder = self.adder(opts)?;
        let root = adder.path(path, meta.file_type(), String::new()).await?;
        adder.finish(root.child.cid).await
    }

    fn adder(&self, opts: &AddOptions) -> Result<Adder> {
        let (chunk, max) = (
            opts.profile.chunk_size(),
            self.index.store().config().max_blob_size,
        );
        // A dag-pb leaf wraps its chunk in a few bytes of framing.
        if chunk + 64 > max {
            return Err(Error::ChunkTooLarge { chunk, max });
        }
        let put = IndexPutOptions {
            put: opts.put.clone(),
            scopes: Vec::new(),
            temp_pin: None,
        }
        .temp_pin(&self.index.temp_pin());
        Ok(Adder {
            profile: opts.profile,
            hidden: opts.hidden,
            pin: opts.pin.clone(),
            progress: opts.progress.clone(),
            writer: BlockWriter::new(self.index.clone(), put),
            entries: Vec::new(),
            bytes: 0,
        })
    }
}

/// A child of a directory being added.
struct Added1 {
    child: Child,
    /// True when the importers count this child in a flat directory's size estimate:
    /// files, symlinks and directories with nothing in them (see `dir.rs`).
    counted: bool,
}

impl Adder {
    /// Adds whatever `path` is.
    async fn path(&mut self, path: &Path, kind: std::fs::FileType, rel: String) -> Result<Added1> {
        if kind.is_dir() {
            return self.dir(path, rel).await;
        }
        let (child, kind) = if kind.is_file() {
            (self.file_at(path).await?, Kind::File)
        } else if kind.is_symlink() {
            (self.symlink(path).await?, Kind::Symlink)
        } else {
            return Err(Error::Unsupported {
                path: path.into(),
                reason: "not a file, directory or symlink",
            });
        };
        self.entry(rel, &child, kind);
        Ok(Added1 {
            child,
            counted: true,
        })
    }

    /// Streams one file into leaves and its balanced tree; returns its root.
    async fn file<R: AsyncRead + Unpin>(&mut self, mut reader: R, path: &Path) -> Result<Child> {
        let size = self.profile.chunk_size();
        let mut tree = Balanced::new(self.profile);
        let mut blocks = Vec::new();
        loop {
            let chunk = read_chunk(&mut reader, size)
                .await
                .map_err(|e| io_error(path, e))?;
            let n = chunk.len();
            if n > 0 {
                let (blob, child) = leaf(self.profile, chunk);
                blocks.push(blob);
                tree.push(child, &mut blocks)?;
                self.writer.push(blocks.drain(..)).await?;
                self.read(n as u64);
            }
            if n < size {
                break;
            }
        }
        let root = tree.finish(&mut blocks)?;
        self.writer.push(blocks).await?;
        Ok(root)
    }

    /// Streams the file at `path` into leaves and its balanced tree, reading and hashing a
    /// few chunks per blocking task (see `read.rs`); returns its root.
    async fn file_at(&mut self, path: &Path) -> Result<Child> {
        let mut tree = Balanced::new(self.profile);
        let mut blocks = Vec::new();
        let mut reader = ChunkReader::open(path, self.profile).await?;
        loop {
            let chunks = reader.next(self.profile).await?;
            for (blob, child) in chunks.leaves {
                let n = child.file_size;
                blocks.push(blob);
                tree.push(child, &mut blocks)?;
                self.writer.push(blocks.drain(..)).await?;
                self.read(n);
            }
            if chunks.end {
                break;
            }
        }
        let root = tree.finish(&mut blocks)?;
        self.writer.push(blocks).await?;
        Ok(root)
    }

    /// A symlink node holding the link's target, as it is (not resolved).
    async fn symlink(&mut self, path: &Path) -> Result<Child> {
        let target = tokio::fs::read_link(path)
            .await
            .map_err(|e| io_error(path, e))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|_| Error::Unsupported {
                path: path.into(),
                reason: "symlink target is not UTF-8",
            })?;
        let mut data = Data::new(DataType::Symlink);
        if !target.is_empty() {
            data.data = Some(Bytes::from(target));
        }
        let blob = pb_block(Vec::new(), &data, self.profile.cid_version());
        self.single(blob).await
    }

    /// Writes a block that is a whole entry by itself.
    async fn single(&mut self, blob: Blob) -> Result<Child> {
        let child = Child {
            cid: *blob.cid(),
            file_size: 0,
            tsize: blob.len() as u64,
        };
        self.writer.push([blob]).await?;
        Ok(child)
    }

    fn read(&mut self, n: u64) {
        self.bytes += n;
        if let Some(progress) = &self.progress {
            progress(n);
        }
    }

    fn entry(&mut self, path: String, child: &Child, kind: Kind) {
        self.entries.push(AddedEntry {
            path,
            cid: child.cid,
            kind,
            dag_size: child.tsize,
        });
    }

    /// Waits for every block, pins the root if asked, then lets the temp pin go.
    async fn finish(mut self, root: Cid) -> Result<Added> {
        self.writer.finish().await?;
        if let Some(name) = &self.pin {
            self.writer
                .index()
                .pin(name, &root)
                .await
                .map_err(Error::write)?;
        }
        Ok(Added {
            root,
            entries: self.entries,
            bytes: self.bytes,
            blocks: self.writer.blocks,
        })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(path),
        source,
    }
}
