//! Removing blobs and giving their space back: the row-level delete ([`Deleter`], in a
//! [`Store::write_deleting`] batch) the index's `delete`, garbage collection and repair run,
//! bounded incremental vacuum steps, the file's page figures, and online backup.
//!
//! Nothing here decides *what* may be deleted: that is the index's job (pins, temp pins,
//! the link graph). These are the storage primitives it runs on the lane.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::config::{Priority, PutOptions};
use crate::error::{AppError, Error, Result, SqlContext};
use crate::read::PoolKind;
use crate::Store;

/// What deleting one CID's rows did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    /// True if the CID's metadata row existed (and is gone now).
    pub existed: bool,
    /// Bytes of blob data removed: the blob's size if no other CID (same multihash, another
    /// codec) still needed the bytes, else 0.
    pub bytes_freed: u64,
}

/// The connection of a [`Store::write_deleting`] closure: a lane write that may delete
/// blobs. It tallies what its deletes free, and the store counts that into
/// [`Stats`](crate::Stats) (`blobs_freed`, `bytes_freed`) once the write has committed, so
/// nobody records freed space by hand and a rolled-back delete counts nothing.
pub struct Deleter<'c> {
    conn: &'c Connection,
    freed: Cell<(u64, u64)>,
}

impl<'c> Deleter<'c> {
    /// The lane's connection, for the caller's own rows in the same transaction.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// Deletes one CID's metadata row (`mh` multihash key, `codec`), and its bytes unless
    /// another codec of the same multihash still refers to them.
    ///
    /// # Errors
    /// [`Error::Storage`] if a statement failed.
    pub fn delete(&self, mh: &[u8], codec: i64) -> Result<Deleted> {
        let gone = delete_blob_rows(self.conn, mh, codec)?;
        let (blobs, bytes) = self.freed.get();
        self.freed
            .set((blobs + u64::from(gone.existed), bytes + gone.bytes_freed));
        Ok(gone)
    }
}

/// Deletes one CID's rows (see [`Deleter::delete`]).
fn delete_blob_rows(conn: &Connection, mh: &[u8], codec: i64) -> Result<Deleted> {
    let found: Option<(i64, i64)> = conn
        .prepare_cached("DELETE FROM blobs WHERE mh = ?1 AND codec = ?2 RETURNING data_id, size")
        .during("prepare delete blob")?
        .query_row((mh, codec), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .during("delete blob")?;
    let Some((data_id, size)) = found else {
        return Ok(Deleted::default());
    };
    let shared = conn
        .prepare_cached("SELECT 1 FROM blobs WHERE mh = ?1 LIMIT 1")
        .during("prepare find other codec")?
        .exists([mh])
        .during("find other codec")?;
    let mut bytes_freed = 0;
    if !shared {
        conn.prepare_cached("DELETE FROM blob_data WHERE id = ?1")
            .during("prepare delete data")?
            .execute([data_id])
            .during("delete data")?;
        bytes_freed = size.max(0) as u64;
    }
    Ok(Deleted {
        existed: true,
        bytes_freed,
    })
}

/// The database file's page figures, from [`Store::space`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Space {
    /// Bytes per page.
    pub page_size: u64,
    /// Pages in the file (committed state; the WAL may hold newer pages until a checkpoint).
    pub page_count: u64,
    /// Pages on the freelist: reused by later writes, and given back to the file system by
    /// [`Store::vacuum_step`].
    pub free_pages: u64,
    /// `PRAGMA auto_vacuum`: 0 none, 1 full, 2 incremental. Only an incremental file can
    /// shrink in steps; an older file (created with 0) needs one `VACUUM` to switch.
    pub auto_vacuum: i64,
}

impl Space {
    /// Bytes in pages that hold data (`(page_count - free_pages) * page_size`).
    pub fn used_bytes(&self) -> u64 {
        self.page_count.saturating_sub(self.free_pages) * self.page_size
    }

    /// Bytes of the file (`page_count * page_size`).
    pub fn file_bytes(&self) -> u64 {
        self.page_count * self.page_size
    }
}

fn space_of(conn: &Connection) -> Result<Space> {
    let get = |pragma: &str| -> Result<i64> {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
            .during("read page figures")
    };
    Ok(Space {
        page_size: get("page_size")?.max(0) as u64,
        page_count: get("page_count")?.max(0) as u64,
        free_pages: get("freelist_count")?.max(0) as u64,
        auto_vacuum: get("auto_vacuum")?,
    })
}

/// What [`Store::backup`] wrote and checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackupReport {
    /// The copy's path.
    pub path: PathBuf,
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// CIDs the copy holds (counted by opening it).
    pub cids: u64,
}

impl Store {
    /// The file's page figures (page size and count, free pages, auto-vacuum mode), read on
    /// the `info` pool.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Storage`].
    pub async fn space(&self) -> Result<Space> {
        self.read(PoolKind::Info, |conn| space_of(conn).map_err(Into::into))
            .await
            .map_err(unwrap_app)
    }

    /// Gives up to `pages` free pages back to the file system in one lane write at
    /// `Background` priority (`PRAGMA incremental_vacuum`); the file shrinks at the next
    /// checkpoint. Returns the free pages left. Call it in a loop to reclaim everything
    /// while interactive writes keep their turn between steps.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::ReadOnly`], [`Error::Overloaded`], [`Error::Storage`].
    pub async fn vacuum_step(&self, pages: u64) -> Result<u64> {
        let opts = PutOptions::new(Priority::Background, "vacuum");
        let pages = pages.clamp(1, i64::MAX as u64) as i64;
        self.write(opts, move |conn| {
            let mut stmt = conn
                .prepare(&format!("PRAGMA incremental_vacuum({pages})"))
                .during("prepare incremental vacuum")?;
            // Each step of the statement frees one page; drain it.
            let mut rows = stmt.query([]).during("incremental vacuum")?;
            while rows.next().during("incremental vacuum")?.is_some() {}
            let free: i64 = conn
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))
                .during("read free pages")?;
            Ok(free.max(0) as u64)
        })
        .await
        .map_err(unwrap_app)
    }

    /// Runs `f` inside a lane batch like [`Store::write`], with a [`Deleter`] to delete
    /// blobs (and the connection for the caller's own rows); once the batch has committed,
    /// counts what the deletes freed into [`Stats`](crate::Stats). The index's delete,
    /// garbage collection and repair run on this.
    ///
    /// # Errors
    /// As [`Store::write`].
    pub async fn write_deleting<T, F>(&self, opts: PutOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Deleter<'_>) -> Result<T, AppError> + Send + 'static,
    {
        let (value, (blobs, bytes)) = self
            .write(opts, move |conn| {
                let deleter = Deleter {
                    conn,
                    freed: Cell::new((0, 0)),
                };
                let value = f(&deleter)?;
                Ok((value, deleter.freed.get()))
            })
            .await?;
        self.stats_collector().record_freed(blobs, bytes);
        Ok(value)
    }

    /// Writes a consistent copy of the database to `dest` while the store keeps serving
    /// reads and writes, then opens the copy and checks it (`integrity_check`, a count of its
    /// CIDs).
    ///
    /// The copy is `VACUUM INTO` from a connection of its own (read-only, outside the pools):
    /// it reads one snapshot, so it holds exactly what was committed when it started, and the
    /// lane never waits for it. While it runs, checkpoints can backfill the WAL only up to
    /// that snapshot, so the WAL grows by what is written meanwhile (see `docs/design.md`,
    /// "Lifecycle").
    ///
    /// # Errors
    /// [`Error::Io`] if `dest` exists (`AlreadyExists`: that file is left untouched) or
    /// cannot be created, [`Error::Storage`] if the copy failed or does not pass its check
    /// (the partial copy, which the backup created itself, is removed), [`Error::Closed`].
    /// The copy and its directory entry are synced before it returns.
    pub async fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        let dest = dest.as_ref().to_path_buf();
        let src = self.path().to_path_buf();
        let run = move || -> Result<BackupReport> {
            // Created exclusively: a file that exists, or appears meanwhile, is refused and
            // never touched, and the one removed on failure is always our own. SQLite's
            // `VACUUM INTO` writes into an empty file.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dest)?;
            let written = copy_into(&src, &dest)
                .and_then(|()| sync_file_and_dir(&dest))
                .and_then(|()| check_copy(&dest));
            if written.is_err() {
                let _ = std::fs::remove_file(&dest);
            }
            written
        };
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|source| Error::Task {
                what: "backup",
                source,
            })?
    }
}

/// Makes the copy and its directory entry durable before the backup is reported done.
fn sync_file_and_dir(dest: &Path) -> Result<()> {
    std::fs::File::open(dest)?.sync_all()?;
    #[cfg(unix)]
    if let Some(dir) = dest.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn copy_into(src: &Path, dest: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .during("open backup source")?;
    let dest = dest
        .to_str()
        .ok_or_else(|| Error::unexpected("backup", "destination path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [dest])
        .during("vacuum into")?;
    Ok(())
}

fn check_copy(dest: &Path) -> Result<BackupReport> {
    let conn = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .during("open backup copy")?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .during("check backup copy")?;
    if check != "ok" {
        return Err(Error::unexpected("check backup copy", check));
    }
    let cids: i64 = conn
        .query_row(crate::schema::sql::COUNT_CIDS, [], |r| r.get(0))
        .during("count backup copy")?;
    let bytes = std::fs::metadata(dest)?.len();
    Ok(BackupReport {
        path: dest.to_path_buf(),
        bytes,
        cids: cids.max(0) as u64,
    })
}

/// `Store::read` / `Store::write` wrap a closure's error in [`Error::App`]; the closures here
/// return the store's own errors, so unwrap them again.
fn unwrap_app(e: Error) -> Error {
    match e {
        Error::App(inner) => match inner.downcast::<Error>() {
            Ok(own) => *own,
            Err(other) => Error::App(other),
        },
        other => other,
    }
}
