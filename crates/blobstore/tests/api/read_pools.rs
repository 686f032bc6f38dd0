//! The read pools are `query_only`: SQL run through `Store::read` or `Store::scan` can
//! read anything and write nothing, on a read-write store (beside its lane) and on a
//! read-only one alike. So no read closure can write outside the lane.

use crate::common::temp_store;
use seedbank_blobstore::rusqlite::{self, ErrorCode};
use seedbank_blobstore::{codec, Blob, Config, Error, PoolKind, Store};

/// Writes of every kind a read closure could try: rows deleted, changed and added, a table
/// created, the schema version changed.
const WRITES: &[&str] = &[
    "DELETE FROM blobs",
    "UPDATE blob_data SET data = zeroblob(1)",
    "INSERT INTO blob_data (mh, data) VALUES (x'00', x'00')",
    "CREATE TABLE intruder (x)",
    "PRAGMA user_version = 999",
];

/// What the store holds, as a reader sees it.
#[derive(Debug, PartialEq)]
struct Fingerprint {
    /// CIDs, distinct blobs, bytes, schema version.
    contents: (u64, u64, u64, i64),
    data: Option<Vec<u8>>,
    tables: Vec<String>,
}

async fn fingerprint(store: &Store, blob: &Blob) -> Fingerprint {
    let tables = store
        .read(PoolKind::Data, |conn| {
            let mut stmt = conn.prepare("SELECT name FROM sqlite_master ORDER BY name")?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(names)
        })
        .await
        .unwrap();
    let c = store.contents().await.unwrap();
    Fingerprint {
        contents: (c.cids, c.distinct_blobs, c.bytes, c.schema_version),
        data: store.get(blob.cid()).await.unwrap().map(|b| b.to_vec()),
        tables,
    }
}

/// Runs each of [`WRITES`] through `read` and `scan` on both pools; every one must fail with
/// SQLite's read-only error (a pragma: refused as a change of the connection), and the store
/// must read the same afterwards.
async fn every_write_through_a_reader_fails(store: &Store, blob: &Blob) {
    let before = fingerprint(store, blob).await;
    assert_eq!(before.data.as_deref(), Some(blob.data().as_ref()));
    for pool in [PoolKind::Info, PoolKind::Data] {
        for scan in [false, true] {
            for sql in WRITES {
                let write = move |conn: &rusqlite::Connection| {
                    conn.execute_batch(sql)?;
                    Ok(())
                };
                let result = if scan {
                    store.scan(pool, write).await
                } else {
                    store.read(pool, write).await
                };
                let how = format!(
                    "{sql:?} through {} on {pool:?}",
                    ["read", "scan"][scan as usize]
                );
                let err = match result {
                    Ok(()) => panic!("{how} succeeded"),
                    // A settings pragma is refused before it runs (issue 23, item 7).
                    Err(Error::ClosureChangedConnection { .. }) if sql.starts_with("PRAGMA") => {
                        continue
                    }
                    Err(Error::App(e)) => e,
                    Err(e) => panic!("{how}: unexpected error {e}"),
                };
                let code = err
                    .downcast_ref::<rusqlite::Error>()
                    .and_then(|e| e.sqlite_error_code());
                assert_eq!(code, Some(ErrorCode::ReadOnly), "{how}: {err}");
            }
        }
    }
    assert_eq!(
        fingerprint(store, blob).await,
        before,
        "a reader changed the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_read_pool_fails_and_changes_nothing() {
    let (store, _dir, path) = temp_store(Config::default());
    let blob = Blob::new(codec::RAW, &b"only the lane writes"[..]);
    store.put(blob.clone()).await.unwrap();

    // Beside the store's own lane.
    every_write_through_a_reader_fails(&store, &blob).await;
    assert_eq!(store.stats().sqlite_busy, 0);
    // The lane still writes.
    let later = Blob::new(codec::RAW, &b"written after"[..]);
    store.put(later.clone()).await.unwrap();
    assert!(store.has(later.cid()).await.unwrap());

    // A read-only store opened beside the owner, then alone after the owner closed.
    let reader = Store::open_read_only(&path, Config::default()).unwrap();
    every_write_through_a_reader_fails(&reader, &blob).await;
    reader.close().await.unwrap();
    store.close().await.unwrap();
    let reader = Store::open_read_only(&path, Config::default()).unwrap();
    every_write_through_a_reader_fails(&reader, &blob).await;
    assert_eq!(reader.contents().await.unwrap().cids, 2);
    reader.close().await.unwrap();
}
