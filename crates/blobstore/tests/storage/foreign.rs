//! Foreign and damaged files are refused with a specific error, untouched, never a panic;
//! seedbank files carry `APPLICATION_ID`.

use std::path::{Path, PathBuf};

use crate::common::random_blobs;
use seedbank_blobstore::rusqlite::Connection;
use seedbank_blobstore::{Config, Error, PutOptions, Store, APPLICATION_ID, SCHEMA_VERSION};

fn sql(path: &Path, sql: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn app_id(path: &Path) -> i32 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap()
}

/// A closed seedbank store holding a few blobs.
async fn seedbank_file(dir: &Path) -> PathBuf {
    let path = dir.join("seed.db");
    let store = Store::open(&path, Config::default()).unwrap();
    store
        .put_many(random_blobs(1, 20, 3000), PutOptions::default())
        .await
        .unwrap();
    store.close().await.unwrap();
    path
}

/// Both opens refuse the file with an error `check` accepts, and leave its bytes as they were.
fn refused(path: &Path, check: impl Fn(&Error) -> bool) {
    let before = std::fs::read(path).unwrap();
    let rw = Store::open(path, Config::default()).unwrap_err();
    assert!(check(&rw), "open: {rw:?}");
    let ro = Store::open_read_only(path, Config::default()).unwrap_err();
    assert!(check(&ro), "open_read_only: {ro:?}");
    assert!(
        before == std::fs::read(path).unwrap(),
        "the file was changed"
    );
}

fn foreign(e: &Error) -> bool {
    matches!(e, Error::ForeignDatabase { .. })
}

fn damaged(e: &Error) -> bool {
    matches!(e, Error::Damaged { .. })
}

#[tokio::test]
async fn new_and_legacy_files_carry_the_application_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = seedbank_file(dir.path()).await;
    assert_eq!(app_id(&path), APPLICATION_ID);
    // A file from before application_id existed is stamped on its next read-write open.
    sql(&path, "PRAGMA application_id = 0");
    Store::open_read_only(&path, Config::default()).unwrap();
    Store::open(&path, Config::default())
        .unwrap()
        .close()
        .await
        .unwrap();
    assert_eq!(app_id(&path), APPLICATION_ID);
}

#[test]
fn another_applications_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    sql(
        &other,
        "PRAGMA application_id = 1234; CREATE TABLE notes (body TEXT);",
    );
    refused(&other, foreign);
    // Marked as another application's, even with no tables yet.
    let empty = dir.path().join("empty.db");
    sql(&empty, "PRAGMA application_id = 1234;");
    refused(&empty, foreign);
    // No application_id, user_version 0, tables of its own.
    let plain = dir.path().join("plain.db");
    sql(
        &plain,
        "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');",
    );
    refused(&plain, foreign);
    // A user_version in seedbank's range but none of seedbank's tables.
    let versioned = dir.path().join("versioned.db");
    sql(
        &versioned,
        "PRAGMA user_version = 1; CREATE TABLE notes (body TEXT);",
    );
    refused(&versioned, foreign);
}

#[tokio::test]
async fn impossible_schema_versions_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = seedbank_file(dir.path()).await;
    sql(&path, "PRAGMA user_version = -1");
    refused(&path, damaged);
    sql(&path, "PRAGMA user_version = -2147483648");
    refused(&path, damaged);
    sql(
        &path,
        &format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1000),
    );
    refused(&path, |e| matches!(e, Error::SchemaTooNew { .. }));
    // seedbank's tables under another application's id: not ours to touch.
    sql(
        &path,
        &format!("PRAGMA user_version = {SCHEMA_VERSION}; PRAGMA application_id = 77"),
    );
    refused(&path, foreign);
}

#[tokio::test]
async fn a_missing_table_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = seedbank_file(dir.path()).await;
    sql(&path, "DROP TABLE blobs");
    refused(&path, damaged);
}

#[tokio::test]
async fn truncated_and_non_sqlite_files_are_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = seedbank_file(dir.path()).await;
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192, "the fixture spans several pages");
    for keep in [bytes.len() / 2, 4096, 50] {
        let cut = dir.path().join(format!("cut{keep}.db"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        refused(&cut, damaged);
    }
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database, just some text\n".repeat(200)).unwrap();
    refused(&text, damaged);
}
