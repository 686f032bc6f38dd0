//! The WAL bound (`Config::wal_bound_bytes`: cap + one batch) holds when interactive
//! requests ride along with closing bulk batches: a background import saturates the lane
//! in full batches while interactive writers keep arriving, under a small cap so the WAL
//! cycles many times. Interactive write closures look, from inside their batch, for
//! background blobs not yet committed: proof that they rode a bulk batch rather than
//! getting batches of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{random_blobs, temp_store};
use parking_lot::Mutex;
use seedbank_blobstore::rusqlite::{Connection, OpenFlags};
use seedbank_blobstore::{Config, Priority, PutOptions, Synchronous};

/// Background blobs (the import's are 4 KiB; users write 16 KiB) as `conn` sees them.
const BACKGROUND_BLOBS: &str = "SELECT count(*) FROM blobs WHERE size = 4096";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_requests_riding_along_bulk_batches_keep_the_wal_within_its_bound() {
    let config = Config {
        wal_cap_bytes: 8 * 1024 * 1024,
        synchronous: Synchronous::Normal,
        ..Config::default()
    };
    let bound = config.wal_bound_bytes();
    let (store, _dir, path) = temp_store(config);
    let stop = Arc::new(AtomicBool::new(false));
    // Interactive closures that found background blobs of their own batch, not yet
    // committed, beside them.
    let rode = Arc::new(AtomicU64::new(0));
    let mut users = Vec::new();
    for u in 0..8u64 {
        let (store, stop, rode) = (store.clone(), stop.clone(), rode.clone());
        // What is committed, seen from outside the lane's transaction.
        let outside = Arc::new(Mutex::new(
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap(),
        ));
        users.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                let blobs = random_blobs(1_000_000 + u * 100_000 + n, 4, 16 * 1024);
                store
                    .put_many(blobs, PutOptions::new(Priority::Interactive, "user"))
                    .await
                    .unwrap();
                let (outside, rode) = (outside.clone(), rode.clone());
                store
                    .write(PutOptions::new(Priority::Interactive, "user"), move |c| {
                        let inside: i64 = c.query_row(BACKGROUND_BLOBS, [], |r| r.get(0))?;
                        let committed: i64 =
                            outside
                                .lock()
                                .query_row(BACKGROUND_BLOBS, [], |r| r.get(0))?;
                        if inside > committed {
                            rode.fetch_add(1, Relaxed);
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    // 48 MiB of bulk import: 6 times the cap.
    let import = async {
        for r in 0..48u64 {
            let blobs = random_blobs(r, 256, 4096);
            store
                .put_many(blobs, PutOptions::new(Priority::Background, "import"))
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), import)
        .await
        .expect("the import stalled");
    stop.store(true, Relaxed);
    let mut interactive = 0;
    for u in users {
        interactive += u.await.unwrap();
    }
    let stats = store.stats();
    assert!(interactive > 8, "interactive writers ran alongside");
    assert!(
        rode.load(Relaxed) > 0,
        "no interactive request rode a bulk batch ({interactive} ran)"
    );
    assert!(stats.wal.rewind + stats.wal.truncate > 0, "{:?}", stats.wal);
    assert_eq!(stats.sqlite_busy, 0);
    assert!(
        stats.wal.peak_bytes <= bound,
        "WAL peak {} > bound {bound}: {:?}",
        stats.wal.peak_bytes,
        stats.wal
    );
}
