//! `verify` and `get` catch bytes that changed on disk (a no-op `verify` must fail here).

use crate::common::{random_blobs, temp_store};
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{Config, Error, PutOptions, Store};

#[tokio::test]
async fn corrupted_bytes_are_reported_by_verify_and_refused_by_get() {
    let (store, _dir, path) = temp_store(Config::default());
    let blobs = random_blobs(9, 10, 2000);
    store
        .put_many(blobs.clone(), PutOptions::default())
        .await
        .unwrap();
    assert!(store.verify().await.unwrap().problems.is_empty());
    store.close().await.unwrap();

    // Flip the bytes of one blob behind the store's back.
    let conn = Connection::open(&path).unwrap();
    let changed = conn
        .execute(
            "UPDATE blob_data SET data = zeroblob(length(data)) WHERE id =
             (SELECT data_id FROM blobs WHERE size = ?1 LIMIT 1 OFFSET 3)",
            [2000],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let store = Store::open(&path, Config::default()).unwrap();
    let report = store.verify().await.unwrap();
    assert_eq!(report.blobs_checked, 10);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let mut corrupt = 0;
    for b in &blobs {
        match store.get(b.cid()).await {
            Ok(Some(data)) => assert_eq!(data, b.data()),
            Err(Error::Corrupt { cid }) => {
                assert_eq!(cid, *b.cid());
                assert!(report.problems[0].contains(&cid.to_string()), "{report:?}");
                corrupt += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(corrupt, 1);
    store.close().await.unwrap();
}

/// What a repair acts on: `verify_blobs` lists the corrupt bytes with every CID stored under
/// them, and each stays current until the bytes are deleted.
#[tokio::test]
async fn verify_blobs_lists_corrupt_bytes_with_their_cids_for_a_repair() {
    use seedbank_blobstore::{codec, Blob};
    let (store, _dir, path) = temp_store(Config::default());
    let raw = Blob::new(codec::RAW, &b"corrupt me"[..]);
    let cbor = Blob::with_cid(
        cid::Cid::new_v1(codec::DAG_CBOR, *raw.cid().hash()),
        raw.data().clone(),
    )
    .unwrap();
    let sound = Blob::new(codec::RAW, &b"sound"[..]);
    store
        .put_many(
            vec![raw.clone(), cbor.clone(), sound],
            PutOptions::default(),
        )
        .await
        .unwrap();
    store.close().await.unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE blob_data SET data = x'00' WHERE length(data) = 10",
        [],
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&path, Config::default()).unwrap();
    let report = store.verify_blobs().await.unwrap();
    assert_eq!(
        report.blobs_checked, 2,
        "bytes are stored once per multihash"
    );
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.problems.len(), 1);
    let corrupt = report.corrupt[0].clone();
    let mut cids = corrupt.cids();
    cids.sort();
    let mut want = vec![*raw.cid(), *cbor.cid()];
    want.sort();
    assert_eq!(cids, want);
    let again = corrupt.clone();
    let (current, gone) = store
        .write_deleting(PutOptions::default(), move |d| {
            let current = again.is_current(d.conn())?;
            let mut gone = 0;
            for codec in again.codecs() {
                gone += u64::from(d.delete(again.multihash_key(), *codec)?.existed);
            }
            Ok((current, gone))
        })
        .await
        .unwrap();
    assert!(current);
    assert_eq!(gone, 2);
    let stats = store.stats();
    assert_eq!(
        (stats.blobs_freed, stats.bytes_freed),
        (2, 10),
        "counted once committed"
    );
    let still = store
        .write(PutOptions::default(), move |conn| {
            Ok(corrupt.is_current(conn)?)
        })
        .await
        .unwrap();
    assert!(!still, "deleted bytes are no longer the ones found corrupt");
    assert!(store.verify().await.unwrap().problems.is_empty());
    store.close().await.unwrap();
}

/// A delete whose write fails is rolled back and counts nothing freed.
#[tokio::test]
async fn a_rolled_back_delete_counts_nothing_freed() {
    let (store, _dir, _) = temp_store(Config::default());
    let blob = random_blobs(3, 1, 100).remove(0);
    store.put(blob.clone()).await.unwrap();
    let key = blob.cid().hash().to_bytes();
    let codec = blob.cid().codec() as i64;
    let failed = store
        .write_deleting(PutOptions::default(), move |d| {
            d.delete(&key, codec)?;
            Err::<(), _>("changed my mind".into())
        })
        .await;
    assert!(matches!(failed, Err(Error::App(_))), "{failed:?}");
    assert_eq!(store.stats().blobs_freed, 0);
    assert!(store.has(blob.cid()).await.unwrap());
    store.close().await.unwrap();
}
