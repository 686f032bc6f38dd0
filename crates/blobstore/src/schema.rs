//! The SQLite schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Metadata is kept dense and apart from the bytes: `info`, `has_many` and discovery scans
//! touch only `blobs` (about 60 bytes a row), never the pages holding blob data.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Cause, Error, Result, SqlContext};

/// One step of the schema's history.
enum Migration {
    /// Statements run as they are.
    Sql(&'static str),
    /// A step that depends on what the file holds.
    Code(fn(&Connection) -> rusqlite::Result<()>),
}

/// Migration `i` moves the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[Migration] = &[
    // v1: bytes keyed by multihash (stored once whatever the codec); one metadata row per CID.
    Migration::Sql(
        "CREATE TABLE blob_data (
            id   INTEGER PRIMARY KEY,
            mh   BLOB NOT NULL UNIQUE,
            data BLOB NOT NULL
         );
         CREATE TABLE blobs (
            mh          BLOB    NOT NULL,
            codec       INTEGER NOT NULL,
            data_id     INTEGER NOT NULL REFERENCES blob_data(id),
            size        INTEGER NOT NULL,
            inserted_at INTEGER NOT NULL,
            PRIMARY KEY (mh, codec)
         ) WITHOUT ROWID;",
    ),
    // v2: the lane finds stored bytes through `blobs` (its primary key starts with the
    // multihash), so the unique index on `blob_data.mh` is a second random-key B-tree that
    // every insert pays for and nothing reads.
    Migration::Code(drop_data_mh_index),
];

/// v2: rebuilds an empty `blob_data` without its unique index on `mh`. A file that already
/// holds blobs keeps the index (the lane works either way): dropping an automatic index
/// means copying the table, and copying every blob inside one transaction at open would
/// write the whole store to the WAL.
fn drop_data_mh_index(conn: &Connection) -> rusqlite::Result<()> {
    let empty: bool = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM blob_data)", [], |r| {
        r.get(0)
    })?;
    if empty {
        conn.execute_batch(
            "DROP TABLE blob_data;
             CREATE TABLE blob_data (
                id   INTEGER PRIMARY KEY,
                mh   BLOB NOT NULL,
                data BLOB NOT NULL
             );",
        )?;
    }
    Ok(())
}

/// The statements the lane and the read pools run on the tables above. Public so that
/// baselines (the benchmark's `limit` and `naive` engines) run exactly the same SQL.
pub mod sql {
    /// The row id of stored bytes (`?1` multihash key), found through any CID with that
    /// multihash: a search of the `blobs` primary key, which the insert below visits next.
    pub const FIND_DATA: &str = "SELECT data_id FROM blobs WHERE mh = ?1 LIMIT 1";
    /// Stores bytes not found by [`FIND_DATA`] (`?1` multihash key, `?2` bytes). `OR IGNORE`
    /// only matters in files made before schema v2, which keep a unique index on `mh`: there,
    /// bytes left without any CID make it ignore the row, and [`FIND_ORPHAN_DATA`] finds them.
    pub const INSERT_DATA: &str = "INSERT OR IGNORE INTO blob_data (mh, data) VALUES (?1, ?2)";
    /// The row id of bytes no CID refers to (`?1` multihash key). Run only when
    /// [`INSERT_DATA`] inserted nothing, which needs a pre-v2 file's unique index.
    pub const FIND_ORPHAN_DATA: &str = "SELECT id FROM blob_data WHERE mh = ?1";
    /// One metadata row per CID (`?1` key, `?2` codec, `?3` data id, `?4` size,
    /// `?5` unix ms).
    pub const INSERT_META: &str =
        "INSERT OR IGNORE INTO blobs (mh, codec, data_id, size, inserted_at)
         VALUES (?1, ?2, ?3, ?4, ?5)";
    /// Metadata of a CID (`?1` key, `?2` codec), as `info` reads it.
    pub const INFO: &str = "SELECT size, inserted_at FROM blobs WHERE mh = ?1 AND codec = ?2";
    /// How many CIDs are stored (metadata rows).
    pub const COUNT_CIDS: &str = "SELECT count(*) FROM blobs";

    use rusqlite::{CachedStatement, Connection, OptionalExtension};

    /// The statements that store bytes once per multihash, prepared once per batch. Shared
    /// by the lane and the benchmark's baselines, so both do exactly the same SQL work.
    pub struct DataStatements<'c> {
        conn: &'c Connection,
        find: CachedStatement<'c>,
        insert: CachedStatement<'c>,
        find_orphan: CachedStatement<'c>,
    }

    impl<'c> DataStatements<'c> {
        /// Prepares (or takes from `conn`'s cache) the three statements.
        ///
        /// # Errors
        /// SQLite's, if a statement cannot be prepared.
        pub fn prepare(conn: &'c Connection) -> rusqlite::Result<Self> {
            Ok(DataStatements {
                conn,
                find: conn.prepare_cached(FIND_DATA)?,
                insert: conn.prepare_cached(INSERT_DATA)?,
                find_orphan: conn.prepare_cached(FIND_ORPHAN_DATA)?,
            })
        }

        /// The `blob_data` row id holding `data` for multihash key `mh`: the stored one if
        /// any CID with that multihash is stored, else a new row.
        ///
        /// # Errors
        /// SQLite's.
        pub fn store(&mut self, mh: &[u8], data: &[u8]) -> rusqlite::Result<i64> {
            if let Some(id) = self.find.query_row([mh], |r| r.get(0)).optional()? {
                return Ok(id);
            }
            if self.insert.execute((mh, data))? == 1 {
                return Ok(self.conn.last_insert_rowid());
            }
            self.find_orphan.query_row([mh], |r| r.get(0))
        }
    }
}

/// The oldest schema version this build reads without migrating it (read-only opens): v2
/// changed only how the lane writes, so v1 files read the same.
pub(crate) const READABLE_FROM: i64 = 1;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of every seedbank database ("SdBk" in ASCII), so that `file(1)`
/// and seedbank itself can tell a seedbank file from another application's SQLite file.
/// Written when the database is created, and on the first read-write open of files made
/// before it existed.
pub const APPLICATION_ID: i32 = 0x5364_426b;

/// The tables every seedbank database of schema version 1 or later has.
const CORE_TABLES: &[&str] = &["blob_data", "blobs"];

/// What [`inspect`] found in an existing file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// A new, empty database: migrations create everything.
    Empty,
    /// A seedbank database at this schema `version` (at most [`SCHEMA_VERSION`]).
    Seedbank { version: i64, stamped: bool },
}

/// Checks that the file behind `conn` is a seedbank database (or empty) this build can
/// open, before anything writes to it: a foreign or damaged file is refused untouched.
///
/// # Errors
/// [`Error::ForeignDatabase`], [`Error::Damaged`] (not SQLite, truncated, impossible schema
/// version, missing table), [`Error::SchemaTooNew`], [`Error::Storage`] for other faults.
pub(crate) fn inspect(conn: &Connection, path: &Path) -> Result<FileState> {
    let damaged = |reason: String| Error::Damaged {
        path: path.to_path_buf(),
        reason,
        source: None,
    };
    let foreign = |reason: String| Error::ForeignDatabase {
        path: path.to_path_buf(),
        reason,
    };
    let read = |e: rusqlite::Error| match e.sqlite_error_code() {
        // SQLite's error is kept as the source; its text stays the reason users see.
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::Damaged {
                path: path.to_path_buf(),
                reason: e.to_string(),
                source: Some(Cause::new(e)),
            }
        }
        _ => Error::storage("inspect database", e),
    };
    let (app_id, version): (i32, i64) = conn
        .query_row(
            "SELECT application_id, user_version
             FROM pragma_application_id(), pragma_user_version()",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(read)?;
    let mut tables = Vec::new();
    {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(read)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(read)?;
        for name in rows {
            tables.push(name.map_err(read)?);
        }
    }
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(foreign(format!("application_id is 0x{app_id:08x}")));
    }
    let ours = app_id == APPLICATION_ID;
    if version < 0 {
        return Err(damaged(format!("impossible schema version {version}")));
    }
    if version > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        return match tables.first() {
            None => Ok(FileState::Empty),
            Some(t) if ours => Err(damaged(format!("schema version 0 but table {t} exists"))),
            Some(t) => Err(foreign(format!("no seedbank schema, but has table {t}"))),
        };
    }
    if let Some(missing) = CORE_TABLES.iter().find(|t| !tables.iter().any(|n| n == *t)) {
        return Err(if ours {
            damaged(format!("table {missing} is missing"))
        } else {
            foreign(format!("user_version {version} but no {missing} table"))
        });
    }
    Ok(FileState::Seedbank {
        version,
        stamped: ours,
    })
}

/// Brings the database up to [`SCHEMA_VERSION`] in one transaction, after [`inspect`] has
/// accepted the file, and stamps it with [`APPLICATION_ID`].
///
/// Runs on the writer connection during `Store::open`, before the lane starts, so no other
/// writer exists yet.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .during("begin migration")?;
    // Inspected inside the write transaction: nothing can change the file in between.
    let (found, stamped) = match inspect(&tx, path)? {
        FileState::Empty => (0, false),
        FileState::Seedbank { version, stamped } => (version, stamped),
    };
    if found == SCHEMA_VERSION && stamped {
        return Ok(()); // Dropping `tx` ends it without writing.
    }
    let from = usize::try_from(found).expect("inspect accepts 0..=SCHEMA_VERSION only");
    for step in &MIGRATIONS[from..] {
        match step {
            Migration::Sql(sql) => tx.execute_batch(sql),
            Migration::Code(run) => run(&tx),
        }
        .during("migrate schema")?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .during("write schema version")?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .during("write application id")?;
    tx.commit().during("commit migration")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_file_that_is_not_sqlite_is_damaged_with_sqlites_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-database");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let conn = Connection::open(&path).unwrap();
        let err = inspect(&conn, &path).unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "{err:?}");
        let cause = err
            .source()
            .expect("SQLite found the damage: its error is kept");
        let sqlite = cause
            .downcast_ref::<rusqlite::Error>()
            .expect("the source is rusqlite's error itself");
        assert_eq!(
            sqlite.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase)
        );
        // The text users see is unchanged: SQLite's message is still the reason.
        assert!(err.to_string().ends_with(&sqlite.to_string()), "{err}");
    }
}
