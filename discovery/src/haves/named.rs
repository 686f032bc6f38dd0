//! Builds a named scope's snapshot through the index's scope queries.
//!
//! Incremental rule. In the index, adding a member bumps the scope's generation and hands
//! out the next member sequence number, in one transaction; removing one bumps the
//! generation only. So if the generation grew by exactly as much as the newest sequence
//! number since the previous snapshot, no member was removed, and the previous items plus
//! the members with a higher sequence number are the current members. Any other difference
//! means a removal (or a race with a write): full build, from one consistent
//! [`Index::scope_snapshot`].
//!
//! The incremental path reads the generation first, then the new members, and keeps only
//! those numbered up to what the generation accounts for; a member added in between shows
//! up as a mismatch and forces the full build.

use std::collections::HashMap;
use std::sync::Arc;

use cid::Cid;
use seedbank_index::Index;

use super::{BuildKind, Haves, NamedCursor, Node, NodeState, Sealed};
use crate::error::Result;
use crate::item::ItemId;
use crate::scope::Scope;

/// Builds the snapshot of scope `name`, from `prev` when that is provably correct.
pub(crate) async fn build(index: &Index, name: &str, prev: Option<&Haves>) -> Result<Haves> {
    if let Some(prev) = prev {
        if let Some(haves) = extend(index, name, prev).await? {
            return Ok(haves);
        }
    }
    let snapshot = index.scope_snapshot(name).await?;
    let last_seq = snapshot.members.last().map_or(0, |(seq, _)| *seq);
    let mut nodes = HashMap::new();
    add_members(&mut nodes, snapshot.members.into_iter().map(|(_, cid)| cid));
    let sealed = Arc::new(Sealed::new(nodes));
    let cursor = NamedCursor { last_seq };
    let scope = Scope::named(name);
    Ok(Haves::new(
        scope,
        snapshot.generation,
        BuildKind::Full,
        sealed,
        Some(cursor),
    ))
}

/// `prev` plus the members added since, or `None` if that would not be exact.
async fn extend(index: &Index, name: &str, prev: &Haves) -> Result<Option<Haves>> {
    let Some(cursor) = prev.named_cursor() else {
        return Ok(None);
    };
    let generation = index.generation(name).await?;
    let Some(added) = generation.checked_sub(prev.generation()) else {
        return Ok(None);
    };
    let scope = Scope::named(name);
    if added == 0 {
        let sealed = prev.sealed().clone();
        return Ok(Some(Haves::new(
            scope,
            generation,
            BuildKind::Reused,
            sealed,
            Some(cursor),
        )));
    }
    let members = index.scope_members_since(name, cursor.last_seq).await?;
    let last_seq = cursor.last_seq + added;
    let new: Vec<(u64, Cid)> = members
        .into_iter()
        .take_while(|(s, _)| *s <= last_seq)
        .collect();
    let contiguous = new.len() as u64 == added
        && new
            .iter()
            .zip(cursor.last_seq + 1..)
            .all(|((seq, _), want)| *seq == want);
    if !contiguous {
        return Ok(None);
    }
    let mut nodes = prev.sealed().nodes.clone();
    add_members(&mut nodes, new.into_iter().map(|(_, cid)| cid));
    let sealed = Arc::new(Sealed::new(nodes));
    let cursor = NamedCursor { last_seq };
    Ok(Some(Haves::new(
        scope,
        generation,
        BuildKind::Incremental,
        sealed,
        Some(cursor),
    )))
}

fn add_members(nodes: &mut HashMap<ItemId, Node>, members: impl Iterator<Item = Cid>) {
    for cid in members {
        nodes.entry(ItemId::of(&cid)).or_insert(Node {
            cid,
            depth: 0,
            state: NodeState::Present,
        });
    }
}
