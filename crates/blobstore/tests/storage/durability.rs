//! The settings durability rests on are really set on the writer connection (the SIGKILL
//! test alone would pass with `synchronous=OFF`).

use crate::common::temp_store;
use seedbank_blobstore::{Config, PutOptions, Synchronous};

/// `(synchronous, wal_autocheckpoint, journal_mode, fullfsync)` as the writer sees them.
async fn writer_pragmas(config: Config) -> (i64, i64, String, i64) {
    let (store, _dir, _) = temp_store(config);
    let got = store
        .write(PutOptions::default(), |c| {
            let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            Ok((
                one("PRAGMA synchronous")?,
                one("PRAGMA wal_autocheckpoint")?,
                mode,
                one("PRAGMA fullfsync")?,
            ))
        })
        .await
        .unwrap();
    store.close().await.unwrap();
    got
}

#[tokio::test]
async fn the_writer_runs_with_synchronous_full_and_no_autocheckpoint() {
    let (sync, autocheckpoint, mode, fullfsync) = writer_pragmas(Config::default()).await;
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(
        autocheckpoint, 0,
        "wal_autocheckpoint=0: the checkpointer does it"
    );
    assert_eq!(mode, "wal");
    // Only Apple's fsync leaves data in the drive's cache.
    assert_eq!(fullfsync, i64::from(cfg!(target_vendor = "apple")));
}

#[tokio::test]
async fn synchronous_normal_is_honoured_when_asked_for() {
    let config = Config {
        synchronous: Synchronous::Normal,
        ..Config::default()
    };
    let (sync, autocheckpoint, _, fullfsync) = writer_pragmas(config).await;
    assert_eq!((sync, autocheckpoint, fullfsync), (1, 0, 0));
}
