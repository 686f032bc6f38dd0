//! The crate's error type.

use std::path::PathBuf;

use cid::Cid;

use crate::Kind;

/// Errors of adding, reading and listing files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing blocks or the pin through the index failed (store closed, overloaded, full,
    /// a block over the store's size limit, ...). Blocks of batches committed before stay
    /// stored, unpinned.
    #[error("storing blocks failed")]
    Write(#[source] Box<seedbank_index::Error>),
    /// Reading a block failed: the store is closed, or the stored bytes do not hash to the
    /// CID (never returned as data).
    #[error("reading block {cid} failed")]
    Read {
        /// The block being read (the first of the request when the whole read failed).
        cid: Cid,
        /// The store's error (boxed: it is as large as a CID).
        #[source]
        source: Box<seedbank_blobstore::Error>,
    },
    /// A block the DAG needs is not stored. A reader delivered every byte before it.
    #[error("block {cid} is missing")]
    MissingBlock {
        /// The missing block.
        cid: Cid,
    },
    /// A block is not valid UnixFS (a malformed node, sizes that disagree, a bad HAMT).
    #[error("block {cid} is not valid UnixFS: {reason}")]
    Corrupt {
        /// The offending block.
        cid: Cid,
        /// What is wrong with it.
        reason: Box<str>,
        /// The dag-pb decoder's error, when it found the fault.
        #[source]
        source: Option<Box<Cause>>,
    },
    /// A block's codec is neither raw nor dag-pb.
    #[error("block {cid} has codec 0x{codec:x}; UnixFS uses raw (0x55) and dag-pb (0x70)")]
    UnsupportedCodec {
        /// The block.
        cid: Cid,
        /// Its codec.
        codec: u64,
    },
    /// `cat` of something that is not a file.
    #[error("{cid} is a {found}, not a file")]
    NotAFile {
        /// The node asked for.
        cid: Cid,
        /// What it is.
        found: Kind,
    },
    /// `ls` or a path step through something that is not a directory.
    #[error("{cid} is a {found}, not a directory")]
    NotADirectory {
        /// The node asked for.
        cid: Cid,
        /// What it is.
        found: Kind,
    },
    /// A path names an entry its directory does not have.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path up to and including the missing name.
        path: String,
    },
    /// A path that cannot be resolved (no CID, a bad CID, `..`).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A byte range starting past the end of the file.
    #[error("range starts at byte {offset}, past the end of the {size}-byte file")]
    RangeNotSatisfiable {
        /// The requested start.
        offset: u64,
        /// The file's size.
        size: u64,
    },
    /// A DAG deeper than any file or directory the importers build (a hostile DAG).
    #[error("DAG under {cid} is deeper than {limit} levels")]
    TooDeep {
        /// The node at which the limit was crossed.
        cid: Cid,
        /// The limit.
        limit: usize,
    },
    /// Reading a file or directory being added failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file being added cannot be represented in UnixFS (a name that is not UTF-8, a
    /// device or socket).
    #[error("cannot add {}: {reason}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The store's largest blob is smaller than the profile's blocks.
    #[error("the profile's {chunk}-byte chunks exceed the store's blob limit of {max} bytes")]
    ChunkTooLarge {
        /// The profile's chunk size.
        chunk: usize,
        /// The store's `max_blob_size`.
        max: usize,
    },
    /// A profile name that is not one of [`Profile::ALL`](crate::Profile::ALL).
    #[error("unknown profile {name:?} (known: unixfs-v1-2025, unixfs-v0-2015, kubo-cidv1)")]
    UnknownProfile {
        /// The name given.
        name: String,
    },
    /// A background task (writing blocks, or reading files on the blocking pool) ended
    /// without an answer: it panicked or the runtime is shutting down.
    #[error("a block writing or file reading task failed")]
    Task(#[source] tokio::task::JoinError),
}

// A decoder's error behind an `Error::Corrupt`: the workspace's one cause type (defined
// in the blob store), which derefs to the error and whose `source()` hands out that error
// itself (`downcast_ref` finds its type). The variant boxes it so it holds one thin pointer
// (the error stays under clippy's 128-byte `result_large_err` line).
pub use seedbank_blobstore::Cause;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(cid: &Cid, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            cid: *cid,
            reason: reason.into().into_boxed_str(),
            source: None,
        }
    }

    /// A corrupt block, as a decoder found (its error kept as the source).
    pub(crate) fn corrupt_caused(
        cid: &Cid,
        reason: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Corrupt {
            cid: *cid,
            reason: reason.into(),
            source: Some(Box::new(Cause::new(source))),
        }
    }

    pub(crate) fn write(e: seedbank_index::Error) -> Self {
        Error::Write(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    /// Small enough that `Result<(), Error>` stays cheap to return (a CID is 96 bytes).
    #[test]
    fn the_error_is_at_most_a_cid_and_a_bit() {
        assert!(std::mem::size_of::<super::Error>() <= 120);
    }
}
