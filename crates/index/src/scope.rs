//! Named scopes: membership rows, generations, and their queries.
//!
//! A scope's `generation` is bumped in the transaction that changes its membership, so a
//! `(scope, generation)` pair names one exact member set: discovery caches its haves under
//! that key. Members get a per-scope sequence number that only grows, so they can be listed
//! in insertion order and fetched incrementally (`seq > N`). A removal does not show up in an
//! incremental fetch, so it bumps a per-scope `removals` counter in the same transaction:
//! [`Index::scope_delta`](crate::Index::scope_delta) reads the counters and the new members in one snapshot, and an
//! unchanged `removals` proves the fetch is complete (see [`ScopeDelta`]).

use cid::Cid;
use seedbank_blobstore::rusqlite::{Connection, OptionalExtension};
use seedbank_blobstore::{PoolKind, PutOptions, Store};

use crate::access;
use crate::error::{Result, SqlContext};
use crate::row::{cid_at, cid_from_row, CidRow};
use crate::tables::{add_member, seq_of};

/// One named scope's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeInfo {
    /// The scope's name.
    pub name: String,
    /// Bumped on every membership change; 0 for a scope that never had a member.
    pub generation: u64,
    /// Sequence number of the newest member (members are numbered from 1).
    pub last_seq: u64,
    /// Members ever removed from the scope.
    pub removals: u64,
}

/// A scope's members and generation, read in one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSnapshot {
    /// The generation these members belong to.
    pub generation: u64,
    /// `(seq, cid)` in insertion order.
    pub members: Vec<(u64, Cid)>,
}

/// What changed in a named scope since a member sequence number, read in one snapshot by
/// [`Index::scope_delta`](crate::Index::scope_delta).
///
/// # Guarantee
///
/// Within a scope, `generation`, `last_seq` and `removals` only grow, and each is bumped in
/// the write transaction that changes the membership: adding a member hands it sequence
/// number `last_seq + 1` and bumps `generation`; removing one bumps `generation` and
/// `removals`. Sequence numbers are never reused (a blob added again after its removal gets a
/// new one). Hence, for a member set `M` read together with `(last_seq: s, removals: r)` in
/// one snapshot, and `delta = scope_delta(scope, s)` called after that read returned:
///
/// - if `delta.removals == r`, nothing was removed in between, and the members now are
///   exactly `M` plus `delta.added`;
/// - if moreover `delta.added` is empty, the members are exactly `M` (and `delta.generation`
///   is the generation `M` was read at).
///
/// Any other outcome (`removals` grew) means the member set must be read again in full,
/// e.g. with `scope_delta(scope, 0)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeDelta {
    /// The scope's generation (0 for a scope that never had a member).
    pub generation: u64,
    /// The last member sequence number handed out (0 before the first member): pass it as
    /// `after_seq` to read the next delta. The member that got it may have been removed.
    pub last_seq: u64,
    /// Members ever removed from the scope.
    pub removals: u64,
    /// Members numbered after the `after_seq` asked for, as `(seq, cid)` in insertion order.
    pub added: Vec<(u64, Cid)>,
}

/// Removes a blob from `scope`; bumps the generation and the removal count if it was a
/// member.
fn remove_member(conn: &Connection, scope: &str, b: &CidRow) -> Result<bool> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM scope_members
             WHERE scope = (SELECT id FROM scopes WHERE name = ?1)
               AND blob = (SELECT seq FROM blob_index WHERE mh = ?2 AND codec = ?3)",
        )
        .during("prepare remove scope member")?
        .execute((scope, &b.mh, b.codec))
        .during("remove scope member")?;
    if removed > 0 {
        conn.prepare_cached(
            "UPDATE scopes SET generation = generation + 1, removals = removals + ?2
             WHERE name = ?1",
        )
        .during("prepare bump scope")?
        .execute((scope, removed as i64))
        .during("bump scope generation")?;
    }
    Ok(removed > 0)
}

/// Members of `scope` numbered after `after`, as `(seq, cid)` in insertion order.
fn members_after(conn: &Connection, scope: &str, after: u64) -> Result<Vec<(u64, Cid)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.seq, i.mh, i.codec, i.version FROM scope_members m
             JOIN blob_index i ON i.seq = m.blob
             WHERE m.scope = (SELECT id FROM scopes WHERE name = ?1) AND m.seq > ?2
             ORDER BY m.seq",
        )
        .during("prepare scope members")?;
    let rows = stmt
        .query_map((scope, after as i64), |r| {
            Ok((r.get::<_, i64>(0)?, cid_at(r, 1)?))
        })
        .during("scope members")?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, (mh, codec, version)) = row.during("scope member row")?;
        out.push((seq as u64, cid_from_row(&mh, codec, version)?));
    }
    Ok(out)
}

/// The scope's `(generation, last_seq, removals)`, zeros for a scope that does not exist.
fn counters_of(conn: &Connection, scope: &str) -> Result<(u64, u64, u64)> {
    let found: Option<(i64, i64, i64)> = conn
        .prepare_cached("SELECT generation, last_seq, removals FROM scopes WHERE name = ?1")
        .during("prepare scope counters")?
        .query_row([scope], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .during("scope counters")?;
    let (generation, last_seq, removals) = found.unwrap_or_default();
    Ok((generation as u64, last_seq as u64, removals as u64))
}

/// The generation of `scope`, 0 for a scope that does not exist.
fn generation_of(conn: &Connection, scope: &str) -> Result<u64> {
    let g: Option<i64> = conn
        .prepare_cached("SELECT generation FROM scopes WHERE name = ?1")
        .during("prepare scope generation")?
        .query_row([scope], |r| r.get(0))
        .optional()
        .during("scope generation")?;
    Ok(g.unwrap_or(0) as u64)
}

/// The generation and members of `scope`, read in one transaction.
fn snapshot_of(conn: &Connection, scope: &str) -> Result<ScopeSnapshot> {
    let tx = conn.unchecked_transaction().during("begin read")?;
    let generation = generation_of(&tx, scope)?;
    let members = members_after(&tx, scope, 0)?;
    tx.finish().during("end read")?;
    Ok(ScopeSnapshot {
        generation,
        members,
    })
}

/// The counters of `scope` and its members numbered after `after_seq`, read in one
/// transaction.
fn delta_of(conn: &Connection, scope: &str, after_seq: u64) -> Result<ScopeDelta> {
    let tx = conn.unchecked_transaction().during("begin read")?;
    let (generation, last_seq, removals) = counters_of(&tx, scope)?;
    let added = members_after(&tx, scope, after_seq)?;
    tx.finish().during("end read")?;
    Ok(ScopeDelta {
        generation,
        last_seq,
        removals,
        added,
    })
}

/// Every scope with its counters, by name.
fn all_scopes(conn: &Connection) -> Result<Vec<ScopeInfo>> {
    let mut stmt = conn
        .prepare_cached("SELECT name, generation, last_seq, removals FROM scopes ORDER BY name")
        .during("prepare scopes")?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ScopeInfo {
                name: r.get(0)?,
                generation: r.get::<_, i64>(1)? as u64,
                last_seq: r.get::<_, i64>(2)? as u64,
                removals: r.get::<_, i64>(3)? as u64,
            })
        })
        .during("scopes")?;
    rows.collect::<Result<Vec<_>, _>>().during("scope row")
}

/// Adds the indexed ones of `cids` to `scope`. Returns how many became new members, and
/// the CIDs that were never indexed (stored without the index, or not stored), which the
/// caller indexes by putting them again.
fn add_members(conn: &Connection, scope: &str, cids: &[Cid]) -> Result<(u64, Vec<Cid>)> {
    let (mut added, mut unindexed) = (0, Vec::new());
    for cid in cids {
        match seq_of(conn, &CidRow::of(cid))? {
            Some(blob) => added += u64::from(add_member(conn, scope, blob)?),
            None => unindexed.push(*cid),
        }
    }
    Ok((added, unindexed))
}

/// Removes `cids` from `scope`. Returns how many were members.
fn remove_members(conn: &Connection, scope: &str, cids: &[Cid]) -> Result<u64> {
    let mut removed = 0;
    for cid in cids {
        if remove_member(conn, scope, &CidRow::of(cid))? {
            removed += 1;
        }
    }
    Ok(removed)
}

// ---- The scope calls of `Index`: reads on a pool, membership changes on the lane.

/// [`Index::scope_members_since`](crate::Index::scope_members_since), on the data pool.
pub(crate) async fn members_since(
    store: &Store,
    scope: &str,
    after: u64,
) -> Result<Vec<(u64, Cid)>> {
    let scope = scope.to_string();
    access::read(store, PoolKind::Data, move |c| {
        members_after(c, &scope, after)
    })
    .await
}

/// [`Index::scope_snapshot`](crate::Index::scope_snapshot), on the data pool.
pub(crate) async fn snapshot(store: &Store, scope: &str) -> Result<ScopeSnapshot> {
    let scope = scope.to_string();
    access::read(store, PoolKind::Data, move |c| snapshot_of(c, &scope)).await
}

/// [`Index::scope_delta`](crate::Index::scope_delta), on the data pool.
pub(crate) async fn delta(store: &Store, scope: &str, after_seq: u64) -> Result<ScopeDelta> {
    let scope = scope.to_string();
    access::read(store, PoolKind::Data, move |c| {
        delta_of(c, &scope, after_seq)
    })
    .await
}

/// [`Index::generation`](crate::Index::generation), on the `info` pool.
pub(crate) async fn generation(store: &Store, scope: &str) -> Result<u64> {
    let scope = scope.to_string();
    access::read(store, PoolKind::Info, move |c| generation_of(c, &scope)).await
}

/// [`Index::scopes`](crate::Index::scopes), on the data pool.
pub(crate) async fn scopes(store: &Store) -> Result<Vec<ScopeInfo>> {
    access::read(store, PoolKind::Data, all_scopes).await
}

/// Adds the indexed ones of `cids` to `scope` through the lane: how many became new
/// members, and the CIDs never indexed, for the caller to put again through the index.
pub(crate) async fn add(
    store: &Store,
    scope: &str,
    cids: &[Cid],
    opts: PutOptions,
) -> Result<(u64, Vec<Cid>)> {
    let (scope, cids) = (scope.to_string(), cids.to_vec());
    access::write(store, opts, move |c| add_members(c, &scope, &cids)).await
}

/// [`Index::remove_from_scope`](crate::Index::remove_from_scope), through the lane.
pub(crate) async fn remove(
    store: &Store,
    scope: &str,
    cids: &[Cid],
    opts: PutOptions,
) -> Result<u64> {
    let (scope, cids) = (scope.to_string(), cids.to_vec());
    access::write(store, opts, move |c| remove_members(c, &scope, &cids)).await
}
