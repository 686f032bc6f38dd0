//! DAG queries (`reachable`, `missing`, `links`, `backlinks`, `walk`) against a reference
//! traversal of the CAR fixtures done in memory with the reference decoders.

use std::collections::{HashMap, HashSet};

use crate::common::{
    cid, fixture_bytes, import_fixture, open, open_with, read_all, SAMPLE_V1_ROOT,
};
use bytes::Bytes;
use cid::Cid;
use seedbank_blobstore::{codec, Blob};
use seedbank_index::{extract_links, Error, IndexConfig, IndexPutOptions};

/// A CID's identity in the store: codec and multihash (CIDv0 and CIDv1 agree).
type Key = (u64, Vec<u8>);

fn key(cid: &Cid) -> Key {
    (cid.codec(), cid.hash().to_bytes())
}

/// Depth-first, pre-order walk of a CAR's own blocks from `root`: (present, missing).
fn reference_walk(blocks: &HashMap<Key, Bytes>, root: Cid) -> (Vec<Cid>, Vec<Cid>) {
    let (mut present, mut missing, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
    let mut stack = vec![root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(key(&cid)) {
            continue;
        }
        let Some(data) = blocks.get(&key(&cid)) else {
            if cid.hash().code() != 0 {
                missing.push(cid);
            }
            continue;
        };
        present.push(cid);
        stack.extend(extract_links(cid.codec(), data).links.into_iter().rev());
    }
    (present, missing)
}

fn keys(cids: &[Cid]) -> Vec<Key> {
    cids.iter().map(key).collect()
}

/// Imports `fixture`, then checks `reachable` and `missing` of every root against the
/// reference walk over the file's blocks. Returns (reachable, missing) of the first root.
async fn assert_consistent_with_file(fixture: &str) -> (Vec<Cid>, Vec<Cid>) {
    let (roots, blocks) = read_all(&fixture_bytes(fixture)).await.unwrap();
    let in_file: HashMap<Key, Bytes> = blocks
        .iter()
        .map(|b| (key(&b.cid), b.data.clone()))
        .collect();
    let db = open().await;
    let report = import_fixture(&db, fixture).await.unwrap();
    assert_eq!(report.blocks as usize, blocks.len());
    let mut first = None;
    let mut all_missing = HashSet::new();
    for root in &roots {
        let (present, missing) = reference_walk(&in_file, *root);
        let reachable = db.reachable(root).await.unwrap();
        let absent = db.missing(root).await.unwrap();
        assert_eq!(
            keys(&reachable),
            keys(&present),
            "{fixture}: reachable, in traversal order"
        );
        assert_eq!(keys(&absent), keys(&missing), "{fixture}: missing");
        for cid in &absent {
            assert!(
                !in_file.contains_key(&key(cid)),
                "{cid} is in the file, so not missing"
            );
        }
        all_missing.extend(keys(&absent));
        first.get_or_insert((reachable, absent));
    }
    assert_eq!(report.missing as usize, all_missing.len());
    first.unwrap()
}

#[tokio::test]
async fn simple_unixfs_dag_is_reachable_and_complete() {
    let (roots, blocks) = read_all(&fixture_bytes("simple-unixfs.car")).await.unwrap();
    let (reachable, missing) = assert_consistent_with_file("simple-unixfs.car").await;
    assert_eq!(reachable.first(), roots.first());
    assert!(missing.is_empty());
    let file: HashSet<Key> = blocks.iter().map(|b| key(&b.cid)).collect();
    assert_eq!(
        keys(&reachable).into_iter().collect::<HashSet<_>>(),
        file,
        "every block is referenced"
    );
}

#[tokio::test]
async fn unixfs_in_car_v2_is_reachable_and_consistent() {
    let (reachable, missing) = assert_consistent_with_file("sample-unixfs-v2.car").await;
    assert!(!reachable.is_empty());
    assert!(missing.is_empty());
}

#[tokio::test]
async fn partial_wikipedia_dag_reports_its_absent_blocks_as_missing() {
    let (reachable, missing) =
        assert_consistent_with_file("wikipedia-cryptographic-hash-function.car").await;
    assert!(!reachable.is_empty());
    assert!(
        !missing.is_empty(),
        "most linked blocks are absent from this CAR"
    );
}

#[tokio::test]
async fn unixfs_with_missing_blocks_reports_exactly_those() {
    let (_, missing) = assert_consistent_with_file("simple-unixfs-missing-blocks.car").await;
    assert!(!missing.is_empty());
}

#[tokio::test]
async fn sample_v1_is_reachable_in_traversal_order() {
    assert_consistent_with_file("sample-v1.car").await;
}

#[tokio::test]
async fn storing_a_missing_block_removes_it_from_missing_and_bumps_the_dag_generation() {
    let db = open().await;
    import_fixture(&db, "simple-unixfs-missing-blocks.car")
        .await
        .unwrap();
    let (roots, _) = read_all(&fixture_bytes("simple-unixfs-missing-blocks.car"))
        .await
        .unwrap();
    let (_, complete) = read_all(&fixture_bytes("simple-unixfs.car")).await.unwrap();
    let missing = db.missing(&roots[0]).await.unwrap();
    let generation = db.dag_generation().await.unwrap();

    let wanted = complete
        .iter()
        .find(|b| key(&b.cid) == key(&missing[0]))
        .expect("in the full DAG");
    db.put(Blob::with_cid(wanted.cid, wanted.data.clone()).unwrap())
        .await
        .unwrap();
    let now_missing = db.missing(&roots[0]).await.unwrap();
    assert!(!keys(&now_missing).contains(&key(&missing[0])));
    assert!(db.dag_generation().await.unwrap() > generation);
}

#[tokio::test]
async fn links_and_backlinks_mirror_each_other() {
    let db = open().await;
    import_fixture(&db, "sample-v1.car").await.unwrap();
    let root = cid(SAMPLE_V1_ROOT);
    let links = db.links(&root).await.unwrap().expect("root is indexed");
    assert!(!links.is_empty());
    for child in &links {
        assert!(
            db.backlinks(child).await.unwrap().contains(&root),
            "{child} links back"
        );
    }
    assert!(db.backlinks(&root).await.unwrap().is_empty());
    let info = db.info(&root).await.unwrap().unwrap();
    assert_eq!(
        (info.links, info.indexable, info.indexed),
        (links.len() as u64, true, true)
    );
}

#[tokio::test]
async fn a_root_that_is_not_stored_is_itself_missing() {
    let db = open().await;
    let absent = *Blob::new(codec::RAW, &b"nope"[..]).cid();
    assert_eq!(db.missing(&absent).await.unwrap(), vec![absent]);
    assert!(db.reachable(&absent).await.unwrap().is_empty());
    assert_eq!(db.links(&absent).await.unwrap(), None);
    assert_eq!(db.info(&absent).await.unwrap(), None);
}

#[tokio::test]
async fn walks_past_the_configured_limit_fail_or_report_incomplete() {
    let db = open_with(IndexConfig {
        reachable_limit: 10,
        ..Default::default()
    })
    .await;
    import_fixture(&db, "sample-v1.car").await.unwrap();
    let root = cid(SAMPLE_V1_ROOT);
    let err = db.reachable(&root).await.unwrap_err();
    assert!(
        matches!(err, Error::LimitExceeded { limit: 10, .. }),
        "{err:?}"
    );
    assert!(matches!(
        db.missing(&root).await,
        Err(Error::LimitExceeded { .. })
    ));
    let dag = db.walk(&root, 10).await.unwrap();
    assert!(!dag.complete);
    assert_eq!(dag.present.len() + dag.missing.len(), 10);
}

#[tokio::test]
async fn blobs_stored_without_the_index_are_present_leaves_with_unknown_links() {
    let db = open().await;
    let leaf = Blob::new(codec::RAW, &b"leaf"[..]);
    let node = ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(*leaf.cid())]);
    let node = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&node).unwrap());
    let root = db.store().put(node).await.unwrap();
    assert_eq!(db.reachable(&root).await.unwrap(), vec![root]);
    assert_eq!(db.links(&root).await.unwrap(), None);
    let info = db.info(&root).await.unwrap().unwrap();
    assert_eq!((info.indexed, info.indexable), (false, false));

    let opts = IndexPutOptions::default();
    let again = Blob::with_cid(root, db.store().get(&root).await.unwrap().unwrap()).unwrap();
    db.put_many(vec![again], opts).await.unwrap();
    assert_eq!(
        db.missing(&root).await.unwrap(),
        vec![*leaf.cid()],
        "re-put through the index indexes it"
    );
}
