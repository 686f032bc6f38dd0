//! Deleting a blob costs a few index lookups, never a scan: every statement a delete or a
//! GC sweep runs per blob is answered by SEARCH on an index (checked with `EXPLAIN QUERY
//! PLAN` on the lane's own connection), and the writer does not enforce foreign keys
//! (which would scan child tables without an index on every delete; the lane keeps the
//! tables consistent itself).

use seedbank_blobstore::{PutOptions, Store};

/// The per-blob statements of `delete_key` / `delete_blob_rows` (crates/index/src/delete.rs,
/// crates/blobstore/src/lifecycle.rs), with sample parameters.
const PER_BLOB: &[&str] = &[
    "DELETE FROM blobs WHERE mh = x'00' AND codec = 85 RETURNING data_id, size",
    "SELECT 1 FROM blobs WHERE mh = x'00' LIMIT 1",
    "DELETE FROM blob_data WHERE id = 1",
    "SELECT seq FROM blob_index WHERE mh = x'00' AND codec = 85",
    "DELETE FROM links WHERE src = 1",
    "DELETE FROM attributes WHERE src = 1",
    "DELETE FROM scope_members WHERE blob = 1 RETURNING scope",
    "UPDATE scopes SET generation = generation + 1, removals = removals + 1 WHERE id = 1",
    "DELETE FROM blob_index WHERE seq = 1",
    "SELECT l.mh, l.codec FROM blob_index i JOIN links l ON l.src = i.seq WHERE i.mh = x'00' AND i.codec = 85",
    "SELECT i.mh, i.codec FROM links l JOIN blob_index i ON i.seq = l.src WHERE l.tkey = 1 AND l.mh = x'00' AND l.codec = 85",
    "SELECT name FROM pins WHERE root_mh = x'00' AND root_codec = 85 LIMIT 1",
    "SELECT p.name FROM blob_index i JOIN scope_members m ON m.blob = i.seq JOIN scopes s ON s.id = m.scope JOIN pins p ON p.scope = s.name WHERE i.mh = x'00' AND i.codec = 85 LIMIT 1",
];

async fn plans(store: &Store) -> Vec<(String, Vec<String>, i64)> {
    store
        .write(PutOptions::default(), |conn| {
            let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
            let mut out = Vec::new();
            for sql in PER_BLOB {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let steps: Vec<String> = stmt
                    .query_map([], |r| r.get::<_, String>(3))?
                    .collect::<Result<_, _>>()?;
                out.push((sql.to_string(), steps, fk));
            }
            Ok(out)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn every_per_blob_delete_statement_searches_an_index() {
    let t = crate::common::open().await;
    let found = plans(t.store()).await;
    for (sql, steps, fk) in &found {
        assert_eq!(*fk, 0, "the writer enforces foreign keys");
        assert!(
            steps.iter().all(|s| !s.starts_with("SCAN")),
            "{sql} scans: {steps:?}"
        );
    }
}
