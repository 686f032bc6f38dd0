//! Row helpers shared by the modules that write and read the index tables (`blob_index`,
//! `scopes`, `scope_members`): one place for the statements several features run.

use seedbank_blobstore::rusqlite::{Connection, OptionalExtension};

use crate::error::{Result, SqlContext};
use crate::row::CidRow;

/// The `blob_index.seq` of a blob, if it was indexed.
pub(crate) fn seq_of(conn: &Connection, b: &CidRow) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT seq FROM blob_index WHERE mh = ?1 AND codec = ?2")
        .during("prepare find indexed blob")?
        .query_row((&b.mh, b.codec), |r| r.get(0))
        .optional()
        .during("find indexed blob")
}

/// The `blob_index.seq` of a storage key `(multihash, codec)`, if it was indexed.
pub(crate) fn seq_of_key(conn: &Connection, key: &(Vec<u8>, i64)) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT seq FROM blob_index WHERE mh = ?1 AND codec = ?2")
        .during("prepare find indexed blob")?
        .query_row((&key.0, key.1), |r| r.get(0))
        .optional()
        .during("find indexed blob")
}

/// Adds the indexed blob `blob` (its `blob_index.seq`) to `scope`, created on first use.
/// Returns true if it was not a member yet, in which case the member got the next sequence
/// number and the generation was bumped.
pub(crate) fn add_member(conn: &Connection, scope: &str, blob: i64) -> Result<bool> {
    let (id, last) = scope_row(conn, scope)?;
    let added = conn
        .prepare_cached(
            "INSERT INTO scope_members (scope, seq, blob) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )
        .during("prepare add scope member")?
        .execute((id, last + 1, blob))
        .during("add scope member")?
        == 1;
    if added {
        conn.prepare_cached(
            "UPDATE scopes SET last_seq = ?2, generation = generation + 1 WHERE id = ?1",
        )
        .during("prepare bump scope")?
        .execute((id, last + 1))
        .during("bump scope generation")?;
    }
    Ok(added)
}

/// The scope's `(id, last_seq)`, creating it if needed.
fn scope_row(conn: &Connection, scope: &str) -> Result<(i64, i64)> {
    let found = conn
        .prepare_cached("SELECT id, last_seq FROM scopes WHERE name = ?1")
        .during("prepare find scope")?
        .query_row([scope], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .during("find scope")?;
    if let Some(row) = found {
        return Ok(row);
    }
    conn.prepare_cached("INSERT INTO scopes (name) VALUES (?1)")
        .during("prepare create scope")?
        .execute([scope])
        .during("create scope")?;
    Ok((conn.last_insert_rowid(), 0))
}
