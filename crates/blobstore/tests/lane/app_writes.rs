//! Application writes through the lane: a failing closure fails alone, coalesced writes
//! keep the newest value in their class, a running write is never superseded.

use crate::common::{block_lane, temp_store};
use seedbank_blobstore::{
    rusqlite, AppError, Config, Error, PoolKind, Priority, PutOptions, Store,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

/// A store whose app table `peers` exists (created through the lane, as an app would).
async fn store_with_peers_table() -> (Store, tempfile::TempDir) {
    let (store, dir, _) = temp_store(Config::default());
    store
        .write(PutOptions::default(), create_peers_table)
        .await
        .unwrap();
    (store, dir)
}

fn create_peers_table(conn: &rusqlite::Connection) -> Result<(), AppError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS peers (id TEXT PRIMARY KEY, seen INTEGER)")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_closure_does_not_fail_the_others_in_its_batch() {
    // Batches close only when the queue runs dry (no time budget within reach), so the 20
    // writes queued behind the blocker share one batch however slow the machine is.
    let mut config = Config::default();
    config.batch.max_hold = Duration::from_secs(60);
    config.batch.max_hold_bulk = Duration::from_secs(60);
    let (store, _dir, _) = temp_store(config);
    store
        .write(PutOptions::default(), create_peers_table)
        .await
        .unwrap();
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(opts(Priority::Normal, "peers"), move |conn| {
                        conn.execute(
                            "INSERT INTO peers (id, seen) VALUES (?1, ?2)",
                            (format!("p{i}"), i),
                        )?;
                        if i == 7 {
                            return Err("peer 7 is bad".into());
                        }
                        Ok(i)
                    })
                    .await
            })
        })
        .collect();
    wait_for("20 queued normal requests", || {
        store.stats().classes[1].queued_requests >= 20
    })
    .await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    for (i, w) in writes.into_iter().enumerate() {
        match w.await.unwrap() {
            Ok(v) => assert_eq!(v, i),
            Err(Error::App(e)) => assert_eq!((i, e.to_string().as_str()), (7, "peer 7 is bad")),
            Err(e) => panic!("write {i}: {e}"),
        }
    }
    // All 20 were admitted while the blocker's batch held the lane, and the 19 acked ran
    // in the one batch after it, beside the failing one.
    let peers = source(&store, "peers");
    assert_eq!(peers.queue_wait_batches.count, 19);
    assert_eq!(
        (peers.queue_wait_batches.p50, peers.queue_wait_batches.max),
        (1, 1),
        "{:?}",
        peers.queue_wait_batches
    );
    let rows: i64 = store
        .read(PoolKind::Data, |conn| {
            Ok(conn.query_row("SELECT count(*) FROM peers", [], |r| r.get(0))?)
        })
        .await
        .unwrap();
    assert_eq!(rows, 19, "only the failing closure was rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_writes_keep_only_the_newest_value() {
    let (store, _dir) = store_with_peers_table().await;
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut writes = Vec::new();
    for seen in 1..=1000i64 {
        let (s, runs) = (store.clone(), runs.clone());
        let o = opts(Priority::Background, "connects").coalesce("peer:alice");
        writes.push(tokio::spawn(async move {
            s.write(o, move |conn| {
                runs.fetch_add(1, Ordering::SeqCst);
                conn.execute(
                    "INSERT INTO peers (id, seen) VALUES ('alice', ?1)
                         ON CONFLICT (id) DO UPDATE SET seen = excluded.seen",
                    [seen],
                )?;
                Ok(())
            })
            .await
        }));
        // Submit in order so "newest" is well defined.
        bounded("the write to queue", async {
            while store.stats().coalesced + store.stats().classes[2].queued_requests < seen as u64 {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let (mut ok, mut superseded) = (0, 0);
    for w in writes {
        match w.await.unwrap() {
            Ok(()) => ok += 1,
            Err(Error::Superseded) => superseded += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, superseded), (1, 999));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "1,000 connects became one row update"
    );
    let seen: i64 = store
        .read(PoolKind::Info, |conn| {
            Ok(
                conn.query_row("SELECT seen FROM peers WHERE id = 'alice'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(seen, 1000);
    assert_eq!(store.stats().coalesced, 999);
}

/// Spawns an app write that appends `label` to `log` when the lane runs it.
fn logged_write(
    store: &Store,
    o: PutOptions,
    log: &Arc<std::sync::Mutex<Vec<String>>>,
    label: &str,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    let (store, log, label) = (store.clone(), log.clone(), label.to_string());
    tokio::spawn(async move {
        store
            .write(o, move |_| {
                log.lock().unwrap().push(label);
                Ok(())
            })
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalescing_stays_in_its_class_and_the_newer_write_keeps_the_older_ones_place() {
    let (store, _dir, _) = temp_store(Config::default());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let bg = |source: &str| opts(Priority::Background, source);
    // Source `a` queues a keyed write, then source `b` three plain ones.
    let older = logged_write(&store, bg("a").coalesce("peer:k"), &log, "a:old");
    wait_for("a:old queued", || queued(&store, Priority::Background) == 1).await;
    let mut plain = Vec::new();
    for i in 1..=3 {
        plain.push(logged_write(&store, bg("b"), &log, &format!("b:{i}")));
        wait_for("b queued", || queued(&store, Priority::Background) == 1 + i).await;
    }
    // The same key in another class is another write: both run.
    let normal = logged_write(
        &store,
        opts(Priority::Normal, "n").coalesce("peer:k"),
        &log,
        "normal",
    );
    wait_for("normal queued", || queued(&store, Priority::Normal) == 1).await;
    assert_eq!(store.stats().coalesced, 0, "no coalescing across classes");
    // Source `c` writes the key again in Background: it replaces `a`'s write, in `a`'s place.
    let newer = logged_write(&store, bg("c").coalesce("peer:k"), &log, "c:new");
    wait_for("c:new coalesced", || store.stats().coalesced == 1).await;
    assert_eq!(queued(&store, Priority::Background), 4);

    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    let older = bounded("a:old", older).await.unwrap();
    assert!(matches!(older, Err(Error::Superseded)), "{older:?}");
    bounded("c:new", newer).await.unwrap().unwrap();
    bounded("normal", normal).await.unwrap().unwrap();
    for p in plain {
        bounded("b", p).await.unwrap().unwrap();
    }
    // Normal first (higher class); then `a`'s turn, taken by `c`'s write, before `b`'s.
    assert_eq!(
        *log.lock().unwrap(),
        ["normal", "c:new", "b:1", "b:2", "b:3"],
        "run order"
    );
    let stats = store.stats();
    assert_eq!(stats.classes[2].coalesced, 1);
    assert_eq!(stats.classes[1].coalesced, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_write_is_never_superseded() {
    let (store, _dir, _) = temp_store(Config::default());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let key = || opts(Priority::Background, "connects").coalesce("peer:k");
    // The first keyed write runs on the lane and holds it until released.
    let (started, running) = tokio::sync::oneshot::channel();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let first = {
        let (store, log, o) = (store.clone(), log.clone(), key());
        tokio::spawn(async move {
            store
                .write(o, move |_| {
                    let _ = started.send(());
                    let _ = wait.recv();
                    log.lock().unwrap().push("first".to_string());
                    Ok(())
                })
                .await
        })
    };
    bounded("the first write to run", running).await.unwrap();
    // Two more with the same key while it runs: the third replaces the second (queued),
    // neither touches the first (running).
    let second = logged_write(&store, key(), &log, "second");
    wait_for("second queued", || {
        queued(&store, Priority::Background) == 1
    })
    .await;
    let third = logged_write(&store, key(), &log, "third");
    wait_for("third coalesced", || store.stats().coalesced == 1).await;
    release.send(()).unwrap();
    bounded("first", first).await.unwrap().unwrap();
    let second = bounded("second", second).await.unwrap();
    assert!(matches!(second, Err(Error::Superseded)), "{second:?}");
    bounded("third", third).await.unwrap().unwrap();
    assert_eq!(*log.lock().unwrap(), ["first", "third"]);
    assert_eq!(store.stats().coalesced, 1);
}
