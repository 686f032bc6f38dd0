//! Breadth-first walks with depths, batch block lookups and DAG read snapshots.

use std::collections::{HashMap, HashSet};

use crate::common::{cid, fixture_bytes, import_fixture, open, read_all, SAMPLE_V1_ROOT};
use bytes::Bytes;
use cid::Cid;
use ipld_core::ipld::Ipld;
use seedbank_blobstore::codec;
use seedbank_index::testing::{node, raw};
use seedbank_index::{extract_links, DagWalk, Presence};

/// A CID's identity in the store: codec and multihash (CIDv0 and CIDv1 agree).
type Key = (u64, Vec<u8>);

fn key(cid: &Cid) -> Key {
    (cid.codec(), cid.hash().to_bytes())
}

/// `(depth, presence)` of every block of a walk, by key.
fn by_key(walk: &DagWalk) -> HashMap<Key, (u32, Presence)> {
    walk.blocks
        .iter()
        .map(|b| (key(&b.cid), (b.depth, b.presence)))
        .collect()
}

/// Breadth-first depths over a CAR's own blocks (and identity CIDs, whose bytes are their
/// digest): `(depth, present)` by key.
fn reference_depths(blocks: &HashMap<Key, Bytes>, root: Cid) -> HashMap<Key, (u32, bool)> {
    let mut out = HashMap::from([(key(&root), (0, false))]);
    let mut level = vec![root];
    let mut depth = 0;
    while !level.is_empty() {
        let mut next = Vec::new();
        for cid in level {
            let data = match blocks.get(&key(&cid)) {
                Some(data) => data.clone(),
                None if cid.hash().code() == 0 => Bytes::copy_from_slice(cid.hash().digest()),
                None => continue,
            };
            out.get_mut(&key(&cid)).unwrap().1 = true;
            for link in extract_links(cid.codec(), &data).links {
                out.entry(key(&link)).or_insert_with(|| {
                    next.push(link);
                    (depth + 1, false)
                });
            }
        }
        level = next;
        depth += 1;
    }
    out
}

#[tokio::test]
async fn a_walk_with_depths_reports_each_block_at_its_shortest_depth_with_its_presence() {
    let db = open().await;
    let (c, y) = (raw("c", 0), raw("y", 0));
    let gone = raw("never stored", 0);
    let b = node("b", &[*c.cid()]);
    let a = node("a", &[*b.cid()]);
    let m = node("m", &[*c.cid()]);
    let x = node("x", &[*y.cid()]);
    let root = node("root", &[*a.cid(), *m.cid(), *gone.cid(), *x.cid()]);
    db.put_many(
        vec![root.clone(), a, b, m, c.clone(), y],
        Default::default(),
    )
    .await
    .unwrap();
    db.store().put(x.clone()).await.unwrap();

    let walk = db.walk_with_depths(root.cid(), 100).await.unwrap();
    assert!(walk.complete);
    assert_eq!(walk.generation, db.dag_generation().await.unwrap());
    assert_eq!(walk.blocks[0].cid, *root.cid());
    let found = by_key(&walk);
    assert_eq!(found.len(), 7, "y hides behind x, whose links are unknown");
    assert_eq!(found[&key(root.cid())], (0, Presence::Indexed));
    assert_eq!(found[&key(gone.cid())], (1, Presence::Missing));
    assert_eq!(found[&key(x.cid())], (1, Presence::Unindexed));
    assert_eq!(
        found[&key(c.cid())],
        (2, Presence::Indexed),
        "through m, not a → b"
    );
    assert!(
        walk.blocks.windows(2).all(|w| w[0].depth <= w[1].depth),
        "breadth-first order"
    );
}

#[tokio::test]
async fn a_walk_with_depths_matches_a_reference_breadth_first_walk_of_each_fixture() {
    for fixture in [
        "sample-v1.car",
        "simple-unixfs-missing-blocks.car",
        "wikipedia-cryptographic-hash-function.car",
    ] {
        let (roots, blocks) = read_all(&fixture_bytes(fixture)).await.unwrap();
        let in_file: HashMap<Key, Bytes> = blocks
            .iter()
            .map(|b| (key(&b.cid), b.data.clone()))
            .collect();
        let db = open().await;
        import_fixture(&db, fixture).await.unwrap();
        for root in &roots {
            let walk = db.walk_with_depths(root, 1_000_000).await.unwrap();
            let found: HashMap<Key, (u32, bool)> = by_key(&walk)
                .into_iter()
                .map(|(k, (depth, presence))| (k, (depth, presence != Presence::Missing)))
                .collect();
            assert_eq!(found, reference_depths(&in_file, *root), "{fixture}");
            let dfs = db.walk(root, 1_000_000).await.unwrap();
            assert_eq!(
                walk.blocks.len(),
                dfs.present.len() + dfs.missing.len(),
                "{fixture}: the same blocks as the depth-first walk"
            );
        }
    }
}

#[tokio::test]
async fn a_walk_with_depths_stops_at_its_limit_with_the_first_blocks_in_breadth_first_order() {
    let db = open().await;
    import_fixture(&db, "sample-v1.car").await.unwrap();
    let root = cid(SAMPLE_V1_ROOT);
    let full = db.walk_with_depths(&root, 1_000_000).await.unwrap();
    assert!(full.complete && full.blocks.len() > 10);

    let cut = db.walk_with_depths(&root, 10).await.unwrap();
    assert!(!cut.complete);
    assert_eq!(cut.blocks.len(), 10);
    let full_depths = by_key(&full);
    for block in &cut.blocks {
        assert_eq!(
            full_depths[&key(&block.cid)],
            (block.depth, block.presence),
            "depths are final"
        );
    }
    let deepest = cut.blocks.last().unwrap().depth;
    let shallower = full.blocks.iter().filter(|b| b.depth < deepest).count();
    assert!(shallower <= 10, "every shallower block came first");

    let exact = db.walk_with_depths(&root, full.blocks.len()).await.unwrap();
    assert!(exact.complete, "a limit equal to the DAG's size is enough");
    assert!(!db.walk_with_depths(&root, 0).await.unwrap().complete);
}

#[tokio::test]
async fn links_many_reports_presence_and_links_in_input_order() {
    let db = open().await;
    let leaf = raw("leaf", 0);
    let linked = node("linked", &[*leaf.cid(), *leaf.cid()]);
    let plain = node("plain", &[*leaf.cid()]);
    let gone = raw("gone", 0);
    db.put(linked.clone()).await.unwrap();
    db.put(leaf.clone()).await.unwrap();
    db.store().put(plain.clone()).await.unwrap();
    let inline = serde_ipld_dagcbor::to_vec(&Ipld::List(vec![Ipld::Link(*gone.cid())])).unwrap();
    let identity = Cid::new_v1(
        codec::DAG_CBOR,
        cid::multihash::Multihash::<64>::wrap(0x00, &inline).unwrap(),
    );

    let asked = [
        *gone.cid(),
        *plain.cid(),
        identity,
        *linked.cid(),
        *leaf.cid(),
    ];
    let found = db.links_many(&asked).await.unwrap();
    let summary: Vec<(Presence, Vec<Cid>)> =
        found.into_iter().map(|b| (b.presence, b.links)).collect();
    assert_eq!(
        summary,
        vec![
            (Presence::Missing, vec![]),
            (Presence::Unindexed, vec![]),
            (Presence::Indexed, vec![*gone.cid()]),
            (Presence::Indexed, vec![*leaf.cid(), *leaf.cid()]),
            (Presence::Indexed, vec![]),
        ]
    );
}

#[tokio::test]
async fn a_dag_read_sees_one_snapshot_while_blobs_are_committed() {
    let db = open().await;
    let first = db.put(raw("first", 0)).await.unwrap();
    let late = raw("late", 0);
    let late_cid = *late.cid();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let (written, written_rx) = std::sync::mpsc::channel::<()>();
    let reader = db.clone();
    let read = tokio::spawn(async move {
        reader
            .read_dag(move |dag| {
                let before = dag.generation()?;
                started_tx.send(()).unwrap();
                written_rx.recv().unwrap();
                let after = dag.generation()?;
                let late = dag.links_many(&[late_cid])?[0].presence;
                let since = dag.indexed_after(0, 10)?;
                Ok((before, after, late, since))
            })
            .await
    });
    started.await.unwrap();
    db.put(late).await.unwrap();
    written.send(()).unwrap();
    let (before, after, presence, since) = read.await.unwrap().unwrap();
    assert_eq!((before, after), (1, 1), "the snapshot does not move");
    assert_eq!(
        presence,
        Presence::Missing,
        "committed after the snapshot began"
    );
    assert_eq!(since, Some(vec![first]));
    assert_eq!(db.dag_generation().await.unwrap(), 2);
}

#[tokio::test]
async fn indexed_after_lists_blobs_indexed_since_a_generation_or_none_past_its_cap() {
    let db = open().await;
    let cids = db
        .put_many(
            (0..5).map(|i| raw(&format!("i{i}"), 0)).collect(),
            Default::default(),
        )
        .await
        .unwrap();
    db.store().put(raw("not indexed", 0)).await.unwrap();
    let (since_two, all, capped) = db
        .read_dag(|dag| {
            Ok((
                dag.indexed_after(2, 10)?,
                dag.indexed_after(0, 5)?,
                dag.indexed_after(0, 4)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(since_two, Some(cids[2..].to_vec()));
    assert_eq!(all, Some(cids.clone()));
    assert_eq!(capped, None, "more than the cap");
    let unique: HashSet<Cid> = cids.into_iter().collect();
    assert_eq!(unique.len(), 5);
}
