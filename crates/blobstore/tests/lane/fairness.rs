//! Fair admission: interactive requests wait about one batch, equal sources get equal
//! shares, a flooding source cannot starve a trickling one, background keeps moving.

use crate::common::{block_lane, jain, random_blobs, temp_store};
use seedbank_blobstore::{Blob, Config, Priority};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_put_waits_about_one_batch_during_a_100k_background_import() {
    // Batches of 512 blobs: the import takes about two hundred of them, so it is still
    // running when the last of the 50 interactive puts is acknowledged.
    let mut config = Config::default();
    config.batch.max_blobs = 512;
    let (store, _dir, _) = temp_store(config);
    let import = {
        let store = store.clone();
        let blobs = random_blobs(1, 100_000, 64);
        tokio::spawn(async move {
            store
                .put_many(blobs, opts(Priority::Background, "import"))
                .await
        })
    };
    // Wait until the import is really flowing.
    wait_for("the import to flow", || {
        store.stats().blobs_written >= 5_000
    })
    .await;
    let mut competed = 0;
    for (i, blob) in random_blobs(2, 50, 256).into_iter().enumerate() {
        let before = batches(&store);
        let import_queued = store.stats().classes[2].queued_requests;
        bounded(
            "an interactive put",
            store.put_with(blob, opts(Priority::Interactive, "user")),
        )
        .await
        .unwrap();
        // From its admission: the batch in progress and at most one batch owed to a lower
        // class committed before its own.
        let waited = most_batches_waited(&store, "user");
        assert!(
            waited <= 2,
            "interactive put {i} waited {waited} batches from admission to its own \
             ({} from call to ack)",
            batches(&store) - before
        );
        // The import had requests queued when this put was admitted and still has after
        // its ack: the put really competed with it (and did not just run after it).
        if import_queued > 0 && store.stats().classes[2].queued_requests > 0 {
            competed += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        competed, 50,
        "interactive puts admitted while background requests were queued"
    );
    let done = bounded("the import", import).await.unwrap().unwrap();
    assert_eq!(done.len(), 100_000);
    let stats = store.stats();
    let interactive = &stats.classes[0];
    assert_eq!(interactive.acks, 50);
    assert_eq!(interactive.queue_wait_batches.count, 50);
    assert_eq!(stats.sqlite_busy, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_waited_are_counted_from_admission_to_the_requests_own_batch() {
    // One blob fills a batch, so two puts queued together commit in two batches.
    let mut config = Config::default();
    config.batch.max_blobs = 1;
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let mut blobs = random_blobs(3, 3, 64);
    let put = |blob: Blob, name: &str| {
        let (store, o) = (store.clone(), opts(Priority::Normal, name));
        tokio::spawn(async move { store.put_with(blob, o).await })
    };
    let first = put(blobs.pop().unwrap(), "first");
    wait_for("first queued", || queued(&store, Priority::Normal) == 1).await;
    let second = put(blobs.pop().unwrap(), "second");
    wait_for("second queued", || queued(&store, Priority::Normal) == 2).await;
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    bounded("first", first).await.unwrap().unwrap();
    bounded("second", second).await.unwrap().unwrap();
    // Both were admitted while the blocker's batch was in progress: `first` waited for it,
    // `second` for it and for `first`'s.
    assert_eq!(most_batches_waited(&store, "first"), 1);
    assert_eq!(most_batches_waited(&store, "second"), 2);
    // Admitted to an idle lane: its own batch is the next, however long the caller took.
    bounded("an idle put", put(blobs.pop().unwrap(), "idle"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(most_batches_waited(&store, "idle"), 0);
    assert_eq!(store.stats().batches, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_equal_sources_get_equal_shares() {
    let config = Config {
        request_max_blobs: 16,
        ..Config::default()
    };
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let first_done = Arc::new(AtomicBool::new(false));
    let snapshot = Arc::new(std::sync::Mutex::new(None));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, first_done, snapshot) =
                (store.clone(), first_done.clone(), snapshot.clone());
            let blobs = random_blobs(100 + i, 2_000, 512);
            tokio::spawn(async move {
                store
                    .put_many(blobs, opts(Priority::Normal, &format!("peer-{i}")))
                    .await
                    .unwrap();
                if !first_done.swap(true, Ordering::SeqCst) {
                    *snapshot.lock().unwrap() = Some(store.stats());
                }
            })
        })
        .collect();
    // Let every source queue its work, then open the lane.
    wait_for("every source to queue", || {
        store.stats().classes[1].queued_requests >= 16 * 2_000 / 16
    })
    .await;
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    for t in tasks {
        bounded("a source", t).await.unwrap();
    }
    // Shares while all 16 were competing: when the first finished.
    let stats = snapshot.lock().unwrap().take().unwrap();
    let shares: Vec<f64> = stats
        .sources
        .iter()
        .filter(|s| s.name.starts_with("peer-"))
        .map(|s| s.blobs as f64)
        .collect();
    assert_eq!(shares.len(), 16);
    let index = jain(&shares);
    // The README's figure: Jain's index ≥ 0.98 over 16 equal sources.
    assert!(index >= 0.98, "Jain's index {index:.3} over {shares:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_cannot_starve_a_trickling_one() {
    let (store, _dir, _) = temp_store(Config::default());
    let flood_done = Arc::new(AtomicBool::new(false));
    let flood = {
        let (store, flood_done) = (store.clone(), flood_done.clone());
        let blobs = random_blobs(7, 100_000, 128);
        tokio::spawn(async move {
            store
                .put_many(blobs, opts(Priority::Normal, "flood"))
                .await
                .unwrap();
            flood_done.store(true, Ordering::SeqCst);
        })
    };
    wait_for("the flood to flow", || store.stats().blobs_written >= 2_000).await;
    for (i, blob) in random_blobs(8, 8, 256).into_iter().enumerate() {
        let before = batches(&store);
        bounded(
            "a trickle put",
            store.put_with(blob, opts(Priority::Normal, "trickle")),
        )
        .await
        .unwrap();
        // Same class: it joins the DRR ring at admission and is served in the batch in
        // progress or the next one, whatever the flood has queued.
        let waited = most_batches_waited(&store, "trickle");
        assert!(
            waited <= 2,
            "trickle put {i} waited {waited} batches from admission to its own \
             ({} from call to ack)",
            batches(&store) - before
        );
    }
    assert_eq!(source(&store, "trickle").queue_wait_batches.count, 8);
    assert!(
        !flood_done.load(Ordering::SeqCst),
        "the trickle finished while the flood ran"
    );
    flood.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_makes_progress_under_sustained_interactive_load() {
    // Requests of 8 blobs, batches of at most 64 (128 with interactive riding along). A
    // backlog of 1,024 interactive requests, at most 16 a batch, keeps users waiting for 64
    // batches at least; 20 background requests (an import) are queued beside it.
    let mut config = Config {
        request_max_blobs: 8,
        ..Config::default()
    };
    config.batch.max_blobs = 64;
    let lead_every = (1.0 / config.min_class_share).ceil() as u64;
    let (store, _dir, _) = temp_store(config);
    let (blocker, release) = bounded("the lane to run the blocker", block_lane(&store)).await;
    let users = interactive_backlog(&store, "ui", 32, 32);
    wait_for("the interactive backlog to queue", || {
        queued(&store, Priority::Interactive) == 32 * 32
    })
    .await;
    // One source per background request, so the lane's count of each one's wait is its own.
    let imports: Vec<_> = random_blobs(9, 20 * 8, 64)
        .chunks(8)
        .enumerate()
        .map(|(i, blobs)| {
            let (store, blobs) = (store.clone(), blobs.to_vec());
            let o = opts(Priority::Background, &format!("bulk-{i}"));
            tokio::spawn(async move { store.put_many(blobs, o).await })
        })
        .collect();
    wait_for("the import to queue", || {
        queued(&store, Priority::Background) == 20
    })
    .await;
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    for import in imports {
        bounded("a background request", import)
            .await
            .unwrap()
            .unwrap();
    }
    for u in users {
        bounded("a user", u).await.unwrap();
    }
    // Batches each background request waited from its admission (all were admitted while
    // the blocker's batch held the lane), fewest first.
    let mut waits: Vec<u64> = (0..20)
        .map(|i| most_batches_waited(&store, &format!("bulk-{i}")))
        .collect();
    waits.sort_unstable();
    // Users' work goes first: the first background request waited for interactive batches
    // until its share was due ...
    assert!(
        waits[0] + 1 >= lead_every,
        "background went first under interactive load: waits {waits:?}"
    );
    // ... and Background led at least one batch in `lead_every` while users waited: by
    // `j × lead_every` batches, `j` of its requests at least were committed.
    for (j, &w) in waits.iter().enumerate() {
        assert!(
            w <= (j as u64 + 1) * lead_every,
            "background request {j} (fewest first) waited {w} batches: waits {waits:?}"
        );
    }
    // The users' backlog outlasted the import: it progressed under load, not after it.
    let users_waited = most_batches_waited_by(&store, "ui");
    assert!(
        users_waited > waits[19],
        "the last user request waited {users_waited} batches, the import {waits:?}"
    );
    let stats = store.stats();
    assert_eq!(stats.classes[0].acks, 1 + 32 * 32);
    assert_eq!(stats.classes[2].acks, 20);
}
