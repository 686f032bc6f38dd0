//! The SQLite schema and its versioned migrations (`PRAGMA user_version`).
//!
//! Metadata is kept dense and apart from the bytes: `info`, `has_many` and discovery scans
//! touch only `blobs` (about 60 bytes a row), never the pages holding blob data.

use rusqlite::Connection;

use crate::error::{Error, Result, SqlContext};

/// Migration `i` moves the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    // v1: bytes keyed by multihash (stored once whatever the codec); one metadata row per CID.
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
];

/// The statements the lane and the read pools run on the tables above. Public so that
/// baselines (the benchmark's `limit` and `naive` engines) run exactly the same SQL.
pub mod sql {
    /// Stores bytes once per multihash (`?1` multihash key, `?2` bytes).
    pub const INSERT_DATA: &str =
        "INSERT INTO blob_data (mh, data) VALUES (?1, ?2) ON CONFLICT (mh) DO NOTHING";
    /// The row id of stored bytes (`?1` multihash key).
    pub const FIND_DATA: &str = "SELECT id FROM blob_data WHERE mh = ?1";
    /// One metadata row per CID (`?1` key, `?2` codec, `?3` data id, `?4` size,
    /// `?5` unix ms).
    pub const INSERT_META: &str =
        "INSERT OR IGNORE INTO blobs (mh, codec, data_id, size, inserted_at)
         VALUES (?1, ?2, ?3, ?4, ?5)";
    /// Metadata of a CID (`?1` key, `?2` codec), as `info` reads it.
    pub const INFO: &str = "SELECT size, inserted_at FROM blobs WHERE mh = ?1 AND codec = ?2";
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`] in one transaction.
///
/// Runs on the writer connection during `Store::open`, before the lane starts, so no other
/// writer exists yet.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .during("begin migration")?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .during("read schema version")?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(()); // Dropping `tx` ends it without writing.
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql).during("migrate schema")?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .during("write schema version")?;
    tx.commit().during("commit migration")
}
