//! One owner per database file: an OS lock on `<db>.lock`, held by the read-write store for
//! its lifetime.
//!
//! A second process (or a second `Store::open` in this one) that opens the same file for
//! writing is refused at open with [`Error::Locked`], instead of fighting the first through
//! SQLite's busy handler later. The lock is on a file of its own, not on the database: SQLite's
//! POSIX locks on the database are dropped for the whole process when *any* descriptor of that
//! file is closed, so seedbank never opens the database outside SQLite.
//!
//! Read-only stores take the lock shared, and only when they must read the database as
//! immutable (see [`crate::read`]): then no owner can start while they read.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Error, Result};
use crate::paths::lock_path;

/// Held for as long as the store owns (or immutably reads) the database.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    _file: File,
}

impl OwnerLock {
    /// Takes the exclusive lock, creating the lock file if needed.
    ///
    /// # Errors
    /// [`Error::Locked`] if another store holds it, [`Error::Io`] if the file cannot be made.
    pub fn exclusive(db: &Path) -> Result<OwnerLock> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(OwnerLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: db.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(Error::Io(e)),
        }
    }

    /// Takes the lock shared, if no owner holds it. `Ok(None)` when there is no lock file:
    /// no seedbank owner ever ran here, so none runs now.
    ///
    /// # Errors
    /// [`Error::Locked`] while an owner holds it.
    pub fn shared(db: &Path) -> Result<Option<OwnerLock>> {
        let file = match File::open(lock_path(db)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Io(e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(OwnerLock { _file: file })),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: db.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(Error::Io(e)),
        }
    }
}
