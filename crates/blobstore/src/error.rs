//! The crate's one error type.

use std::sync::Arc;

use cid::Cid;

/// Errors returned by the blob store.
///
/// Bad input is rejected before admission with a specific variant and writes nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes given for a CID do not hash to that CID's digest.
    #[error("hash mismatch: bytes do not hash to {cid}")]
    HashMismatch {
        /// The CID the caller claimed for the bytes.
        cid: Cid,
    },
    /// The CID uses a multihash function the store does not verify.
    #[error("unsupported multihash code 0x{code:x} (supported: sha2-256, blake2b-256, blake3, identity)")]
    UnsupportedHash {
        /// The multihash code found in the CID.
        code: u64,
    },
    /// A digest whose length does not fit its hash function.
    #[error("multihash 0x{code:x} has a {len}-byte digest, expected {expected}")]
    BadDigestLength {
        /// The multihash code.
        code: u64,
        /// The digest length found.
        len: usize,
        /// The length that hash function produces.
        expected: usize,
    },
    /// The blob is larger than [`Config::max_blob_size`](crate::Config::max_blob_size).
    #[error("blob of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the rejected blob in bytes.
        size: usize,
        /// The configured limit in bytes.
        max: usize,
    },
    /// The store was closed; no further reads or writes are accepted.
    #[error("store is closed")]
    Closed,
    /// The admission queue stayed full past the request's deadline; nothing was written.
    #[error("write queue overloaded: no room before the deadline")]
    Overloaded,
    /// A queued [`Store::write`](crate::Store::write) was replaced by a newer write with the
    /// same [`coalesce_key`](crate::PutOptions::coalesce_key) before it ran; nothing of it
    /// was written.
    #[error("write superseded by a newer write with the same coalesce key")]
    Superseded,
    /// Bytes read back from the database do not hash to their CID.
    #[error("corrupt blob in database: stored bytes do not hash to {cid}")]
    Corrupt {
        /// The CID whose stored bytes failed verification.
        cid: Cid,
    },
    /// A closure passed to [`Store::write`](crate::Store::write) failed; its savepoint was
    /// rolled back and nothing it wrote is visible.
    #[error("app write failed: {0}")]
    App(#[source] AppError),
    /// Another store (in this process or another) owns the database for writing. Open it
    /// with [`Store::open_read_only`](crate::Store::open_read_only) to read beside it.
    #[error("{} is open for writing by another store", path.display())]
    Locked {
        /// The database path.
        path: std::path::PathBuf,
    },
    /// A write was attempted on a store opened with
    /// [`Store::open_read_only`](crate::Store::open_read_only).
    #[error("store is open read-only")]
    ReadOnly,
    /// [`Store::open_read_only`](crate::Store::open_read_only) found no database at the path
    /// (nothing was created).
    #[error("no such database file: {}", path.display())]
    NoDatabase {
        /// The path that was asked for.
        path: std::path::PathBuf,
    },
    /// The database schema is older than this build reads without migrating it (open it
    /// read-write once to migrate).
    #[error("database schema version {found} is older than version {supported}; open it for writing once to migrate it")]
    SchemaTooOld {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The version this build reads.
        supported: i64,
    },
    /// The database schema is newer than this build understands.
    #[error("database schema version {found} is newer than supported version {supported}")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Code run on the writer lane (a [`Store::write`](crate::Store::write) closure, a
    /// [`StagedOp`](crate::StagedOp)) panicked. Its writes were rolled back; when they could
    /// not be isolated from the rest of its batch, the whole batch was rolled back and every
    /// request in it got this error. The lane carries on.
    #[error("write panicked on the writer lane: {message}")]
    Panicked {
        /// The panic's message (or a description of what was lost).
        message: String,
    },
    /// A write closure or staged op ended, restarted or released the lane's transaction
    /// (ran `COMMIT`, `ROLLBACK`, `BEGIN` or released the lane's savepoint). Such a `COMMIT` is
    /// refused; the whole batch was rolled back and every request in it failed with this
    /// error (nothing of it is acknowledged). Only the lane may end its transaction.
    #[error("a write ended or restarted the writer lane's transaction; the batch was rolled back")]
    TransactionEnded,
    /// Code the store ran for others (a [`Store::write`](crate::Store::write) closure, a
    /// [`StagedOp`](crate::StagedOp), a [`Store::read`](crate::Store::read) or
    /// [`Store::scan`](crate::Store::scan) closure) tried to change the connection it was lent
    /// for everyone after it: a settings `PRAGMA` (`synchronous`, `query_only`,
    /// `locking_mode`, `journal_mode`, `foreign_keys`, …), `ATTACH`/`DETACH`, a temporary
    /// trigger, or the connection's authorizer, hooks or `db_config` flags. SQL changes are
    /// refused before they happen; the others are undone after (a read connection is
    /// replaced). The closure's writes were rolled back (a staged op's: its whole batch's);
    /// the lane and the pools carry on as configured.
    #[error(
        "a closure tried to change the store's connection ({setting}); refused and rolled back"
    )]
    ClosureChangedConnection {
        /// What it tried to change.
        setting: String,
    },
    /// A store opened read-only as an immutable file (no owner lock file existed, and SQLite
    /// could not set up its WAL index, e.g. on a full disk) found that a writer has opened
    /// the database since: what it reads may be torn. Nothing is read from it any more;
    /// reopen it with [`Store::open_read_only`](crate::Store::open_read_only).
    #[error("{} gained a writer while it was read as an immutable file; reopen it", path.display())]
    WriterAppeared {
        /// The database path.
        path: std::path::PathBuf,
    },
    /// An app read ([`Store::read`](crate::Store::read) on the data pool) held its snapshot
    /// longer than the reader transaction limit (`Config::checkpoint_max_wait`) while the
    /// WAL was over its cap: its SQL was interrupted so the WAL could be rewound. Nothing
    /// was changed; retry, or read in smaller pieces (each its own `read`).
    #[error(
        "read ended: its snapshot was held longer than {limit:?} while the WAL needed rewinding"
    )]
    ReadExpired {
        /// The reader transaction limit it passed.
        limit: std::time::Duration,
    },
    /// The disk (or SQLite's `max_page_count`) is full. Nothing of the failed request or its
    /// batch was written; everything acknowledged before is intact, reads keep working and
    /// writes succeed again as soon as there is room (no reopen needed).
    #[error("database or disk is full during {op}; nothing of this write was stored")]
    DiskFull {
        /// What the store was doing.
        op: &'static str,
    },
    /// The file is a SQLite database that belongs to another application: its
    /// `PRAGMA application_id` is not seedbank's, or it has tables but no seedbank schema.
    /// Nothing was changed.
    #[error("{} is not a seedbank database: {reason}", path.display())]
    ForeignDatabase {
        /// The database path.
        path: std::path::PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The file is not a usable database: not SQLite at all, truncated, or its schema is
    /// damaged (an impossible schema version, a missing table). Nothing was changed.
    #[error("{} is damaged or not a database: {reason}", path.display())]
    Damaged {
        /// The database path.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
        /// SQLite's error, when SQLite found the damage (`SQLITE_NOTADB`, `SQLITE_CORRUPT`).
        #[source]
        source: Option<Cause>,
    },
    /// SQLite failed, or what it returned is not what the store wrote. `source` is the
    /// cause: SQLite's own error ([`rusqlite::Error`], see [`Error::sqlite`] and
    /// [`Error::is_busy`]) or, for a request of a batch another request failed, that error.
    #[error("storage error during {op}")]
    Storage {
        /// What the store was doing.
        op: &'static str,
        /// The cause (shared: a failed batch answers each of its requests with it), handed
        /// out by `source()` as itself, so `downcast_ref::<rusqlite::Error>()` finds it.
        #[source]
        source: Cause,
    },
    /// An I/O error outside SQLite (creating directories, reading WAL size).
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    /// A blocking task of the store (a read, `close`, a backup) panicked or was cancelled
    /// before it answered.
    #[error("{what} task failed")]
    Task {
        /// Which task.
        what: &'static str,
        /// Tokio's error (holds the panic, if it was one).
        #[source]
        source: tokio::task::JoinError,
    },
}

/// The cause of the [`Error::Storage`] that the other requests of a batch get when one
/// request's failure rolled the whole batch back: that request's error.
#[derive(Debug, thiserror::Error)]
#[error("batch rolled back: another request in it failed")]
pub(crate) struct OtherRequestFailed(#[source] pub Error);

/// The cause of an [`Error::Storage`] that SQLite did not report (a setting SQLite refused,
/// a backup copy that fails its check): what was found, in words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unexpected(pub String);

/// The error behind another error (its [`source`](std::error::Error::source)), shared so
/// the error holding it can be `Clone` (a failed batch answers each of its requests with
/// one cause; discovery's errors are shared by every caller of a run).
///
/// `source()` hands out the wrapped error itself, so `downcast_ref` finds its type: a bare
/// `Arc<dyn Error>` field is an error type of its own, and `source()` would hand out the
/// `Arc`, hiding the cause's type. `Cause` is deliberately not an error itself; it derefs to
/// the one it holds. Discovery and files re-export it.
#[derive(Clone, Debug)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Keeps `error` as a cause.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }
}

impl std::ops::Deref for Cause {
    type Target = dyn std::error::Error + Send + Sync;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// The error type of closures run by [`Store::write`](crate::Store::write).
pub type AppError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a SQLite error with the operation that failed (SQLITE_FULL becomes
    /// [`Error::DiskFull`]).
    pub(crate) fn storage(op: &'static str, err: rusqlite::Error) -> Self {
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return Error::DiskFull { op };
        }
        Error::Storage {
            op,
            source: Cause::new(err),
        }
    }

    /// An [`Error::Storage`] whose cause SQLite did not report ([`Unexpected`]).
    pub(crate) fn unexpected(op: &'static str, what: impl Into<String>) -> Self {
        Error::Storage {
            op,
            source: Cause::new(Unexpected(what.into())),
        }
    }

    /// The error the other requests of a batch get when `cause` rolled it back.
    pub(crate) fn batch_rolled_back(cause: &Error) -> Self {
        Error::Storage {
            op: "batch",
            source: Cause::new(OtherRequestFailed(cause.duplicate())),
        }
    }

    /// SQLite's error behind an [`Error::Storage`], if SQLite reported it.
    pub fn sqlite(&self) -> Option<&rusqlite::Error> {
        match self {
            Error::Storage { source, .. } => source.downcast_ref::<rusqlite::Error>(),
            _ => None,
        }
    }

    /// True when this error is SQLite reporting SQLITE_BUSY or SQLITE_LOCKED (read from
    /// SQLite's error itself).
    pub fn is_busy(&self) -> bool {
        matches!(
            self.sqlite().and_then(rusqlite::Error::sqlite_error_code),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// True for errors about one blob of a multi-blob read (its bytes are corrupt, its CID
    /// cannot be verified), which [`Store::get_many`](crate::Store::get_many) reports per
    /// CID; the others fail the read as a whole.
    pub(crate) fn is_per_blob(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. } | Error::UnsupportedHash { .. } | Error::BadDigestLength { .. }
        )
    }

    /// A copy for acknowledging every request of a failed batch with the same error.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Storage { op, source } => Error::Storage {
                op,
                source: source.clone(),
            },
            Error::Closed => Error::Closed,
            Error::DiskFull { op } => Error::DiskFull { op },
            Error::TransactionEnded => Error::TransactionEnded,
            Error::Panicked { message } => Error::Panicked {
                message: message.clone(),
            },
            other => Error::unexpected("batch", other.to_string()),
        }
    }
}

/// Adds the failing operation's name to a rusqlite result.
pub(crate) trait SqlContext<T> {
    /// Maps the error into [`Error::Storage`] naming `op`.
    fn during(self, op: &'static str) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn during(self, op: &'static str) -> Result<T> {
        self.map_err(|e| Error::storage(op, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn sqlite(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_storage_error_keeps_sqlites_error_and_answers_busy_from_it() {
        let busy = Error::storage("get", sqlite(rusqlite::ffi::SQLITE_BUSY));
        assert!(busy.is_busy());
        assert_eq!(
            busy.sqlite().and_then(rusqlite::Error::sqlite_error_code),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        let cause = busy.source().expect("SQLite's error is the source");
        assert_eq!(cause.to_string(), busy.sqlite().unwrap().to_string());
        assert!(!Error::storage("get", sqlite(rusqlite::ffi::SQLITE_IOERR)).is_busy());
        assert!(matches!(
            Error::storage("put", sqlite(rusqlite::ffi::SQLITE_FULL)),
            Error::DiskFull { op: "put" }
        ));
    }

    #[test]
    fn walking_a_storage_errors_sources_reaches_sqlites_error_by_type() {
        let err = Error::storage("get", sqlite(rusqlite::ffi::SQLITE_BUSY));
        let cause = err.source().expect("a storage error has a source");
        let found = cause
            .downcast_ref::<rusqlite::Error>()
            .expect("source() is rusqlite's error itself, not an Arc around it");
        assert_eq!(
            found.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        // A batch's other requests reach the failing request's SQLite error down the chain.
        let other = Error::batch_rolled_back(&err);
        let mut next: Option<&dyn std::error::Error> = Some(&other);
        let mut typed = 0;
        while let Some(e) = next {
            typed += usize::from(e.downcast_ref::<rusqlite::Error>().is_some());
            next = e.source();
        }
        assert_eq!(typed, 1);
    }

    #[test]
    fn a_rolled_back_batch_names_the_request_that_failed_it_as_its_cause() {
        let first = Error::storage("insert", sqlite(rusqlite::ffi::SQLITE_IOERR));
        let other = Error::batch_rolled_back(&first);
        let mut chain = Vec::new();
        let mut next: Option<&dyn std::error::Error> = Some(&other);
        while let Some(e) = next {
            chain.push(e.to_string());
            next = e.source();
        }
        assert_eq!(
            chain[..3],
            [
                "storage error during batch".to_string(),
                "batch rolled back: another request in it failed".to_string(),
                "storage error during insert".to_string(),
            ]
        );
        assert_eq!(chain[3], sqlite(rusqlite::ffi::SQLITE_IOERR).to_string());
        assert!(!other.is_busy());
    }
}
