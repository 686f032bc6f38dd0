//! A full disk: writes fail with `Error::DiskFull`, nothing acknowledged is lost, reads keep
//! working, and writes resume by themselves once there is room.

use crate::common::random_blobs;
use seedbank_blobstore::testing::Tmpfs;
use seedbank_blobstore::{Blob, Config, Error, PutOptions, Store};

/// Puts blobs one by one until the store reports a full disk (bounded); returns the acked
/// blobs and the error.
async fn fill(store: &Store, seed: u64, size: usize, max: usize) -> (Vec<Blob>, Error) {
    let mut acked = Vec::new();
    for blob in random_blobs(seed, max, size) {
        match store.put(blob.clone()).await {
            Ok(_) => acked.push(blob),
            Err(e) => return (acked, e),
        }
    }
    panic!("{max} puts of {size} bytes never filled the disk");
}

async fn assert_all_readable(store: &Store, blobs: &[Blob]) {
    for b in blobs {
        let got = store.get(b.cid()).await.unwrap();
        assert_eq!(got.as_deref(), Some(b.data().as_ref()), "{}", b.cid());
    }
}

/// SQLite's `max_page_count` on the writer connection stands in for the disk's size.
#[tokio::test]
async fn max_page_count_full_gives_disk_full_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let store = Store::open(&path, Config::default()).unwrap();
    let before = random_blobs(1, 20, 1000);
    store
        .put_many(before.clone(), PutOptions::default())
        .await
        .unwrap();
    store
        .write(PutOptions::default(), |c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let _: i64 = c.query_row(
                &format!("PRAGMA max_page_count = {}", pages + 40),
                [],
                |r| r.get(0),
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let (acked, err) = fill(&store, 2, 16 * 1024, 1000).await;
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert!(store.stats().disk_full >= 1);
    // A second write fails the same way and changes nothing; reads keep working.
    let again = store.put(random_blobs(3, 1, 16 * 1024).remove(0)).await;
    assert!(matches!(again, Err(Error::DiskFull { .. })), "{again:?}");
    assert_all_readable(&store, &before).await;
    assert_all_readable(&store, &acked).await;
    // Room returns: the very next write succeeds, no reopen needed.
    store
        .write(PutOptions::default(), |c| {
            let _: i64 = c.query_row("PRAGMA max_page_count = 1073741823", [], |r| r.get(0))?;
            Ok(())
        })
        .await
        .unwrap();
    let later = random_blobs(4, 10, 16 * 1024);
    store
        .put_many(later.clone(), PutOptions::default())
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = Store::open(&path, Config::default()).unwrap();
    for set in [&before, &acked, &later] {
        assert_all_readable(&store, set).await;
    }
    assert_eq!(store.verify().await.unwrap().problems, Vec::<String>::new());
    store.close().await.unwrap();
}

/// A real full file system (a small tmpfs; needs root, as in CI).
#[tokio::test]
async fn full_tmpfs_gives_disk_full_and_resumes_when_space_returns() {
    let Some(fs) = Tmpfs::mount("3m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    };
    let path = fs.path().join("full.db");
    let store = Store::open(&path, Config::default()).unwrap();
    let (acked, err) = fill(&store, 5, 32 * 1024, 1000).await;
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert!(!acked.is_empty());
    assert_all_readable(&store, &acked).await;
    // Nothing was freed: still full.
    let again = store.put(random_blobs(6, 1, 32 * 1024).remove(0)).await;
    assert!(matches!(again, Err(Error::DiskFull { .. })), "{again:?}");
    // Space returns (the file system grows); the store was never told.
    assert!(fs.resize("16m"), "remount to grow the tmpfs");
    let later = random_blobs(7, 10, 32 * 1024);
    store
        .put_many(later.clone(), PutOptions::default())
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = Store::open(&path, Config::default()).unwrap();
    assert_all_readable(&store, &acked).await;
    assert_all_readable(&store, &later).await;
    assert_eq!(store.verify().await.unwrap().problems, Vec::<String>::new());
    store.close().await.unwrap();
}
