//! Builds a named scope's snapshot from the index's [`Index::scope_delta`].
//!
//! Incremental rule: the guarantee of [`ScopeDelta`](seedbank_index::ScopeDelta). A snapshot
//! keeps the scope's `last_seq` and `removals` read in the same index snapshot as its
//! members. The next build reads `scope_delta(name, last_seq)`, again in one index snapshot:
//! if `removals` is unchanged, nothing was removed, so the previous items plus the `added`
//! members are exactly the current members (and with nothing added, the previous items are
//! reused as they are). If `removals` grew, the build reads every member again.
//!
//! Sorting and sealing the items (and copying the previous ones) is CPU work proportional
//! to the scope: it runs on a blocking thread, off the async workers.

use std::collections::HashMap;
use std::sync::Arc;

use cid::Cid;
use seedbank_index::{Index, ScopeDelta};

use super::{BuildKind, Haves, NamedCursor, Node, NodeState, Sealed};
use crate::error::{Error, Result};
use crate::item::ItemId;
use crate::scope::Scope;

/// Builds the snapshot of scope `name`, from `prev` when that is provably correct.
pub(crate) async fn build(index: &Index, name: &str, prev: Option<Arc<Haves>>) -> Result<Haves> {
    if let Some((prev, cursor)) = prev.and_then(|p| {
        let cursor = p.named_cursor()?;
        Some((p, cursor))
    }) {
        let delta = index.scope_delta(name, cursor.last_seq).await?;
        // Counters only grow; a smaller generation means another database, so start over.
        if delta.removals == cursor.removals && delta.generation >= prev.generation() {
            let name = name.to_string();
            return blocking(move || extend(&name, &prev, delta)).await;
        }
    }
    let delta = index.scope_delta(name, 0).await?;
    let name = name.to_string();
    blocking(move || {
        let cursor = NamedCursor::of(&delta);
        let mut nodes = HashMap::with_capacity(delta.added.len());
        add_members(&mut nodes, delta.added.into_iter().map(|(_, cid)| cid));
        Haves::new(
            Scope::named(name),
            delta.generation,
            BuildKind::Full,
            Arc::new(Sealed::new(nodes)),
            Some(cursor),
        )
    })
    .await
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::task_failed("haves build", e))
}

/// `prev` plus the members of `delta`, which removed nothing since `prev` was read.
fn extend(name: &str, prev: &Haves, delta: ScopeDelta) -> Haves {
    let cursor = NamedCursor::of(&delta);
    let scope = Scope::named(name);
    if delta.added.is_empty() {
        let sealed = prev.sealed().clone();
        return Haves::new(
            scope,
            delta.generation,
            BuildKind::Reused,
            sealed,
            Some(cursor),
        );
    }
    let mut nodes = prev.sealed().nodes.clone();
    add_members(&mut nodes, delta.added.into_iter().map(|(_, cid)| cid));
    Haves::new(
        scope,
        delta.generation,
        BuildKind::Incremental,
        Arc::new(Sealed::new(nodes)),
        Some(cursor),
    )
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
