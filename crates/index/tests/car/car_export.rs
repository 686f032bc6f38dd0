//! CAR export: DAGs in traversal order, scopes in insertion order, and round trips.

use std::collections::HashMap;

use crate::common::{fixture_bytes, import_fixture, open, read_all};
use cid::Cid;
use seedbank_blobstore::{codec, Blob};
use seedbank_index::car::{self, ImportOptions};
use seedbank_index::{Error, IndexPutOptions};

/// Imports `fixture`, exports the DAG of its first root, re-imports the export into a fresh
/// index, and checks blocks and CIDs survive byte for byte.
async fn assert_round_trip(fixture: &str) {
    let (roots, original) = read_all(&fixture_bytes(fixture)).await.unwrap();
    let root = roots[0];
    let db = open().await;
    import_fixture(&db, fixture).await.unwrap();

    let mut exported = Vec::new();
    let report = car::export_dag(&db, &root, &mut exported).await.unwrap();
    assert_eq!(report.car_bytes as usize, exported.len());
    let (export_roots, blocks) = read_all(&exported).await.unwrap();
    assert_eq!(export_roots, vec![root]);
    assert_eq!(report.blocks as usize, blocks.len());
    let order: Vec<Cid> = blocks.iter().map(|b| b.cid).collect();
    assert_eq!(
        order,
        db.reachable(&root).await.unwrap(),
        "blocks in traversal order"
    );

    let by_cid: HashMap<Cid, _> = original.iter().map(|b| (b.cid, b.data.clone())).collect();
    for block in &blocks {
        assert_eq!(
            Some(&block.data),
            by_cid.get(&block.cid),
            "block {} is byte-identical",
            block.cid
        );
    }

    let copy = open().await;
    let again = car::import(&copy, &exported[..], ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(again.roots, vec![root]);
    assert_eq!(again.missing, report.missing);
    assert_eq!(
        copy.reachable(&root).await.unwrap(),
        order,
        "the same set of CIDs, same order"
    );
    for block in &blocks {
        let data = copy.store().get(&block.cid).await.unwrap().unwrap();
        assert_eq!(data, block.data);
    }
}

#[tokio::test]
async fn sample_v1_export_reimports_byte_identical_per_block() {
    assert_round_trip("sample-v1.car").await;
}

#[tokio::test]
async fn unixfs_export_reimports_byte_identical_per_block() {
    assert_round_trip("simple-unixfs.car").await;
    assert_round_trip("sample-unixfs-v2.car").await;
}

#[tokio::test]
async fn partial_dag_exports_what_is_present_and_counts_the_rest() {
    assert_round_trip("simple-unixfs-missing-blocks.car").await;
    let (roots, _) = read_all(&fixture_bytes("simple-unixfs-missing-blocks.car"))
        .await
        .unwrap();
    let db = open().await;
    import_fixture(&db, "simple-unixfs-missing-blocks.car")
        .await
        .unwrap();
    let report = car::export_dag(&db, &roots[0], Vec::new()).await.unwrap();
    assert_eq!(
        report.missing as usize,
        db.missing(&roots[0]).await.unwrap().len()
    );
    assert!(report.missing > 0);
}

#[tokio::test]
async fn exporting_a_root_that_is_not_stored_fails() {
    let db = open().await;
    let absent = *Blob::new(codec::RAW, &b"absent"[..]).cid();
    let err = car::export_dag(&db, &absent, Vec::new()).await.unwrap_err();
    assert!(
        matches!(err, Error::NotFound { cid } if cid == absent),
        "{err:?}"
    );
}

#[tokio::test]
async fn scope_export_holds_its_members_in_insertion_order() {
    let db = open().await;
    let blobs: Vec<Blob> = (0..5u8)
        .map(|i| Blob::new(codec::RAW, vec![i; 100]))
        .collect();
    let opts = IndexPutOptions::default().scope("export:me");
    let cids = db.put_many(blobs.clone(), opts).await.unwrap();
    db.put(Blob::new(codec::RAW, &b"not in the scope"[..]))
        .await
        .unwrap();

    let mut file = Vec::new();
    let report = car::export_scope(&db, "export:me", &cids[..1], &mut file)
        .await
        .unwrap();
    assert_eq!(report.blocks, 5);
    let (roots, blocks) = read_all(&file).await.unwrap();
    assert_eq!(roots, vec![cids[0]]);
    assert_eq!(blocks.iter().map(|b| b.cid).collect::<Vec<_>>(), cids);
    assert!(blocks
        .iter()
        .zip(&blobs)
        .all(|(b, blob)| b.data == blob.data()));
}

/// go-car wrote these fixtures in DAG traversal order, so an export of the same DAG
/// reproduces the files exactly: same header, same order, same bytes.
#[tokio::test]
async fn exported_dag_is_byte_identical_to_the_go_car_file_it_came_from() {
    for fixture in ["sample-v1.car", "simple-unixfs.car"] {
        let db = open().await;
        let report = import_fixture(&db, fixture).await.unwrap();
        let mut file = Vec::new();
        car::export_dag(&db, &report.roots[0], &mut file)
            .await
            .unwrap();
        assert!(
            file == fixture_bytes(fixture),
            "{fixture} differs after export"
        );
    }
}
