//! Haves snapshots: one build per (scope, generation), incremental only when exact.

use std::collections::BTreeMap;

use crate::common::*;
use cid::Cid;
use ipld_core::ipld::Ipld;
use seedbank_blobstore::{codec, Blob, PutOptions};
use seedbank_discovery::{BuildKind, Haves, HavesCache, HavesConfig, Scope};
use seedbank_sim::SimNode;

/// The snapshot a fresh cache builds from scratch.
async fn full(node: &SimNode, scope: &Scope) -> std::sync::Arc<Haves> {
    let fresh = HavesCache::new(node.index.clone(), HavesConfig::default());
    let haves = fresh.get(scope).await.unwrap();
    assert_eq!(haves.build_kind(), BuildKind::Full);
    haves
}

async fn assert_same(node: &SimNode, haves: &Haves) {
    let reference = full(node, haves.scope()).await;
    assert_eq!(haves.items(), reference.items(), "items and timestamps");
    assert_eq!(haves.missing(), reference.missing());
}

fn node_block(name: &str, links: &[Cid]) -> Blob {
    let map = Ipld::Map(BTreeMap::from([
        ("name".to_string(), Ipld::String(name.into())),
        (
            "links".to_string(),
            Ipld::List(links.iter().map(|c| Ipld::Link(*c)).collect()),
        ),
    ]));
    Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&map).unwrap())
}

#[tokio::test(start_paused = true)]
async fn concurrent_lookups_of_one_snapshot_build_it_once() {
    let mut net = Net::new();
    let node = net.node().await;
    node.put(raw_blobs("s", 0, 1000), Some("s")).await.unwrap();
    let scope = Scope::named("s");
    let lookups = (0..50).map(|_| node.haves.get(&scope));
    let snapshots = futures_util::future::join_all(lookups).await;
    assert!(snapshots.iter().all(|h| h.as_ref().unwrap().len() == 1000));
    let first = snapshots[0].as_ref().unwrap();
    assert!(snapshots
        .iter()
        .all(|h| std::sync::Arc::ptr_eq(h.as_ref().unwrap(), first)));
    assert_eq!(node.haves.stats().builds, 1);
    assert_eq!(node.haves.stats().hits, 49);
}

#[tokio::test(start_paused = true)]
async fn a_named_snapshot_is_extended_while_members_are_only_added_and_rebuilt_after_a_removal() {
    let mut net = Net::new();
    let node = net.node().await;
    let scope = Scope::named("s");
    let blobs = raw_blobs("s", 0, 120);
    node.put(blobs[..100].to_vec(), Some("s")).await.unwrap();
    assert_eq!(
        node.haves.get(&scope).await.unwrap().build_kind(),
        BuildKind::Full
    );

    node.put(raw_blobs("other", 0, 10), Some("other"))
        .await
        .unwrap();
    node.haves.get(&scope).await.unwrap();
    assert_eq!(
        node.haves.stats().builds,
        1,
        "another scope's writes leave this one cached"
    );

    node.put(blobs[100..].to_vec(), Some("s")).await.unwrap();
    let grown = node.haves.get(&scope).await.unwrap();
    assert_eq!(
        (grown.build_kind(), grown.len()),
        (BuildKind::Incremental, 120)
    );
    assert_same(&node, &grown).await;

    let opts = PutOptions::default();
    node.index
        .remove_from_scope("s", &[*blobs[3].cid()], opts)
        .await
        .unwrap();
    node.put(raw_blobs("s", 500, 1), Some("s")).await.unwrap();
    let shrunk = node.haves.get(&scope).await.unwrap();
    assert_eq!(
        (shrunk.build_kind(), shrunk.len()),
        (BuildKind::Full, 120),
        "a removal forces a scan"
    );
    assert!(!shrunk.contains(blobs[3].cid()));
    assert_same(&node, &shrunk).await;
}

#[tokio::test(start_paused = true)]
async fn a_dag_snapshot_is_reused_across_unrelated_writes_and_extended_when_missing_blocks_arrive()
{
    let mut net = Net::new();
    let node = net.node().await;
    let dag = dag(20, 4, 8);
    let absent: Vec<Blob> = dag.leaves.iter().flatten().step_by(5).cloned().collect();
    let scope = Scope::dag(dag.root_cid());
    node.put(dag.subset(|b, leaf| (b * 8 + leaf) % 5 != 0), None)
        .await
        .unwrap();
    let first = node.haves.get(&scope).await.unwrap();
    assert_eq!(first.build_kind(), BuildKind::Full);
    assert_eq!(first.missing().len(), absent.len());
    assert_eq!(
        first.items()[0],
        (0, dag.root_cid()),
        "the root is at depth 0"
    );

    node.put(raw_blobs("unrelated", 0, 5), None).await.unwrap();
    let reused = node.haves.get(&scope).await.unwrap();
    assert_eq!(reused.build_kind(), BuildKind::Reused);
    assert!(reused.generation() > first.generation());
    assert_same(&node, &reused).await;

    node.put(absent[..2].to_vec(), None).await.unwrap();
    let extended = node.haves.get(&scope).await.unwrap();
    assert_eq!(extended.build_kind(), BuildKind::Incremental);
    assert_eq!(extended.missing().len(), absent.len() - 2);
    assert_same(&node, &extended).await;
}

#[tokio::test(start_paused = true)]
async fn a_shorter_path_through_a_new_block_forces_a_full_dag_walk() {
    let mut net = Net::new();
    let node = net.node().await;
    let c = Blob::new(codec::RAW, &b"c"[..]);
    let b = node_block("b", &[*c.cid()]);
    let a = node_block("a", &[*b.cid()]);
    let m = node_block("m", &[*c.cid()]);
    let root = node_block("root", &[*a.cid(), *m.cid()]);
    node.put(vec![root.clone(), a, b, c.clone()], None)
        .await
        .unwrap();
    let scope = Scope::dag(*root.cid());
    let before = node.haves.get(&scope).await.unwrap();
    assert!(before.items().contains(&(3, *c.cid())));

    node.put(vec![m], None).await.unwrap();
    let after = node.haves.get(&scope).await.unwrap();
    assert_eq!(
        after.build_kind(),
        BuildKind::Full,
        "c moved up a level: no patching"
    );
    assert!(after.items().contains(&(2, *c.cid())));
    assert_same(&node, &after).await;
}

#[tokio::test(start_paused = true)]
async fn a_leaf_stored_without_the_index_is_walked_once_it_is_indexed() {
    let mut net = Net::new();
    let node = net.node().await;
    let y = Blob::new(codec::RAW, &b"y"[..]);
    let x = node_block("x", &[*y.cid()]);
    let root = node_block("root", &[*x.cid()]);
    node.put(vec![root.clone()], None).await.unwrap();
    node.store().put(x.clone()).await.unwrap();
    let scope = Scope::dag(*root.cid());
    let before = node.haves.get(&scope).await.unwrap();
    assert_eq!(
        (before.len(), before.missing().len()),
        (2, 0),
        "x is a leaf: links unknown"
    );

    node.put(vec![x], None).await.unwrap();
    let after = node.haves.get(&scope).await.unwrap();
    assert_eq!(after.build_kind(), BuildKind::Incremental);
    assert_eq!(after.missing(), [*y.cid()]);
    assert_same(&node, &after).await;
}
