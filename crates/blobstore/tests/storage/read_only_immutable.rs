//! A read-only store that has to read the file as `immutable` (SQLite cannot set up its WAL
//! index, e.g. on a full disk) and finds no owner lock file to hold (a copy, a backup) cannot
//! stop a writer from starting; once one has, it refuses to read instead of serving what may
//! be a torn state (issue 23, item 8).

use seedbank_blobstore::testing::Tmpfs;
use seedbank_blobstore::{Blob, Config, Error, Store};

#[tokio::test]
async fn an_immutable_reader_without_a_lock_file_stops_reading_once_a_writer_appears() {
    let Some(fs) = Tmpfs::mount("8m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let db = fs.path().join("x.db");
    let store = Store::open(&db, Config::default()).unwrap();
    let first = store.put(Blob::new(0x55, &b"first"[..])).await.unwrap();
    store.close().await.unwrap();
    drop(store);
    // A copy of the database: no lock file beside it.
    std::fs::remove_file(seedbank_blobstore::lock_path(&db)).unwrap();
    fs.fill();

    let reader = Store::open_read_only(&db, Config::default()).unwrap();
    // (SQLite could not grow its shared-memory file: the pools read the file as immutable.
    // Only that mode reports `WriterAppeared` below.)
    assert!(reader.has(&first).await.unwrap());

    // Space comes back and a writer starts; it changes the file under the reader.
    fs.free();
    let writer = Store::open(&db, Config::default()).unwrap();
    let second = writer.put(Blob::new(0x55, &b"second"[..])).await.unwrap();
    writer.close().await.unwrap();

    for r in [
        reader.has(&first).await,
        reader.has(&second).await,
        reader.contents().await.map(|c| c.cids > 0),
    ] {
        assert!(matches!(r, Err(Error::WriterAppeared { .. })), "{r:?}");
    }
    reader.close().await.unwrap();

    // Reopened, it reads the new state (through the WAL index: the disk has room again).
    let reader = Store::open_read_only(&db, Config::default()).unwrap();
    assert!(reader.has(&second).await.unwrap());
    reader.close().await.unwrap();
}
