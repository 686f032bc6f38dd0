//! Store verification (`seedbank verify`): re-hash every stored blob and run SQLite's integrity check.

use rusqlite::Connection;

use crate::error::{Result, SqlContext};
use crate::rows::{rehash_in, CorruptBlob};

/// Result of [`Store::verify`](crate::Store::verify) and
/// [`Store::verify_blobs`](crate::Store::verify_blobs).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// One line per problem found (empty when the store is sound).
    pub problems: Vec<String>,
    /// The blobs whose bytes do not hash to their multihash, for a repair to act on (each
    /// also has a line in `problems`). Not serialized.
    #[serde(skip)]
    pub corrupt: Vec<CorruptBlob>,
}

/// Re-hashes every blob's bytes against its multihash, and with `integrity` runs
/// `PRAGMA integrity_check` and looks for metadata rows without bytes, all in one snapshot.
pub(crate) fn verify_all(conn: &Connection, integrity: bool) -> Result<VerifyReport> {
    let tx = conn.unchecked_transaction().during("begin verify")?;
    let rehashed = rehash_in(&tx)?;
    let mut report = VerifyReport {
        blobs_checked: rehashed.checked,
        problems: rehashed
            .corrupt
            .iter()
            .map(|c| c.problem().to_string())
            .collect(),
        corrupt: rehashed.corrupt,
    };
    if !integrity {
        tx.finish().during("end verify")?;
        return Ok(report);
    }
    let mut stmt = tx
        .prepare("PRAGMA integrity_check")
        .during("integrity check")?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .during("integrity check")?
        .collect::<rusqlite::Result<Vec<_>>>()
        .during("integrity check")?;
    report.problems.extend(
        lines
            .into_iter()
            .filter(|l| l != "ok")
            .map(|l| format!("sqlite: {l}")),
    );
    let orphans: i64 = tx
        .query_row(
            "SELECT count(*) FROM blobs b LEFT JOIN blob_data d ON d.id = b.data_id WHERE d.id IS NULL",
            [],
            |r| r.get(0),
        )
        .during("check metadata")?;
    if orphans > 0 {
        report
            .problems
            .push(format!("{orphans} metadata rows without bytes"));
    }
    Ok(report)
}
