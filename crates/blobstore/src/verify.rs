//! Store verification (`seedbank verify`): re-hash every stored blob and run SQLite's integrity check.

use rusqlite::Connection;

use crate::cid::{cid_from_parts, verify};
use crate::error::{Result, SqlContext};

/// Result of [`Store::verify`](crate::Store::verify).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// One line per problem found (empty when the store is sound).
    pub problems: Vec<String>,
}

/// Re-hashes every blob's bytes against its multihash and runs `PRAGMA integrity_check`.
pub(crate) fn verify_all(conn: &Connection) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let tx = conn.unchecked_transaction().during("begin verify")?;
    {
        let mut stmt = tx
            .prepare("SELECT mh, data FROM blob_data")
            .during("prepare verify")?;
        let mut rows = stmt.query([]).during("scan blobs")?;
        while let Some(row) = rows.next().during("scan blobs")? {
            let mh: Vec<u8> = row.get(0).during("read multihash")?;
            let data: Vec<u8> = row
                .get_ref(1)
                .during("read data")?
                .as_blob()
                .unwrap_or_default()
                .to_vec();
            report.blobs_checked += 1;
            let Some(cid) = cid_from_parts(1, crate::codec::RAW, &mh) else {
                report
                    .problems
                    .push(format!("unparseable multihash {}", hex(&mh)));
                continue;
            };
            if let Err(e) = verify(&cid, &data) {
                report.problems.push(format!("blob {}: {e}", cid));
            }
        }
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
