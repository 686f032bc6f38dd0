//! Deleting blobs with everything the index holds about them, in one lane transaction.
//!
//! Deleting a CID removes its bytes (unless another codec of the same multihash still needs
//! them), its metadata row, its `blob_index` row, links and attributes, and its scope
//! memberships (bumping each scope's `generation` and `removals`, so discovery's named-scope
//! haves rebuild). Then the deletion marker moves past `max(seq)`: the DAG generation grows,
//! so discovery's DAG-scope haves rebuild too, and [`DagSnapshot::indexed_after`] reports
//! that a deletion happened since an older generation. Discovery never advertises a deleted
//! blob: every snapshot it builds is keyed by a generation read in the same snapshot.
//!
//! [`DagSnapshot::indexed_after`]: crate::DagSnapshot::indexed_after

use std::collections::HashSet;
use std::sync::Arc;

use cid::Cid;
use seedbank_blobstore::lifecycle::Deleter;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{Priority, PutOptions, Store};

use crate::access;
use crate::error::{Error, Result, SqlContext};
use crate::pin::{key_of, pinned_directly, Key, TempPins};

/// Options for [`Index::delete`](crate::Index::delete).
#[derive(Clone, Debug)]
pub struct DeleteOptions {
    /// Delete even blobs a pin or temp pin protects (default false: refuse them).
    pub force: bool,
    /// Priority and source of the lane write (default `Interactive`, source `delete`).
    pub put: PutOptions,
}

impl Default for DeleteOptions {
    fn default() -> Self {
        DeleteOptions {
            force: false,
            put: PutOptions::new(Priority::Interactive, "delete"),
        }
    }
}

impl DeleteOptions {
    /// Default options with `force` set.
    pub fn forced() -> Self {
        DeleteOptions {
            force: true,
            ..Default::default()
        }
    }
}

/// What a deletion freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freed {
    /// CIDs whose blob was stored and is gone now.
    pub blobs: u64,
    /// Bytes of blob data removed.
    pub bytes: u64,
}

impl std::ops::AddAssign for Freed {
    fn add_assign(&mut self, o: Freed) {
        self.blobs += o.blobs;
        self.bytes += o.bytes;
    }
}

/// The DAG generation (`max(seq)`, deletion marker included).
pub(crate) fn max_seq(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM blob_index")
        .during("prepare max seq")?
        .query_row([], |r| r.get(0))
        .during("max seq")
}

/// Deletes one key's blob and index rows. Returns what was freed and whether anything (blob
/// or index row) was removed.
pub(crate) fn delete_key(d: &Deleter<'_>, key: &Key) -> Result<(Freed, bool)> {
    let gone = d.delete(&key.0, key.1)?;
    let conn = d.conn();
    let seq: Option<i64> = crate::tables::seq_of_key(conn, key)?;
    if let Some(seq) = seq {
        conn.prepare_cached("DELETE FROM links WHERE src = ?1")
            .during("prepare delete links")?
            .execute([seq])
            .during("delete links")?;
        conn.prepare_cached("DELETE FROM attributes WHERE src = ?1")
            .during("prepare delete attributes")?
            .execute([seq])
            .during("delete attributes")?;
        let scopes: Vec<i64> = conn
            .prepare_cached("DELETE FROM scope_members WHERE blob = ?1 RETURNING scope")
            .during("prepare delete memberships")?
            .query_map([seq], |r| r.get(0))
            .during("delete memberships")?
            .collect::<Result<_, _>>()
            .during("delete memberships")?;
        for scope in scopes {
            conn.prepare_cached(
                "UPDATE scopes SET generation = generation + 1, removals = removals + 1
                 WHERE id = ?1",
            )
            .during("prepare bump scope")?
            .execute([scope])
            .during("bump scope on delete")?;
        }
        conn.prepare_cached("DELETE FROM blob_index WHERE seq = ?1")
            .during("prepare delete index row")?
            .execute([seq])
            .during("delete index row")?;
    }
    let freed = Freed {
        blobs: u64::from(gone.existed),
        bytes: gone.bytes_freed,
    };
    Ok((freed, gone.existed || seq.is_some()))
}

/// Moves the deletion marker to `max(before, max(seq)) + 1`, `before` being `max(seq)` read
/// before anything was deleted in this transaction, so the DAG generation grows even when
/// the newest rows were the ones deleted.
pub(crate) fn bump_generation(conn: &Connection, before: i64) -> Result<()> {
    let next = before.max(max_seq(conn)?) + 1;
    conn.prepare_cached(
        "INSERT INTO blob_index (seq, mh, codec, version, links, indexable)
         VALUES (?1, X'', 0, 0, 0, 0)
         ON CONFLICT (mh, codec) DO UPDATE SET seq = excluded.seq",
    )
    .during("prepare move deletion marker")?
    .execute([next])
    .during("move deletion marker")?;
    Ok(())
}

/// Why `key` may not be deleted: the first pin or temp pin that reaches it (walking its
/// ancestors through the link index), or `None`. At most `limit` ancestors are visited.
fn protected_by(
    conn: &Connection,
    cid: &Cid,
    temp: &TempPins,
    limit: usize,
) -> Result<Option<String>> {
    let start = key_of(cid);
    let mut seen: HashSet<Key> = HashSet::from([start.clone()]);
    let mut stack = vec![start];
    while let Some(k) = stack.pop() {
        if temp.contains(&k) {
            return Ok(Some("temp pin".into()));
        }
        if let Some(name) = pinned_directly(conn, &k)? {
            return Ok(Some(format!("pin {name}")));
        }
        for parent in parents(conn, &k)? {
            if seen.insert(parent.clone()) {
                if seen.len() > limit {
                    return Err(Error::LimitExceeded { root: *cid, limit });
                }
                stack.push(parent);
            }
        }
    }
    Ok(None)
}

/// The indexed blobs linking to `key`.
fn parents(conn: &Connection, key: &Key) -> Result<Vec<Key>> {
    let tkey = crate::row::target_key_of_mh(&key.0);
    conn.prepare_cached(
        "SELECT i.mh, i.codec FROM links l JOIN blob_index i ON i.seq = l.src
         WHERE l.tkey = ?1 AND l.mh = ?2 AND l.codec = ?3",
    )
    .during("prepare parents")?
    .query_map((tkey, &key.0, key.1), |r| Ok((r.get(0)?, r.get(1)?)))
    .during("parents")?
    .collect::<Result<_, _>>()
    .during("parent row")
}

/// The blobs `key` links to (empty if it is not indexed).
pub(crate) fn children(conn: &Connection, key: &Key) -> Result<Vec<Key>> {
    conn.prepare_cached(
        "SELECT l.mh, l.codec FROM blob_index i JOIN links l ON l.src = i.seq
         WHERE i.mh = ?1 AND i.codec = ?2",
    )
    .during("prepare children")?
    .query_map((&key.0, key.1), |r| Ok((r.get(0)?, r.get(1)?)))
    .during("children")?
    .collect::<Result<_, _>>()
    .during("child row")
}

/// Deletes `keys` in the open lane transaction (after any protection check) and bumps the
/// generations if anything was removed.
pub(crate) fn delete_keys(d: &Deleter<'_>, keys: &[Key]) -> Result<Freed> {
    let before = max_seq(d.conn())?;
    let (mut freed, mut changed) = (Freed::default(), false);
    for k in keys {
        let (f, c) = delete_key(d, k)?;
        freed += f;
        changed |= c;
    }
    if changed {
        bump_generation(d.conn(), before)?;
    }
    Ok(freed)
}

/// Deletes `cids` in the open lane transaction: unless `force`, first refuses with
/// [`Error::Pinned`] if a pin or temp pin protects any of them, so either all go or none.
fn delete_cids(
    d: &Deleter<'_>,
    cids: &[Cid],
    temp: &TempPins,
    limit: usize,
    force: bool,
) -> Result<Freed> {
    if !force {
        for cid in cids {
            if let Some(by) = protected_by(d.conn(), cid, temp, limit)? {
                return Err(Error::Pinned { cid: *cid, by });
            }
        }
    }
    let keys: Vec<Key> = cids.iter().map(key_of).collect();
    delete_keys(d, &keys)
}

/// [`Index::delete`](crate::Index::delete): `cids` and their index rows in one lane write,
/// refused if a pin or temp pin in `temp` protects one (unless `opts.force`).
pub(crate) async fn delete(
    store: &Store,
    temp: &Arc<TempPins>,
    limit: usize,
    cids: &[Cid],
    opts: DeleteOptions,
) -> Result<Freed> {
    let (cids, temp, force) = (cids.to_vec(), temp.clone(), opts.force);
    access::write_deleting(store, opts.put, move |d| {
        delete_cids(d, &cids, &temp, limit, force)
    })
    .await
}
