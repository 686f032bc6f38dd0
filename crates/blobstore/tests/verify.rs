//! `verify` and `get` catch bytes that changed on disk (a no-op `verify` must fail here).

mod common;

use common::{random_blobs, temp_store};
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
