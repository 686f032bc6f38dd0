//! Schema v2: bytes are found through `blobs`, so new files have no index on
//! `blob_data.mh`; files made at v1 keep theirs and the lane works on both layouts, orphan
//! bytes included.

use std::path::Path;

use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{codec, sql, Blob, Config, PutOptions, Store, APPLICATION_ID};

/// The v1 schema exactly as its migration created it.
const V1: &str = "CREATE TABLE blob_data (
        id   INTEGER PRIMARY KEY,
        mh   BLOB NOT NULL UNIQUE,
        data BLOB NOT NULL
     );
     CREATE TABLE blobs (
        mh          BLOB    NOT NULL,
        codec       INTEGER NOT NULL,
        data_id     INTEGER NOT NULL REFERENCES blob_data(id),
        size        INTEGER NOT NULL,
        inserted_at INTEGER NOT NULL,
        PRIMARY KEY (mh, codec)
     ) WITHOUT ROWID;";

fn data_indexes(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'blob_data'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn count(path: &Path, table: &str) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Puts `data` under two codecs, in one batch and then again in another, and checks every
/// CID reads back while the bytes are stored once.
async fn dedups_across_codecs(path: &Path, data: &'static [u8]) {
    let store = Store::open(path, Config::default()).unwrap();
    let raw = Blob::new(codec::RAW, data);
    let cbor = Blob::new(codec::DAG_CBOR, data);
    let data_rows = count(path, "blob_data");
    store
        .put_many(vec![raw.clone(), cbor.clone()], PutOptions::default())
        .await
        .unwrap();
    store.put(raw.clone()).await.unwrap();
    for blob in [&raw, &cbor] {
        let got = store.get(blob.cid()).await.unwrap().unwrap();
        assert_eq!(&got[..], data);
    }
    assert_eq!(
        store.stats().dedup_hits,
        1,
        "the second put of raw is a hit"
    );
    store.close().await.unwrap();
    assert!(
        count(path, "blob_data") <= data_rows + 1,
        "one data row for both codecs"
    );
}

#[tokio::test]
async fn a_new_file_has_no_index_on_blob_data_and_stores_bytes_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    dedups_across_codecs(&path, b"stored once whatever the codec").await;
    assert_eq!(data_indexes(&path), 0);
    assert_eq!(count(&path, "blob_data"), 1);
    assert_eq!(count(&path, "blobs"), 2);
}

#[tokio::test]
async fn a_v1_file_keeps_its_index_and_reuses_orphan_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let orphan = Blob::new(codec::RAW, &b"bytes whose CID row is gone"[..]);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        // Bytes no CID refers to (what a v1 store could be left with by hand edits or
        // foreign tools): the plain insert is ignored by the unique index.
        let mh = seedbank_blobstore::cid::multihash_key(orphan.cid());
        conn.execute(
            "INSERT INTO blob_data (mh, data) VALUES (?1, ?2)",
            (&mh, orphan.data().as_ref()),
        )
        .unwrap();
    }
    let store = Store::open(&path, Config::default()).unwrap();
    store.put(orphan.clone()).await.unwrap();
    assert_eq!(
        &store.get(orphan.cid()).await.unwrap().unwrap()[..],
        orphan.data().as_ref()
    );
    store.close().await.unwrap();
    assert_eq!(
        data_indexes(&path),
        1,
        "a file holding blobs keeps its index"
    );
    // Migrated to v2 by the read-write open; a v1 file reads the same.
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let ro = Store::open_read_only(&path, Config::default()).unwrap();
    assert!(ro.get(orphan.cid()).await.unwrap().is_some());
    ro.close().await.unwrap();
    assert_eq!(count(&path, "blob_data"), 1, "the orphan row was reused");
    dedups_across_codecs(&path, b"and the v1 layout dedups too").await;
    assert_eq!(count(&path, "blob_data"), 2);
}

#[tokio::test]
async fn an_empty_v1_file_is_rebuilt_without_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty-v1.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    Store::open(&path, Config::default())
        .unwrap()
        .close()
        .await
        .unwrap();
    assert_eq!(data_indexes(&path), 0);
}

#[tokio::test]
async fn finding_stored_bytes_searches_the_blobs_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    Store::open(&path, Config::default())
        .unwrap()
        .close()
        .await
        .unwrap();
    let conn = Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", sql::FIND_DATA))
        .unwrap()
        .query_map([vec![0u8; 34]], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|p| p.starts_with("SEARCH blobs USING PRIMARY KEY")),
        "{plan:?}"
    );
}
