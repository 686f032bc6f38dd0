//! Pins, temp pins, delete, garbage collection, repair and backup.

use cid::Cid;
use seedbank_blobstore::{Blob, Config, Store};
use seedbank_index::testing::{node, raw};
use seedbank_index::{
    DeleteOptions, Error, GcOptions, Index, IndexConfig, IndexPutOptions, PinTarget,
};

/// Puts a two-level DAG: root → [a, b], a → [leaf]. Returns (root, all CIDs).
async fn dag(index: &Index, tag: &str) -> (Cid, Vec<Cid>) {
    let leaf = raw(&format!("{tag}-leaf"), 100);
    let b = raw(&format!("{tag}-b"), 100);
    let a = node(&format!("{tag}-a"), &[*leaf.cid()]);
    let root = node(&format!("{tag}-root"), &[*a.cid(), *b.cid()]);
    let all = vec![*root.cid(), *a.cid(), *b.cid(), *leaf.cid()];
    index
        .put_many(vec![root, a, b, leaf], IndexPutOptions::default())
        .await
        .unwrap();
    (all[0], all)
}

async fn present(index: &Index, cids: &[Cid]) -> Vec<bool> {
    index.store().has_many(cids).await.unwrap()
}

#[tokio::test]
async fn pins_list_replace_and_unpin() {
    let index = crate::common::open().await;
    let (root, _) = dag(&index, "x").await;
    index.pin("doc", &root).await.unwrap();
    index.pin_scope("all", "scope:1").await.unwrap();
    let pins = index.pins().await.unwrap();
    assert_eq!(pins.len(), 2);
    assert_eq!(pins[0].name, "all");
    assert_eq!(pins[0].target, PinTarget::Scope("scope:1".into()));
    assert_eq!(pins[1].target, PinTarget::Root(root));
    assert!(matches!(
        index.pin("", &root).await,
        Err(Error::InvalidPin { .. })
    ));
    assert!(index.unpin("doc").await.unwrap());
    assert!(!index.unpin("doc").await.unwrap());
    assert_eq!(index.pins().await.unwrap().len(), 1);
}

#[tokio::test]
async fn gc_keeps_what_pins_reach_and_frees_the_rest() {
    let index = crate::common::open().await;
    let (kept_root, kept) = dag(&index, "kept").await;
    let (_, lost) = dag(&index, "lost").await;
    let scoped = raw("scoped", 50);
    let scoped_cid = *scoped.cid();
    index
        .put_many(vec![scoped], IndexPutOptions::default().scope("s"))
        .await
        .unwrap();
    index.pin("doc", &kept_root).await.unwrap();
    index.pin_scope("s", "s").await.unwrap();

    let dry = index
        .gc(GcOptions {
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dry.blobs_freed, 4);
    assert_eq!(present(&index, &lost).await, vec![true; 4]);

    let report = index.gc(GcOptions::default()).await.unwrap();
    assert_eq!(report.blobs_freed, 4);
    assert!(report.bytes_freed > 200);
    assert_eq!(present(&index, &kept).await, vec![true; 4]);
    assert_eq!(present(&index, &[scoped_cid]).await, vec![true]);
    assert_eq!(present(&index, &lost).await, vec![false; 4]);
    assert_eq!(index.store().stats().blobs_freed, 4);
    // Nothing left to collect.
    assert_eq!(index.gc(GcOptions::default()).await.unwrap().blobs_freed, 0);
}

#[tokio::test]
async fn delete_refuses_protected_blobs_unless_forced() {
    let index = crate::common::open().await;
    let (root, all) = dag(&index, "d").await;
    index.pin("doc", &root).await.unwrap();
    let leaf = all[3];
    match index.delete(&[leaf], DeleteOptions::default()).await {
        Err(Error::Pinned { cid, by }) => {
            assert_eq!(cid, leaf);
            assert_eq!(by, "pin doc");
        }
        other => panic!("expected Pinned, got {other:?}"),
    }
    assert_eq!(present(&index, &[leaf]).await, vec![true]);

    let tp = index.temp_pin();
    let loose = raw("loose", 10);
    let loose_cid = *loose.cid();
    index
        .put_many(vec![loose], IndexPutOptions::default().temp_pin(&tp))
        .await
        .unwrap();
    assert!(matches!(
        index.delete(&[loose_cid], DeleteOptions::default()).await,
        Err(Error::Pinned { .. })
    ));
    drop(tp);
    let freed = index
        .delete(&[loose_cid], DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(freed.blobs, 1);

    let freed = index
        .delete(&[leaf], DeleteOptions::forced())
        .await
        .unwrap();
    assert_eq!((freed.blobs, freed.bytes), (1, 100));
    assert_eq!(present(&index, &[leaf]).await, vec![false]);
    assert_eq!(index.missing(&root).await.unwrap(), vec![leaf]);
}

#[tokio::test]
async fn delete_keeps_links_scopes_and_generations_consistent() {
    let index = crate::common::open().await;
    let leaf = raw("leaf", 10);
    let parent = node("parent", &[*leaf.cid()]);
    let (leaf_cid, parent_cid) = (*leaf.cid(), *parent.cid());
    index
        .put_many(vec![parent, leaf], IndexPutOptions::default().scope("s"))
        .await
        .unwrap();
    let gen0 = index.dag_generation().await.unwrap();
    let scope0 = index.scope_delta("s", 0).await.unwrap();

    index
        .delete(&[parent_cid], DeleteOptions::default())
        .await
        .unwrap();
    let gen1 = index.dag_generation().await.unwrap();
    assert!(gen1 > gen0, "the DAG generation grows on delete");
    assert_eq!(index.backlinks(&leaf_cid).await.unwrap(), vec![]);
    assert_eq!(index.links(&parent_cid).await.unwrap(), None);
    let scope1 = index.scope_delta("s", 0).await.unwrap();
    assert_eq!(scope1.removals, scope0.removals + 1);
    assert!(scope1.generation > scope0.generation);
    assert_eq!(index.scope_members("s").await.unwrap(), vec![leaf_cid]);
    // A delta from before the deletion cannot be extended: a rescan is forced.
    let after = index
        .read_dag(move |d| d.indexed_after(gen0, 1000))
        .await
        .unwrap();
    assert_eq!(after, None);

    // Deleting the newest row still moves the generation forward, and new blobs come after.
    let fresh = index.put(raw("fresh", 10)).await.unwrap();
    let gen2 = index.dag_generation().await.unwrap();
    assert!(gen2 > gen1);
    index
        .delete(&[fresh], DeleteOptions::default())
        .await
        .unwrap();
    let gen3 = index.dag_generation().await.unwrap();
    assert!(gen3 > gen2);
    let again = index.put(raw("again", 10)).await.unwrap();
    let gen4 = index.dag_generation().await.unwrap();
    assert!(gen4 > gen3);
    let new = index
        .read_dag(move |d| d.indexed_after(gen3, 1000))
        .await
        .unwrap();
    assert_eq!(new, Some(vec![again]));
}

#[tokio::test]
async fn a_put_of_a_deleted_blob_stores_it_again() {
    let index = crate::common::open().await;
    let (root, all) = dag(&index, "r").await;
    index.delete(&all, DeleteOptions::default()).await.unwrap();
    assert_eq!(present(&index, &all).await, vec![false; 4]);
    let (again, _) = dag(&index, "r").await;
    assert_eq!(again, root);
    assert_eq!(present(&index, &all).await, vec![true; 4]);
    assert_eq!(index.reachable(&root).await.unwrap().len(), 4);
}

#[tokio::test]
async fn gc_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs.db");
    let store = Store::open(&path, Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    let blobs: Vec<Blob> = (0..400)
        .map(|i| raw(&format!("big{i}"), 8 * 1024))
        .collect();
    let keep = *blobs[0].cid();
    index
        .put_many(blobs, IndexPutOptions::default())
        .await
        .unwrap();
    index.pin("one", &keep).await.unwrap();
    let before = index.store().space().await.unwrap();
    assert_eq!(before.auto_vacuum, 2, "new files vacuum incrementally");
    let report = index.gc(GcOptions::default()).await.unwrap();
    assert_eq!(report.blobs_freed, 399);
    assert_eq!(report.free_pages, 0);
    let after = index.store().space().await.unwrap();
    assert!(
        after.page_count * 4 < before.page_count,
        "pages {} -> {}",
        before.page_count,
        after.page_count
    );
    index.store().close().await.unwrap();
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file < before.file_bytes() / 4, "file {file} bytes");
}

#[tokio::test]
async fn size_targets_collect_and_the_hard_limit_refuses() {
    let config = IndexConfig {
        gc_target_blobs: Some(10),
        ..Default::default()
    };
    let index = crate::common::open_with(config).await;
    let keep = index.put(raw("keep", 10)).await.unwrap();
    index.pin("k", &keep).await.unwrap();
    for i in 0..20 {
        index.put(raw(&format!("junk{i}"), 10)).await.unwrap();
    }
    // The last put may have started a collection; a check now waits for it and collects
    // the rest.
    let _ = index.gc_if_over_target().await.unwrap();
    let contents = index.store().contents().await.unwrap();
    assert!(contents.cids <= 10, "{} CIDs left", contents.cids);
    assert_eq!(present(&index, &[keep]).await, vec![true]);

    let used = index.store().space().await.unwrap().used_bytes();
    let config = IndexConfig {
        max_bytes: Some(used + 8 * 1024),
        ..Default::default()
    };
    let limited = Index::open(index.store().clone(), config).await.unwrap();
    let big = raw("big", 64 * 1024);
    let big_cid = *big.cid();
    assert!(matches!(
        limited.put(big).await,
        Err(Error::StoreFull { .. })
    ));
    assert_eq!(present(&index, &[big_cid]).await, vec![false]);
    limited.put(raw("small", 100)).await.unwrap();
}

#[tokio::test]
async fn repair_removes_corrupt_blobs_and_a_re_put_heals_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs.db");
    let store = Store::open(&path, Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    let leaf = raw("victim", 200);
    let parent = node("parent", &[*leaf.cid()]);
    let (leaf_cid, root) = (*leaf.cid(), *parent.cid());
    index
        .put_many(
            vec![parent.clone(), leaf.clone()],
            IndexPutOptions::default(),
        )
        .await
        .unwrap();
    index.store().close().await.unwrap();

    let conn = seedbank_blobstore::rusqlite::Connection::open(&path).unwrap();
    let n = conn
        .execute(
            "UPDATE blob_data SET data = zeroblob(200) WHERE mh = ?1",
            [leaf_cid.hash().to_bytes()],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);

    let store = Store::open(&path, Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    assert!(!index.store().verify().await.unwrap().problems.is_empty());
    let report = index.repair().await.unwrap();
    assert_eq!(report.removed, vec![leaf_cid.to_string()]);
    assert_eq!(present(&index, &[leaf_cid, root]).await, vec![false, true]);
    assert_eq!(index.missing(&root).await.unwrap(), vec![leaf_cid]);

    index.put(leaf).await.unwrap();
    assert_eq!(present(&index, &[leaf_cid]).await, vec![true]);
    assert_eq!(index.missing(&root).await.unwrap(), vec![]);
    let verified = index.store().verify().await.unwrap();
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    assert_eq!(
        index.store().get(&leaf_cid).await.unwrap().unwrap().len(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_write_load_holds_every_acked_blob() {
    let index = crate::common::open().await;
    let mut acked = Vec::new();
    for i in 0..300 {
        acked.push(index.put(raw(&format!("pre{i}"), 2000)).await.unwrap());
    }
    let writer = {
        let index = index.index.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                index.put(raw(&format!("during{i}"), 2000)).await.unwrap();
            }
        })
    };
    let dest = index.dir.path().join("copy.db");
    let report = index.store().backup(&dest).await.unwrap();
    writer.await.unwrap();
    assert!(report.cids >= 300);
    assert!(matches!(
        index.store().backup(&dest).await,
        Err(seedbank_blobstore::Error::Io(_))
    ));

    let copy = Store::open_read_only(&dest, Config::default()).unwrap();
    assert!(copy.verify().await.unwrap().problems.is_empty());
    assert_eq!(copy.has_many(&acked).await.unwrap(), vec![true; 300]);
    let copy_index = Index::open(copy, IndexConfig::default()).await.unwrap();
    assert!(copy_index.dag_generation().await.unwrap() >= 300);
}
