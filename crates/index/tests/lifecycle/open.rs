//! Opening, schema versions, `info` on its own pool, and idempotent writes.

use seedbank_blobstore::{codec, Blob, Config, PutOptions, Store};
use seedbank_index::{Error, Index, IndexConfig, IndexPutOptions, INDEX_SCHEMA_VERSION};

#[tokio::test]
async fn reopening_an_up_to_date_index_writes_nothing_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs.db");
    let store = Store::open(&path, Config::default()).unwrap();
    let index = Index::open(store.clone(), IndexConfig::default())
        .await
        .unwrap();
    let cid = index
        .put(Blob::new(codec::RAW, &b"kept"[..]))
        .await
        .unwrap();
    let acked = store.stats().requests_acked;
    Index::open(store.clone(), IndexConfig::default())
        .await
        .unwrap();
    assert_eq!(
        store.stats().requests_acked,
        acked,
        "no lane write on an up-to-date open"
    );
    store.close().await.unwrap();

    let store = Store::open(&path, Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    assert!(index.info(&cid).await.unwrap().unwrap().indexed);
}

#[tokio::test]
async fn index_written_by_a_newer_version_is_refused() {
    let db = crate::common::open().await;
    let newer = INDEX_SCHEMA_VERSION + 1;
    db.store()
        .write(PutOptions::default(), move |conn| {
            conn.execute(
                "UPDATE index_meta SET value = ?1 WHERE key = 'schema_version'",
                [newer],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let err = Index::open(db.store().clone(), IndexConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found, .. } if found == newer),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_index_at_schema_v1_upgrades_with_its_removal_counts_backfilled() {
    let db = crate::common::open().await;
    let blobs: Vec<Blob> = (0..3u8)
        .map(|i| Blob::new(codec::RAW, vec![b'v', i]))
        .collect();
    let cids = db
        .put_many(blobs, IndexPutOptions::default().scope("old"))
        .await
        .unwrap();
    db.remove_from_scope("old", &cids[..1], PutOptions::default())
        .await
        .unwrap();
    // Back to the v1 layout: no `removals` column, no `pins` table, version 1.
    db.store()
        .write(PutOptions::default(), |conn| {
            conn.execute_batch(
                "ALTER TABLE scopes DROP COLUMN removals;
                 DROP TABLE pins;
                 UPDATE index_meta SET value = 1 WHERE key = 'schema_version';",
            )?;
            Ok(())
        })
        .await
        .unwrap();

    let index = Index::open(db.store().clone(), IndexConfig::default())
        .await
        .unwrap();
    let version = db
        .store()
        .read(seedbank_blobstore::PoolKind::Info, |conn| {
            Ok(conn.query_row(
                "SELECT value FROM index_meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(version, INDEX_SCHEMA_VERSION);
    let delta = index.scope_delta("old", 0).await.unwrap();
    assert_eq!(
        (delta.generation, delta.last_seq, delta.removals),
        (4, 3, 1),
        "v1 counted one removal as generation - last_seq"
    );
    index
        .remove_from_scope("old", &cids[1..2], PutOptions::default())
        .await
        .unwrap();
    assert_eq!(index.scope_delta("old", 3).await.unwrap().removals, 2);
}

#[tokio::test]
async fn info_is_served_by_the_info_pool_with_link_count() {
    let db = crate::common::open().await;
    let leaf = Blob::new(codec::RAW, &b"x"[..]);
    let list = ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(*leaf.cid()); 3]);
    let node = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&list).unwrap());
    let cid = db.put(node.clone()).await.unwrap();
    let info_reads = |db: &Index| {
        db.store()
            .stats()
            .pools
            .iter()
            .find(|p| p.name == "info")
            .unwrap()
            .reads
    };
    let before = info_reads(&db);
    let info = db.info(&cid).await.unwrap().unwrap();
    assert_eq!(info_reads(&db), before + 1);
    assert_eq!((info.links, info.indexable, info.indexed), (3, true, true));
    assert_eq!(
        (info.blob.cid, info.blob.size, info.blob.codec),
        (cid, node.len() as u64, codec::DAG_CBOR)
    );
}

#[tokio::test]
async fn putting_a_blob_twice_keeps_one_set_of_links() {
    let db = crate::common::open().await;
    let leaf = Blob::new(codec::RAW, &b"y"[..]);
    let list = ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(*leaf.cid())]);
    let node = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&list).unwrap());
    let generation = db.dag_generation().await.unwrap();
    db.put_many(vec![node.clone(), node.clone()], IndexPutOptions::default())
        .await
        .unwrap();
    db.put(node.clone()).await.unwrap();
    assert_eq!(db.links(node.cid()).await.unwrap(), Some(vec![*leaf.cid()]));
    assert_eq!(db.backlinks(leaf.cid()).await.unwrap(), vec![*node.cid()]);
    assert_eq!(db.dag_generation().await.unwrap(), generation + 1);
}

#[tokio::test]
async fn a_closed_store_fails_index_calls_with_the_store_error() {
    let db = crate::common::open().await;
    db.store().close().await.unwrap();
    let err = db
        .put(Blob::new(codec::RAW, &b"late"[..]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Blobstore(seedbank_blobstore::Error::Closed)),
        "{err:?}"
    );
    let err = db.dag_generation().await.unwrap_err();
    assert!(
        matches!(err, Error::Blobstore(seedbank_blobstore::Error::Closed)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failing_index_write_rolls_back_its_blob() {
    let db = crate::common::open().await;
    db.store()
        .write(PutOptions::default(), |conn| {
            Ok(conn.execute_batch("DROP TABLE links")?)
        })
        .await
        .unwrap();
    let leaf = Blob::new(codec::RAW, &b"z"[..]);
    let list = ipld_core::ipld::Ipld::List(vec![ipld_core::ipld::Ipld::Link(*leaf.cid())]);
    let node = Blob::new(codec::DAG_CBOR, serde_ipld_dagcbor::to_vec(&list).unwrap());
    let opts = IndexPutOptions::default().scope("atomic");
    let err = db.put_many(vec![node.clone()], opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage {
                op: "prepare insert link",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        !db.store().has(node.cid()).await.unwrap(),
        "the blob went with its rows"
    );
    assert_eq!(db.generation("atomic").await.unwrap(), 0);
}

#[tokio::test]
async fn a_negative_index_schema_version_is_an_error_not_a_panic() {
    let db = crate::common::open().await;
    db.store()
        .write(PutOptions::default(), move |conn| {
            conn.execute(
                "UPDATE index_meta SET value = -3 WHERE key = 'schema_version'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let err = Index::open(db.store().clone(), IndexConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SchemaDamaged { found: -3 }), "{err:?}");
}
