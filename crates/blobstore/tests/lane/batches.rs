//! Batch closing: bulk batches fill to `max_hold_bulk`, waiting interactive work closes
//! them early, a waiting background request leads a batch within its minimum share.

use crate::common::{block_lane, random_blobs, temp_store};
use seedbank_blobstore::{Config, Priority, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

/// A config whose batches are bounded only by time: blob and byte budgets out of reach, and
/// room to queue a whole [`bulk_load`] at once.
fn time_bound_config() -> Config {
    let mut config = Config {
        request_max_blobs: 16,
        ..Config::default()
    };
    config.queue.max_requests = 100_000;
    config.batch.max_blobs = 10_000_000;
    config.batch.max_bytes = 1 << 40;
    config.batch.max_hold = Duration::from_millis(10);
    config.batch.max_hold_bulk = Duration::from_millis(150);
    config
}

/// A deep Background queue: four producers importing `each` small blobs (generated up
/// front, so the queue never waits on them). Abort the tasks to cancel what is left.
fn bulk_load(store: &Store, each: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4u64)
        .map(|i| {
            let blobs = random_blobs(1_000 + i, each, 16);
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_many(blobs, opts(Priority::Background, &format!("bulk-{i}")))
                    .await
                    .unwrap();
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_batches_fill_to_max_hold_bulk_and_close_by_it() {
    let config = time_bound_config();
    let bulk_hold = config.batch.max_hold_bulk.as_micros() as u64;
    let (store, _dir, _) = temp_store(config);
    let load = bulk_load(&store, 60_000);
    wait_for("eight bulk batches", || store.stats().batches >= 8).await;
    let stats = store.stats();
    for l in &load {
        l.abort();
    }
    // The queue was still deep: these batches were closed by time, not by running dry.
    assert!(stats.classes[2].queued_requests > 100, "{stats}");
    // With no blob or byte budget in reach, the hold time is what closes a batch: they fill
    // to about `max_hold_bulk` and no further. (Unbounded, one batch would hold the lane
    // for the whole queue, seconds; the margins allow for a slow fsync on a busy machine.)
    let hold = stats.batch_hold_us;
    assert!(hold.p50 >= bulk_hold / 2, "batch hold µs {hold:?}");
    assert!(hold.p90 <= 3 * bulk_hold, "batch hold µs {hold:?}");
    assert!(hold.max <= 6 * bulk_hold, "batch hold µs {hold:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_interactive_work_closes_batches_within_max_hold() {
    let mut config = time_bound_config();
    // A bulk hold far above the short one, so that scheduling noise on a busy machine
    // cannot blur which of the two closed the batches.
    config.batch.max_hold_bulk = Duration::from_secs(1);
    // A waiting lower class leads every batch and fills it first: users never lead, and
    // only `max_hold` can close a batch they wait on.
    config.min_class_share = 1.0;
    let (hold_ms, bulk_ms) = (
        config.batch.max_hold.as_millis() as u64,
        config.batch.max_hold_bulk.as_millis() as u64,
    );
    let (store, _dir, _) = temp_store(config);
    // Users keep interactive work coming: four putting a blob at a time, four more with
    // four requests each in flight.
    let stop = Arc::new(AtomicBool::new(false));
    let users: Vec<_> = (0..8u64)
        .map(|i| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let n = if i < 4 { 1 } else { 64 };
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let blobs = random_blobs(7_000 + (i << 32 | round), n, 64);
                    store
                        .put_many(blobs, opts(Priority::Interactive, &format!("user-{i}")))
                        .await
                        .unwrap();
                    round += 1;
                }
            })
        })
        .collect();
    wait_for("the users to flow", || store.stats().batches >= 10).await;
    // Bulk work whose requests are slow (an app write standing for heavy SQL), so that no
    // budget but time closes a batch it leads.
    let load: Vec<_> = (0..3_000u64)
        .map(|i| {
            let store = store.clone();
            let o = opts(Priority::Background, &format!("bulk-{}", i % 4));
            tokio::spawn(async move {
                let _ = store
                    .write(o, |_| {
                        std::thread::sleep(Duration::from_millis(2));
                        Ok(())
                    })
                    .await;
            })
        })
        .collect();
    wait_for("the bulk load to queue", || {
        queued(&store, Priority::Background) > 1_000
    })
    .await;
    let background_before = store.stats().classes[2].acks;
    wait_for("sixty batches", || store.stats().batches >= 60).await;
    let stats = store.stats();
    stop.store(true, Ordering::Relaxed);
    for u in users {
        bounded("a user", u).await.unwrap();
    }
    for l in &load {
        l.abort();
    }
    // Batches close by `max_hold` while a user waits, far below `max_hold_bulk`, so a user
    // waits about one short batch. (The margin allows for a slow fsync and a busy CI box.
    // Batch holds themselves also count time before any user came back, so the guarantee
    // shows in what users waited.)
    let wait = stats.classes[0].queue_wait_us;
    let limit = (hold_ms + 400) * 1_000;
    assert!(limit < bulk_ms * 1_000 / 2);
    assert!(
        wait.p99 <= limit,
        "interactive queue wait µs {wait:?}, limit {limit}"
    );
    // ... while Background led them with a deep queue (so time, not its queue running dry,
    // closed them).
    assert!(stats.classes[2].acks > background_before, "Background led");
    assert!(
        stats.classes[2].queued_requests > 100,
        "the bulk load ran throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_background_request_leads_a_batch_within_its_min_share() {
    let mut config = Config {
        request_max_blobs: 8,
        ..Config::default()
    };
    config.batch.max_blobs = 32;
    // min_class_share 0.1: a waiting lower class leads at least one batch in ten.
    let lead_every = (1.0 / config.min_class_share).ceil() as u64;
    let (store, _dir, _) = temp_store(config);
    for round in 0..3 {
        // Behind the held lane: 200 interactive requests (at most 8 a batch: 25 batches of
        // users waiting at least), then one background write of a source of its own.
        let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
        let prefix = format!("ui{round}");
        let users = interactive_backlog(&store, &prefix, 8, 25);
        wait_for("the interactive backlog to queue", || {
            queued(&store, Priority::Interactive) == 200
        })
        .await;
        let name = format!("bulk-{round}");
        let write = {
            let s = store.clone();
            let o = opts(Priority::Background, &name);
            tokio::spawn(async move { s.write(o, |_| Ok(())).await })
        };
        wait_for("the background write to queue", || {
            queued(&store, Priority::Background) == 1
        })
        .await;
        release.send(()).unwrap();
        bounded("the blocker", blocker).await.unwrap().unwrap();
        bounded("a background write under interactive load", write)
            .await
            .unwrap()
            .unwrap();
        for u in users {
            bounded("a user", u).await.unwrap();
        }
        // From its admission: the blocker's batch in progress, then `lead_every - 1`
        // interactive-led ones; the next is its own. Users' work went first until then.
        let waited = most_batches_waited(&store, &name);
        assert!(
            waited <= lead_every,
            "background write {round} waited {waited} batches"
        );
        assert!(
            waited + 1 >= lead_every,
            "background write {round} led after {waited} batches, before its share was due"
        );
        // Users were still waiting when it ran: it led under load.
        let users_waited = most_batches_waited_by(&store, &prefix);
        assert!(
            users_waited > waited,
            "round {round}: users waited {users_waited} batches at most, the write {waited}"
        );
    }
}
