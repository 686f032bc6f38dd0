//! seedbank's files: UnixFS on top of the index. Files and directories of any size go in as
//! DAGs of blocks no larger than the store's blob limit, with the CIDs the reference
//! importers (Kubo, Helia, `ipfs-unixfs-importer`) compute; files come back out as
//! verified byte streams, whole or as a range, and directories as listings.
//!
//! - [`Profile`]: the construction parameters that fix the CIDs — IPIP-499's
//!   `unixfs-v1-2025` (the default) and `unixfs-v0-2015`, and `kubo-cidv1`
//!   (`ipfs add --cid-version=1`).
//! - Adding ([`Files::add_reader`], [`Files::add_path`]) streams: a file is read one chunk
//!   at a time and its blocks are written through the index in batches while the next are
//!   hashed, so memory is a few batches whatever the file's size. Every block is held by a
//!   temp pin until the root is committed, and pinned with [`AddOptions::pin`].
//! - Reading ([`Files::cat`]) fetches only the blocks a byte range needs (by the nodes'
//!   `blocksizes`); every block is verified by the store, and a missing one ends the
//!   stream with [`Error::MissingBlock`] naming it, after the bytes before it.
//! - Directories: flat up to the profile's size threshold, HAMT-sharded past it, both
//!   listed by [`Files::ls`] and walked by [`Files::resolve`] (`CID/dir/file`).
//!
//! The dag-pb framing is `ipld-dagpb`'s; the UnixFS `Data` message, the balanced layout and
//! the HAMT are written here to match the JS reference importer byte for byte (the tests
//! check every fixture of `testdata/unixfs/expected.json`, made with it).
//!
//! ```
//! use seedbank_blobstore::{Config, Store};
//! use seedbank_files::{AddOptions, Files, Profile};
//! use seedbank_index::{Index, IndexConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("files.db"), Config::default())?;
//! let files = Files::new(Index::open(store, IndexConfig::default()).await?);
//!
//! let opts = AddOptions::new(Profile::UnixfsV1_2025).pin("hello");
//! let added = files.add_reader(&b"hello world"[..], &opts).await?;
//! // IPIP-499's published CID for these bytes under this profile.
//! assert_eq!(
//!     added.root.to_string(),
//!     "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
//! );
//!
//! let mut reader = files.cat(&added.root, 6, Some(5)).await?; // bytes 6..11
//! let mut out = Vec::new();
//! while let Some(chunk) = reader.next_chunk().await? {
//!     out.extend_from_slice(&chunk);
//! }
//! assert_eq!(out, b"world");
//! files.index().store().close().await?;
//! # Ok(())
//! # }
//! ```

mod add;
mod error;
mod hamt;
mod node;
mod profile;
mod read;
#[doc(hidden)]
pub mod testing;
mod unixfs;

use std::fmt;

use cid::Cid;
use seedbank_index::Index;

pub use add::{AddOptions, Added, AddedEntry, ProgressFn};
pub use error::{Error, Result};
pub use hamt::slot as hamt_slot;
pub use profile::{Profile, HAMT_FANOUT, SHARD_THRESHOLD};
pub use read::{Entry, FileReader};
pub use unixfs::{Data, DataType};

/// What a UnixFS node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A file (a raw block, or a dag-pb `File` or `Raw` node).
    File,
    /// A directory, flat or HAMT-sharded.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Something else (a `Metadata` node), or not stored.
    Unknown,
}

impl Kind {
    /// The kind's name: `file`, `directory`, `symlink` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
            Kind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Files on an [`Index`]: add, cat, ls and path resolution. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Files {
    index: Index,
}

impl Files {
    /// Files stored through `index` (read-only stores can be read, not added to).
    pub fn new(index: Index) -> Files {
        Files { index }
    }

    /// The index blocks are written through.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Opens the file `cid` for reading `length` bytes (to the end when `None`) from byte
    /// `offset`. Only the root block is read here; the rest as the reader is asked.
    ///
    /// # Errors
    /// [`Error::NotAFile`], [`Error::RangeNotSatisfiable`] for an `offset` past the end,
    /// [`Error::MissingBlock`], [`Error::Read`], [`Error::Corrupt`],
    /// [`Error::UnsupportedCodec`] for the root.
    pub async fn cat(&self, cid: &Cid, offset: u64, length: Option<u64>) -> Result<FileReader> {
        FileReader::open(self.index.store().clone(), *cid, offset, length).await
    }

    /// Lists the directory `cid` (flat or HAMT), sorted by name.
    ///
    /// # Errors
    /// [`Error::NotADirectory`], [`Error::MissingBlock`] for the directory or one of its
    /// shards (a missing entry is listed as [`Kind::Unknown`]), [`Error::Read`],
    /// [`Error::Corrupt`].
    pub async fn ls(&self, cid: &Cid) -> Result<Vec<Entry>> {
        read::ls::list(self.index.store(), cid).await
    }

    /// Resolves `CID[/name...]` (also `/ipfs/CID/...`) to the CID it names.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] without a valid CID or with a `..` step, [`Error::NotFound`]
    /// for a name a directory lacks, [`Error::NotADirectory`] for a step through a file,
    /// [`Error::MissingBlock`], [`Error::Read`], [`Error::Corrupt`].
    pub async fn resolve(&self, path: &str) -> Result<Cid> {
        let (root, names) = parse_path(path)?;
        read::ls::resolve(self.index.store(), &root, &names).await
    }
}

/// Splits `CID/a/b` (or `/ipfs/CID/a/b`) into the CID and the names; empty and `.` steps
/// are dropped.
fn parse_path(path: &str) -> Result<(Cid, Vec<&str>)> {
    let invalid = |reason: &str| Error::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = path.strip_prefix("/ipfs/").unwrap_or(path);
    let mut steps = trimmed.split('/').filter(|s| !s.is_empty() && *s != ".");
    let first = steps.next().ok_or_else(|| invalid("no CID"))?;
    let root = Cid::try_from(first).map_err(|e| invalid(&format!("bad CID {first:?}: {e}")))?;
    let names: Vec<&str> = steps.collect();
    if names.contains(&"..") {
        return Err(invalid("`..` is not supported"));
    }
    Ok((root, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_a_cid_and_names() {
        let cid = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn";
        for (path, names) in [
            (cid.to_string(), vec![]),
            (format!("/ipfs/{cid}/a//b/"), vec!["a", "b"]),
            (format!("{cid}/./ü"), vec!["ü"]),
        ] {
            let (root, got) = parse_path(&path).unwrap();
            assert_eq!((root.to_string().as_str(), got), (cid, names));
        }
        for bad in ["", "/", "nope/a", &format!("{cid}/../x")] {
            assert!(
                matches!(parse_path(bad), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
    }
}
