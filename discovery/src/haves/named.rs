//! Builds a named scope's snapshot from the index's `scopes` and `scope_members` tables.
//!
//! Incremental rule. In the index, adding a member bumps the scope's `generation` and
//! `last_seq` by one each, in the same transaction; removing one bumps `generation` only.
//! So if `generation` grew by exactly as much as `last_seq` since the previous snapshot, no
//! member was removed, and the previous items plus the members with `seq > last_seq` are
//! exactly the current members. Any other difference means a removal: full build.

use std::collections::HashMap;
use std::sync::Arc;

use seedbank_blobstore::rusqlite::Connection;

use super::sql::{members_after, scope_row, During};
use super::{BuildKind, Haves, NamedCursor, Node, NodeState, Sealed};
use crate::error::Result;
use crate::item::ItemId;
use crate::scope::Scope;

/// Builds the snapshot of scope `name`, from `prev` when that is provably correct.
pub(crate) fn build(conn: &Connection, name: &str, prev: Option<&Haves>) -> Result<Haves> {
    let tx = conn.unchecked_transaction().during("begin haves read")?;
    let haves = build_in(&tx, name, prev)?;
    tx.finish().during("end haves read")?;
    Ok(haves)
}

fn build_in(conn: &Connection, name: &str, prev: Option<&Haves>) -> Result<Haves> {
    let scope = Scope::named(name);
    let Some((id, generation, last_seq)) = scope_row(conn, name)? else {
        let cursor = NamedCursor {
            scope_id: None,
            last_seq: 0,
        };
        let sealed = Arc::new(Sealed::new(HashMap::new()));
        return Ok(Haves::new(scope, 0, BuildKind::Full, sealed, Some(cursor)));
    };
    let cursor = NamedCursor {
        scope_id: Some(id),
        last_seq,
    };
    if let Some((prev, prev_cursor)) = prev.and_then(|p| p.named_cursor().map(|c| (p, c))) {
        let only_added = prev_cursor.scope_id == Some(id)
            && generation >= prev.generation()
            && last_seq >= prev_cursor.last_seq
            && generation - prev.generation() == last_seq - prev_cursor.last_seq;
        if only_added && generation == prev.generation() {
            let sealed = prev.sealed().clone();
            return Ok(Haves::new(scope, generation, BuildKind::Reused, sealed, Some(cursor)));
        }
        if only_added {
            let mut nodes = prev.sealed().nodes.clone();
            add_members(&mut nodes, members_after(conn, id, prev_cursor.last_seq)?);
            let sealed = Arc::new(Sealed::new(nodes));
            return Ok(Haves::new(scope, generation, BuildKind::Incremental, sealed, Some(cursor)));
        }
    }
    let mut nodes = HashMap::new();
    add_members(&mut nodes, members_after(conn, id, 0)?);
    let sealed = Arc::new(Sealed::new(nodes));
    Ok(Haves::new(scope, generation, BuildKind::Full, sealed, Some(cursor)))
}

fn add_members(nodes: &mut HashMap<ItemId, Node>, members: Vec<cid::Cid>) {
    nodes.reserve(members.len());
    for cid in members {
        nodes.entry(ItemId::of(&cid)).or_insert(Node {
            cid,
            depth: 0,
            state: NodeState::Present,
        });
    }
}
