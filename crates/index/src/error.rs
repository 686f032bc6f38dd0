//! The crate's one error type.

use cid::Cid;
use seedbank_blobstore::AppError;

/// Errors returned by the index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob store failed or rejected the request (closed, overloaded, bad hash, ...).
    #[error(transparent)]
    Blobstore(#[from] seedbank_blobstore::Error),
    /// SQLite failed on one of the index's own tables, or a row of them is not what the
    /// index wrote. `source` is SQLite's error ([`Error::sqlite`]) or what was wrong.
    #[error("index storage error during {op}")]
    Storage {
        /// What the index was doing.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The index tables were written by a newer seedbank than this build.
    #[error("index schema version {found} is newer than supported version {supported}")]
    SchemaTooNew {
        /// The version found in `index_meta`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A read-only store holds no index tables, or older ones than this build reads (open
    /// the store for writing once to create or migrate them).
    #[error("index schema version {found} needs migrating to {supported}, and the store is open read-only")]
    NotMigrated {
        /// The version found (0: the index was never opened on this database).
        found: i64,
        /// The version this build reads.
        supported: i64,
    },
    /// The index's schema version in `index_meta` is impossible (negative): the table was
    /// damaged or written by something else. Nothing was changed.
    #[error("index schema version {found} is impossible; index_meta is damaged")]
    SchemaDamaged {
        /// The version found in `index_meta`.
        found: i64,
    },
    /// A CAR file is corrupt or truncated. Blocks read before `offset` were verified and may
    /// have been stored; nothing at or after it was.
    #[error("corrupt CAR at byte {offset}: {reason}")]
    Car {
        /// Byte offset, from the start of the file, of the header or section that is wrong.
        offset: u64,
        /// What was wrong there.
        reason: String,
        /// The decoder's error behind it, when there is one (a varint's, a CID's, the
        /// header's DAG-CBOR, the blob store's verdict on a block).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Reading a CAR failed below the format (the reader returned an I/O error).
    #[error("i/o error reading CAR at byte {offset}")]
    CarIo {
        /// Bytes successfully read before the error.
        offset: u64,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a CAR failed.
    #[error("i/o error writing CAR")]
    Io(#[from] std::io::Error),
    /// A DAG walk visited more blocks than the configured limit
    /// ([`IndexConfig::reachable_limit`](crate::IndexConfig::reachable_limit)).
    #[error("DAG under {root} has more than {limit} blocks (the configured reachable limit)")]
    LimitExceeded {
        /// The root of the walk.
        root: Cid,
        /// The limit that was reached.
        limit: usize,
    },
    /// A delete was refused because the blob is protected (use `force` to delete it anyway).
    /// Nothing was deleted.
    #[error("blob {cid} is protected by {by}")]
    Pinned {
        /// The blob whose deletion was asked for.
        cid: Cid,
        /// What protects it: `pin NAME` or `temp pin`.
        by: String,
    },
    /// A pin request was malformed (an empty name, a temp pin of another index).
    #[error("invalid pin: {reason}")]
    InvalidPin {
        /// What was wrong.
        reason: String,
    },
    /// The store is past its configured hard size limit
    /// ([`IndexConfig::max_bytes`](crate::IndexConfig::max_bytes)); nothing was written.
    #[error("store full: {used} bytes used + {incoming} incoming exceeds the limit of {limit}")]
    StoreFull {
        /// Bytes in use (pages holding data).
        used: u64,
        /// Bytes of the refused write.
        incoming: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The blob asked for is not stored (e.g. the root of an export).
    #[error("blob {cid} is not stored")]
    NotFound {
        /// The CID that is missing.
        cid: Cid,
    },
}

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a SQLite error with the operation that failed.
    pub(crate) fn storage(op: &'static str, err: seedbank_blobstore::rusqlite::Error) -> Self {
        Error::Storage {
            op,
            source: Box::new(err),
        }
    }

    /// An [`Error::Storage`] for a row that is not what the index wrote (SQLite reported
    /// nothing).
    pub(crate) fn bad_row(op: &'static str, what: impl Into<String>) -> Self {
        Error::Storage {
            op,
            source: what.into().into(),
        }
    }

    /// SQLite's error behind an [`Error::Storage`] of the index, or of the blob store below
    /// it.
    pub fn sqlite(&self) -> Option<&seedbank_blobstore::rusqlite::Error> {
        match self {
            Error::Storage { source, .. } => source.downcast_ref(),
            Error::Blobstore(e) => e.sqlite(),
            _ => None,
        }
    }

    /// Boxes this error for a closure run by the blob store ([`AppError`]).
    pub(crate) fn boxed(self) -> AppError {
        Box::new(self)
    }
}

/// Unwraps errors that crossed the blob store as [`AppError`]: an index error boxed by one of
/// our closures comes back as itself, anything else stays a blob store error.
pub(crate) fn from_store(err: seedbank_blobstore::Error) -> Error {
    match err {
        seedbank_blobstore::Error::App(app) => match app.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::Blobstore(seedbank_blobstore::Error::App(other)),
        },
        other => Error::Blobstore(other),
    }
}

/// Adds the failing operation's name to a rusqlite result.
pub(crate) trait SqlContext<T> {
    /// Maps the error into [`Error::Storage`] naming `op`.
    fn during(self, op: &'static str) -> Result<T>;
}

impl<T> SqlContext<T> for seedbank_blobstore::rusqlite::Result<T> {
    fn during(self, op: &'static str) -> Result<T> {
        self.map_err(|e| Error::storage(op, e))
    }
}
