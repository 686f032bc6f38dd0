//! Code the store runs for others cannot change the connection it is lent for everyone after
//! it (issue 23, item 7): a write closure or staged op that tries to turn off durability,
//! lock the file, attach another database or replace the lane's hooks fails with
//! `ClosureChangedConnection`, its writes rolled back, and later batches run as configured;
//! a read closure can neither write nor change its connection.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::common::{random_blobs, temp_store};
use crate::support::junk_tables;
use seedbank_blobstore::rusqlite::{self, config::DbConfig, Connection};
use seedbank_blobstore::testing::bounded;
use seedbank_blobstore::{
    AppError, Blob, Config, Error, PoolKind, PutOptions, StagedBlob, StagedOp, Store,
};

/// Settings changes a closure could make through SQL, each the name it must be reported
/// under.
const SQL_CHANGES: &[(&str, &str)] = &[
    ("PRAGMA synchronous = OFF", "synchronous"),
    ("PRAGMA query_only = 1", "query_only"),
    ("PRAGMA locking_mode = EXCLUSIVE", "locking_mode"),
    ("PRAGMA journal_mode = DELETE", "journal_mode"),
    ("PRAGMA foreign_keys = ON", "foreign_keys"),
    ("PRAGMA main.wal_autocheckpoint = 100", "wal_autocheckpoint"),
    ("PRAGMA cache_size = 10", "cache_size"),
    ("ATTACH ':memory:' AS side", "ATTACH"),
    (
        "CREATE TEMP TRIGGER spy AFTER INSERT ON blobs BEGIN SELECT 1; END",
        "TEMP TRIGGER",
    ),
];

/// The writer connection's settings as a write closure sees them.
#[derive(Debug, PartialEq)]
struct WriterSettings {
    synchronous: i64,
    query_only: i64,
    locking_mode: String,
    journal_mode: String,
    foreign_keys: i64,
    wal_autocheckpoint: i64,
    databases: i64,
    temp_triggers: i64,
    fkey_config: bool,
}

fn settings_of(c: &Connection) -> rusqlite::Result<WriterSettings> {
    let int = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
    let text = |sql: &str| c.query_row(sql, [], |r| r.get::<_, String>(0));
    Ok(WriterSettings {
        synchronous: int("PRAGMA synchronous")?,
        query_only: int("PRAGMA query_only")?,
        locking_mode: text("PRAGMA locking_mode")?,
        journal_mode: text("PRAGMA journal_mode")?,
        foreign_keys: int("PRAGMA foreign_keys")?,
        wal_autocheckpoint: int("PRAGMA wal_autocheckpoint")?,
        databases: int("SELECT count(*) FROM pragma_database_list WHERE name != 'temp'")?,
        temp_triggers: int("SELECT count(*) FROM temp.sqlite_master WHERE type = 'trigger'")?,
        fkey_config: c.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY)?,
    })
}

/// The settings the lane runs with, read by a write closure of its own batch.
async fn writer_settings(store: &Store) -> WriterSettings {
    bounded(
        "a settings read on the lane",
        store.write(PutOptions::default(), |c| Ok(settings_of(c)?)),
    )
    .await
    .unwrap()
}

/// The lane's settings under `Config::default()`.
fn configured() -> WriterSettings {
    WriterSettings {
        synchronous: 2, // FULL
        query_only: 0,
        locking_mode: "normal".into(),
        journal_mode: "wal".into(),
        foreign_keys: 0,
        wal_autocheckpoint: 0,
        databases: 1,
        temp_triggers: 0,
        fkey_config: false,
    }
}

fn assert_changed<T: std::fmt::Debug>(r: &seedbank_blobstore::Result<T>, what: &str, how: &str) {
    match r {
        Err(Error::ClosureChangedConnection { setting }) => {
            assert!(setting.contains(what), "{how}: reported as {setting:?}")
        }
        other => panic!("{how}: expected ClosureChangedConnection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_write_closure_cannot_change_the_writer_connections_settings() {
    let (store, _dir, _) = temp_store(Config::default());
    assert_eq!(writer_settings(&store).await, configured());
    for &(sql, what) in SQL_CHANGES {
        for propagate in [false, true] {
            let how = format!(
                "{sql} (error {})",
                ["swallowed", "returned"][propagate as usize]
            );
            let r = bounded(
                "a closure changing a setting",
                store.write(PutOptions::default(), move |c| {
                    c.execute_batch("CREATE TABLE IF NOT EXISTS junk (x)")?;
                    let ran = c.execute_batch(sql);
                    if propagate {
                        ran?;
                    }
                    Ok(())
                }),
            )
            .await;
            assert_changed(&r, what, &how);
            assert_eq!(
                junk_tables(&store).await,
                0,
                "{how}: its writes were rolled back"
            );
            assert_eq!(writer_settings(&store).await, configured(), "{how}");
        }
    }
    // The lane carries on, its batches durable as configured.
    let cids = bounded(
        "puts",
        store.put_many(random_blobs(1, 20, 256), PutOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(store.has_many(&cids).await.unwrap(), vec![true; 20]);
    assert_eq!(store.stats().sqlite_busy, 0);
    bounded("close", store.close()).await.unwrap();
}

#[tokio::test]
async fn a_write_closure_replacing_the_lanes_hooks_fails_and_the_lane_puts_them_back() {
    let (store, _dir, path) = temp_store(Config::default());
    type Change = fn(&Connection);
    let changes: &[(Change, &str)] = &[
        (|c| c.commit_hook(Some(|| false)), "commit hook"),
        (|c| c.commit_hook(None::<fn() -> bool>), "commit hook"),
        (|c| c.rollback_hook(Some(|| {})), "rollback hook"),
        (|c| c.progress_handler(1, Some(|| true)), "progress handler"),
        (
            |c| {
                c.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, true)
                    .unwrap();
            },
            "ENABLE_FKEY",
        ),
        (
            // Without the authorizer, then through SQL.
            |c| {
                c.authorizer(
                    None::<fn(rusqlite::hooks::AuthContext<'_>) -> rusqlite::hooks::Authorization>,
                );
                c.execute_batch("PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE")
                    .unwrap();
            },
            "authorizer",
        ),
    ];
    for &(change, what) in changes {
        let r = bounded(
            "a closure replacing a hook",
            store.write(PutOptions::default(), move |c| {
                c.execute_batch("CREATE TABLE IF NOT EXISTS junk (x)")?;
                change(c);
                Ok(())
            }),
        )
        .await;
        assert_changed(&r, what, what);
        assert_eq!(junk_tables(&store).await, 0, "{what}: rolled back");
        assert_eq!(writer_settings(&store).await, configured(), "{what}");
        // The lane's own commit hook is back: a closure's COMMIT is refused again.
        let r = bounded(
            "a committing closure",
            store.write(PutOptions::default(), |c| {
                c.execute_batch("CREATE TABLE junk (x); COMMIT; BEGIN")?;
                Ok(())
            }),
        )
        .await;
        assert!(matches!(r, Err(Error::TransactionEnded)), "{what}: {r:?}");
        assert_eq!(
            junk_tables(&store).await,
            0,
            "{what}: the COMMIT was refused"
        );
    }
    // An update hook a closure installs would run on every later batch's rows.
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let r = bounded(
        "a closure installing an update hook",
        store.write(PutOptions::default(), move |c| {
            c.update_hook(Some(move |_, _: &str, _: &str, _| {
                s.fetch_add(1, Relaxed);
            }));
            Ok(())
        }),
    )
    .await;
    assert_changed(&r, "update hook", "update hook");
    let cids = bounded(
        "puts",
        store.put_many(random_blobs(2, 20, 256), PutOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(seen.load(Relaxed), 0, "the closure's update hook is gone");
    bounded("close", store.close()).await.unwrap();
    // Every acknowledged put is in the file.
    let store = Store::open(&path, Config::default()).unwrap();
    assert_eq!(store.has_many(&cids).await.unwrap(), vec![true; 20]);
    bounded("close", store.close()).await.unwrap();
}

/// A staged op that runs `sql` on the lane's connection and swallows its error.
struct SettingOp(&'static str);

impl StagedOp for SettingOp {
    fn apply(self: Box<Self>, conn: &Connection, _: &Blob, _: bool) -> Result<(), AppError> {
        let _ = conn.execute_batch(self.0);
        Ok(())
    }
}

#[tokio::test]
async fn a_staged_op_changing_a_setting_fails_its_batch_and_the_lane_carries_on() {
    let (store, _dir, _) = temp_store(Config::default());
    let bad = random_blobs(3, 1, 100).remove(0);
    let staged = StagedBlob {
        blob: bad.clone(),
        op: Some(Box::new(SettingOp("PRAGMA synchronous = OFF"))),
    };
    let r = bounded(
        "a staged put",
        store.put_staged(vec![staged], PutOptions::default()),
    )
    .await;
    assert_changed(&r, "synchronous", "staged op");
    assert!(
        !store.has(bad.cid()).await.unwrap(),
        "its batch was rolled back"
    );
    assert_eq!(writer_settings(&store).await, configured());
    let cids = bounded(
        "puts",
        store.put_many(random_blobs(4, 5, 100), PutOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(store.has_many(&cids).await.unwrap(), vec![true; 5]);
    bounded("close", store.close()).await.unwrap();
}

/// `query_only` and the open mode as every connection of `pool` reports them.
async fn reader_state(store: &Store, pool: PoolKind) -> Vec<i64> {
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(
            store
                .read(pool, |c| {
                    Ok(c.query_row("PRAGMA query_only", [], |r| r.get(0))?)
                })
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_closure_can_neither_write_nor_change_its_connection() {
    // One connection per pool, so each read lands on the one the last closure had.
    let config = Config {
        info_pool_size: 1,
        data_pool_size: 1,
        ..Config::default()
    };
    let (store, _dir, _) = temp_store(config);
    let blob = Blob::new(0x55, &b"kept"[..]);
    store.put(blob.clone()).await.unwrap();
    for pool in [PoolKind::Info, PoolKind::Data] {
        for (sql, what) in [
            ("PRAGMA query_only = 0", "query_only"),
            ("PRAGMA locking_mode = EXCLUSIVE", "locking_mode"),
            ("ATTACH ':memory:' AS side", "ATTACH"),
        ] {
            let r = store
                .read(pool, move |c| {
                    let _ = c.execute_batch(sql);
                    // Had it worked, this would write beside the lane.
                    let _ = c.execute_batch("DELETE FROM blobs");
                    Ok(())
                })
                .await;
            assert_changed(&r, what, sql);
            assert_eq!(
                reader_state(&store, pool).await,
                vec![1; 4],
                "{sql} on {pool:?}"
            );
        }
        // With the authorizer gone the closure can lift query_only, but its write is still
        // refused at COMMIT, and the connection is replaced.
        let r = store
            .read(pool, |c| {
                c.authorizer(
                    None::<fn(rusqlite::hooks::AuthContext<'_>) -> rusqlite::hooks::Authorization>,
                );
                c.execute_batch("PRAGMA query_only = 0")?;
                let deleted = c.execute("DELETE FROM blobs", []);
                assert!(deleted.is_err(), "a read closure deleted {deleted:?} rows");
                Ok(())
            })
            .await;
        assert_changed(&r, "authorizer", "authorizer removed");
        assert_eq!(reader_state(&store, pool).await, vec![1; 4], "{pool:?}");
    }
    assert!(store.has(blob.cid()).await.unwrap());
    assert_eq!(store.contents().await.unwrap().cids, 1);
    assert_eq!(store.stats().sqlite_busy, 0);
    store.close().await.unwrap();
}
