//! The lane never dies and never lies: panics and transaction-ending closures fail their
//! request (or batch), the lane carries on, and nothing acknowledged is lost.

use std::time::Duration;

use crate::common::{random_blobs, temp_store};
use crate::support::junk_tables;
use seedbank_blobstore::{
    AppError, Blob, Config, Error, PoolKind, Priority, PutOptions, StagedBlob, StagedOp, Store,
};

/// Bounds every wait so a dead lane fails the test instead of hanging it.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("a caller waited on the lane for 60 s")
}

type PutTask = tokio::task::JoinHandle<(cid::Cid, seedbank_blobstore::Result<cid::Cid>)>;

/// 400 puts of 512 B from 8 sources, each its own task, racing whatever the test runs.
fn spawn_puts(store: &Store, seed: u64) -> Vec<PutTask> {
    random_blobs(seed, 400, 512)
        .into_iter()
        .enumerate()
        .map(|(i, blob)| {
            let store = store.clone();
            let opts = PutOptions::new(Priority::Normal, &format!("src{}", i % 8));
            tokio::spawn(async move { (*blob.cid(), store.put_with(blob, opts).await) })
        })
        .collect()
}

/// The CIDs of the puts that were acknowledged; any failure but `TransactionEnded` fails
/// the test.
async fn acknowledged(puts: Vec<PutTask>) -> Vec<cid::Cid> {
    let mut acked = Vec::new();
    for p in puts {
        let (cid, r) = bounded(p).await.unwrap();
        match r {
            Ok(_) => acked.push(cid),
            Err(Error::TransactionEnded) => {}
            Err(e) => panic!("unexpected put error: {e}"),
        }
    }
    acked
}

#[tokio::test]
async fn a_panicking_closure_fails_alone_and_the_lane_carries_on() {
    let (store, _dir, _) = temp_store(Config::default());
    let r = bounded(
        store.write(PutOptions::default(), |conn| -> Result<(), AppError> {
            conn.execute_batch("CREATE TABLE t (x)")?;
            panic!("boom in a closure");
        }),
    )
    .await;
    assert!(
        matches!(&r, Err(Error::Panicked { message }) if message.contains("boom")),
        "{r:?}"
    );
    let blob = random_blobs(1, 1, 100).remove(0);
    let cid = bounded(store.put(blob.clone())).await.unwrap();
    assert_eq!(
        bounded(store.get(&cid)).await.unwrap().unwrap(),
        blob.data()
    );
    // The closure's table was rolled back with its savepoint.
    let tables: i64 = store
        .read(PoolKind::Info, |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(tables, 0);
    assert_eq!(store.stats().lane_panics, 1);
    bounded(store.close()).await.unwrap();
}

struct PanickingOp;

impl StagedOp for PanickingOp {
    fn apply(
        self: Box<Self>,
        _conn: &seedbank_blobstore::rusqlite::Connection,
        _blob: &Blob,
        _inserted: bool,
    ) -> Result<(), AppError> {
        panic!("boom in a staged op")
    }
}

#[tokio::test]
async fn a_panicking_staged_op_fails_its_batch_and_the_lane_carries_on() {
    let (store, _dir, _) = temp_store(Config::default());
    let bad = random_blobs(2, 1, 100).remove(0);
    let staged = StagedBlob {
        blob: bad.clone(),
        op: Some(Box::new(PanickingOp)),
    };
    let r = bounded(store.put_staged(vec![staged], PutOptions::default())).await;
    assert!(matches!(r, Err(Error::Panicked { .. })), "{r:?}");
    assert!(!bounded(store.has(bad.cid())).await.unwrap(), "rolled back");
    let good = random_blobs(3, 5, 100);
    let cids = bounded(store.put_many(good, PutOptions::default()))
        .await
        .unwrap();
    assert_eq!(bounded(store.has_many(&cids)).await.unwrap(), vec![true; 5]);
    assert_eq!(store.stats().lane_panics, 1);
    bounded(store.close()).await.unwrap();
}

/// 400 concurrent puts race closures that end the lane's transaction; every acknowledged
/// put must be stored after a reopen and each bad closure must get `TransactionEnded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closures_ending_the_transaction_never_lose_acknowledged_puts() {
    // Small batches, so that most batches hold no bad closure and must commit.
    let mut config = Config::default();
    config.batch.max_blobs = 16;
    let (store, dir, path) = temp_store(config);
    let puts = spawn_puts(&store, 4);
    let mut bad = Vec::new();
    for sql in [
        "COMMIT; BEGIN",
        "ROLLBACK; BEGIN",
        "COMMIT",
        "ROLLBACK; BEGIN IMMEDIATE",
    ] {
        for _ in 0..2 {
            let store = store.clone();
            bad.push(tokio::spawn(async move {
                store
                    .write(PutOptions::default(), move |conn| {
                        conn.execute_batch("CREATE TABLE IF NOT EXISTS junk (x)")?;
                        // Whether SQLite accepts the COMMIT or not, the batch must fail.
                        let _ = conn.execute_batch(sql);
                        Ok(())
                    })
                    .await
            }));
            tokio::task::yield_now().await;
        }
    }
    let mut acked = acknowledged(puts).await;
    for b in bad {
        let r = bounded(b).await.unwrap();
        assert!(matches!(r, Err(Error::TransactionEnded)), "{r:?}");
    }
    assert!(!acked.is_empty());
    assert!(store.stats().transactions_ended >= 8);
    // The lane still works after all that.
    let after = random_blobs(5, 1, 64).remove(0);
    acked.push(bounded(store.put(after)).await.unwrap());
    bounded(store.close()).await.unwrap();
    drop(store);

    let store = Store::open(&path, Config::default()).unwrap();
    let present = store.has_many(&acked).await.unwrap();
    let lost = present.iter().filter(|p| !**p).count();
    assert_eq!(lost, 0, "{lost} of {} acknowledged puts lost", acked.len());
    // No bad closure's table was committed.
    let junk: i64 = junk_tables(&store).await;
    assert_eq!(junk, 0);
    store.close().await.unwrap();
    drop(dir);
}

/// A staged op that runs `sql` on the lane's connection, then returns its error or not.
struct EndingOp {
    sql: &'static str,
    propagate: bool,
}

impl StagedOp for EndingOp {
    fn apply(
        self: Box<Self>,
        conn: &seedbank_blobstore::rusqlite::Connection,
        _blob: &Blob,
        _inserted: bool,
    ) -> Result<(), AppError> {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS junk (x)")?;
        let ran = conn.execute_batch(self.sql);
        if self.propagate {
            ran?;
        }
        Ok(())
    }
}

/// The staged-op variant of issue 12: 400 concurrent puts race staged ops that end the
/// lane's transaction (and either swallow or return SQLite's error). Every acknowledged put
/// must be stored after a reopen, no bad op's blob or table may be, and each bad put — and
/// every put that shared its batch — must get `TransactionEnded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_ops_ending_the_transaction_never_lose_acknowledged_puts() {
    let mut config = Config::default();
    config.batch.max_blobs = 16;
    let (store, dir, path) = temp_store(config);
    let puts = spawn_puts(&store, 6);
    let mut bad = Vec::new();
    let bad_blobs = random_blobs(7, 10, 256);
    let sqls = [
        "COMMIT; BEGIN",
        "ROLLBACK; BEGIN",
        "COMMIT",
        "ROLLBACK; BEGIN IMMEDIATE",
        "ROLLBACK",
    ];
    let ops = sqls
        .into_iter()
        .flat_map(|sql| [false, true].map(|propagate| EndingOp { sql, propagate }));
    for (op, blob) in ops.zip(bad_blobs.iter().cloned()) {
        let store = store.clone();
        let what = format!("{} ({})", op.sql, op.propagate);
        bad.push(tokio::spawn(async move {
            let staged = vec![StagedBlob {
                blob,
                op: Some(Box::new(op)),
            }];
            (what, store.put_staged(staged, PutOptions::default()).await)
        }));
        tokio::task::yield_now().await;
    }
    let mut acked = acknowledged(puts).await;
    for b in bad {
        let (what, r) = bounded(b).await.unwrap();
        assert!(matches!(r, Err(Error::TransactionEnded)), "{what}: {r:?}");
    }
    assert!(!acked.is_empty());
    assert!(store.stats().transactions_ended >= bad_blobs.len() as u64);
    let after = random_blobs(8, 1, 64).remove(0);
    acked.push(bounded(store.put(after)).await.unwrap());
    bounded(store.close()).await.unwrap();
    drop(store);

    let store = Store::open(&path, Config::default()).unwrap();
    let present = bounded(store.has_many(&acked)).await.unwrap();
    let lost = present.iter().filter(|p| !**p).count();
    assert_eq!(lost, 0, "{lost} of {} acknowledged puts lost", acked.len());
    let bad_cids: Vec<_> = bad_blobs.iter().map(|b| *b.cid()).collect();
    let stored = bounded(store.has_many(&bad_cids)).await.unwrap();
    assert_eq!(stored, vec![false; bad_cids.len()], "a bad op's blob");
    let junk: i64 = junk_tables(&store).await;
    assert_eq!(junk, 0);
    bounded(store.close()).await.unwrap();
    drop(dir);
}
