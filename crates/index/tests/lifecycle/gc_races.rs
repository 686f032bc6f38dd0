//! The two ways a collection used to delete live blobs, driven step by step
//! ([`Index::begin_gc`], one sweep batch at a time), so each interleaving is exact:
//!
//! - *pin first, then sync*: a root pinned while absent, marked absent by the collection,
//!   arrives mid-sweep linking to old unpinned blocks; those must be kept (the catch-up
//!   expands an arriving key even though it was marked before);
//! - *put, then pin a moment later*: blobs put again after the collection started keep
//!   their old row, and must be kept (the put log).
//!
//! Both go red when the matching half of the catch-up is removed (`docs/testing.md`).

use cid::Cid;
use seedbank_blobstore::{codec, Blob};
use seedbank_index::testing::{cids, leaves, node};
use seedbank_index::{GcOptions, Index, IndexPutOptions};

/// Small batches, so a sweep over a few hundred candidates takes many steps.
fn small_batches() -> GcOptions {
    GcOptions {
        batch_blobs: 16,
        ..Default::default()
    }
}

async fn put(index: &Index, blobs: Vec<Blob>) {
    index
        .put_many(blobs, IndexPutOptions::default())
        .await
        .unwrap();
}

async fn stored(index: &Index, cids: &[Cid]) -> usize {
    let has = index.store().has_many(cids).await.unwrap();
    has.iter().filter(|&&h| h).count()
}

/// Garbage beside the protected blocks, so the sweep has batches before and after them.
async fn junk(index: &Index, tag: &str) -> Vec<Cid> {
    let junk = leaves(&format!("{tag} junk"), 100);
    let out = cids(&junk);
    put(index, junk).await;
    out
}

/// The root is pinned before it is stored, a collection starts, then the root arrives after
/// `steps` sweep batches, linking to 200 leaves stored earlier without a pin. Leaves the
/// sweep deleted before the root arrived were garbage then; every leaf still stored once
/// the root's put is acknowledged must survive the collection.
async fn pin_first_then_sync(steps: usize) {
    let index = crate::common::open().await;
    let old = leaves("old", 200);
    let old_cids = cids(&old);
    let junk = junk(&index, "junk").await;
    put(&index, old).await;
    let root = node("root", &old_cids);
    index.pin("doc", root.cid()).await.unwrap();

    let mut gc = index.begin_gc(small_batches()).await.unwrap();
    assert_eq!(gc.report().candidates, 300);
    for _ in 0..steps {
        assert!(gc.sweep_batch().await.unwrap(), "more batches to run");
    }
    put(&index, vec![root.clone()]).await;
    let arrived = stored(&index, &old_cids).await;
    let report = gc.finish().await.unwrap();

    let kept = stored(&index, &old_cids).await;
    assert_eq!(
        kept,
        arrived,
        "root arrived after {steps} batches: {} leaves lost",
        arrived - kept
    );
    assert_eq!(stored(&index, &junk).await, 0, "the garbage went");
    // The leaves swept after the root arrived were kept because of it (a put).
    assert_eq!(report.kept_late, report.kept_late_by.puts);
    assert_eq!(report.kept_late as usize, arrived);
    assert_eq!(report.blobs_freed as usize, 300 - arrived);
    index.store().close().await.unwrap();
}

#[tokio::test]
async fn a_root_pinned_while_absent_keeps_old_leaves_when_it_arrives_before_the_sweep() {
    let index = crate::common::open().await;
    let old = leaves("old", 200);
    let old_cids = cids(&old);
    put(&index, old).await;
    let root = node("root", &old_cids);
    index.pin("doc", root.cid()).await.unwrap();
    let gc = index.begin_gc(small_batches()).await.unwrap();
    put(&index, vec![root.clone()]).await;
    let report = gc.finish().await.unwrap();
    assert_eq!(stored(&index, &old_cids).await, 200, "{report:?}");
    assert!(index.missing(root.cid()).await.unwrap().is_empty());
    assert_eq!(report.kept_late_by.puts, 200);
    index.store().close().await.unwrap();
    pin_first_then_sync(0).await;
}

#[tokio::test]
async fn a_root_pinned_while_absent_keeps_old_leaves_when_it_arrives_mid_sweep() {
    // 300 candidates in batches of 16: some leaves go before the root arrives, most after.
    for steps in [1, 4, 9, 15] {
        pin_first_then_sync(steps).await;
    }
}

/// A stored, pinned root links to an absent block; the collection marks that block absent;
/// a sync fetches it mid-sweep, and it links to old unpinned leaves.
#[tokio::test]
async fn an_absent_link_target_fetched_mid_sweep_keeps_what_it_links_to() {
    let index = crate::common::open().await;
    let old = leaves("old", 120);
    let old_cids = cids(&old);
    put(&index, old).await;
    let middle = node("middle", &old_cids);
    let root = node("root", &[*middle.cid()]);
    put(&index, vec![root.clone()]).await;
    index.pin("doc", root.cid()).await.unwrap();

    let mut gc = index.begin_gc(small_batches()).await.unwrap();
    assert_eq!(
        gc.report().candidates,
        120,
        "the leaves are garbage at the mark"
    );
    gc.sweep_batch().await.unwrap();
    put(&index, vec![middle]).await;
    let report = gc.finish().await.unwrap();
    assert_eq!(report.blobs_freed, 16, "only the first batch went");
    assert_eq!(stored(&index, &old_cids).await, 120 - 16);
    assert_eq!(report.kept_late_by.puts, 120 - 16);
    index.store().close().await.unwrap();
}

/// Blobs stored without a pin before a collection, put again (acknowledged) after it
/// started and `steps` batches into its sweep: none is deleted by it, so the application
/// can pin them a moment later.
async fn put_then_pin_a_moment_later(steps: usize) {
    let index = crate::common::open().await;
    let blobs = leaves("again", 200);
    let again = cids(&blobs);
    put(&index, blobs.clone()).await;
    let mut gc = index.begin_gc(small_batches()).await.unwrap();
    for _ in 0..steps {
        gc.sweep_batch().await.unwrap();
    }
    let swept = gc.report().blobs_freed as usize;
    put(&index, blobs.clone()).await;
    assert_eq!(stored(&index, &again).await, 200, "the re-put stored them");
    let report = gc.finish().await.unwrap();
    assert_eq!(
        stored(&index, &again).await,
        200,
        "re-put after {steps} batches, {swept} deleted before: acknowledged blobs lost"
    );
    assert_eq!(report.kept_late_by.puts as usize, 200 - swept);
    let root = node("root", &again);
    put(&index, vec![root.clone()]).await;
    index.pin("later", root.cid()).await.unwrap();
    let after = index.gc(GcOptions::default()).await.unwrap();
    assert_eq!(after.blobs_freed, 0);
    index.store().close().await.unwrap();
}

#[tokio::test]
async fn blobs_put_again_after_a_collection_started_are_not_deleted_by_it() {
    for steps in [0, 1, 5, 12] {
        put_then_pin_a_moment_later(steps).await;
    }
}

/// A collection queued behind another sees the puts made while it waited: it started when
/// it was called.
#[tokio::test]
async fn a_queued_collection_keeps_what_was_put_while_it_waited() {
    let index = crate::common::open().await;
    let blobs = leaves("waited", 64);
    let waited = cids(&blobs);
    put(&index, blobs.clone()).await;
    let first = index.begin_gc(small_batches()).await.unwrap();
    let second = {
        let index = index.clone();
        tokio::spawn(async move { index.gc(small_batches()).await.unwrap() })
    };
    // The spawned call starts and waits for the first collection's lock.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    put(&index, blobs).await;
    let first = first.finish().await.unwrap();
    let second = second.await.unwrap();
    assert_eq!(first.kept_late_by.puts, 64);
    assert_eq!(second.blobs_freed, 0, "{second:?}");
    assert_eq!(stored(&index, &waited).await, 64);
    // A third collection, started after all of that, takes them.
    let third = index.gc(GcOptions::default()).await.unwrap();
    assert_eq!(third.blobs_freed, 64);
    index.store().close().await.unwrap();
}

/// Each cause of a late keep is counted as such.
#[tokio::test]
async fn the_report_counts_what_was_kept_late_by_cause() {
    let index = crate::common::open().await;
    let (a, b, c) = (leaves("a", 20), leaves("b", 30), leaves("c", 40));
    for set in [&a, &b, &c] {
        put(&index, set.clone()).await;
    }
    let gc = index.begin_gc(small_batches()).await.unwrap();
    assert_eq!(gc.report().candidates, 90);
    let root_b = node("b", &cids(&b));
    put(&index, vec![root_b.clone()]).await; // a new parent: kept as a put
    let root_a = node("a", &cids(&a));
    index.pin("a", root_a.cid()).await.unwrap();
    put(&index, vec![root_a]).await; // a pinned root: the catch-up reads pins first
    let temp = index.temp_pin();
    temp.add(&cids(&c));
    let report = gc.finish().await.unwrap();
    assert_eq!(report.blobs_freed, 0);
    assert_eq!(report.kept_late, 90);
    assert_eq!(report.kept_late_by.puts, 30);
    assert_eq!(report.kept_late_by.pins, 20);
    assert_eq!(report.kept_late_by.temp_pins, 40);
    drop(temp);

    // A pin of stored blobs taken after the mark.
    let d = leaves("d", 10);
    let root_d = node("d", &cids(&d));
    put(&index, d).await;
    put(&index, vec![root_d.clone()]).await;
    let gc = index.begin_gc(small_batches()).await.unwrap();
    index.pin("d", root_d.cid()).await.unwrap();
    let report = gc.finish().await.unwrap();
    assert_eq!(report.kept_late_by.pins, 11);
    index.store().close().await.unwrap();
}

/// Runs of each timed scenario: `SEEDBANK_GC_RACE_RUNS` (delays spread over 0–500 ms), or
/// three by default.
fn timed_delays() -> Vec<u64> {
    match std::env::var("SEEDBANK_GC_RACE_RUNS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) if n > 1 => (0..n).map(|i| i * 500 / (n - 1)).collect(),
        Some(_) => vec![0],
        None => vec![0, 50, 200],
    }
}

/// Enough unpinned garbage that a collection in batches of 64 sweeps for a while.
async fn lots_of_junk(index: &Index, run: u64) {
    let junk: Vec<Blob> = (0..20_000)
        .map(|i| Blob::new(codec::RAW, format!("junk {run} {i}").into_bytes()))
        .collect();
    put(index, junk).await;
}

fn timed_gc(index: &Index) -> tokio::task::JoinHandle<seedbank_index::GcReport> {
    let index = index.clone();
    tokio::spawn(async move {
        let opts = GcOptions {
            batch_blobs: 64,
            ..Default::default()
        };
        index.gc(opts).await.unwrap()
    })
}

/// The first scenario in real time: pin first, a collection starts, the root
/// arrives `delay` ms later linking to 200 old unpinned leaves. Every leaf still stored
/// when the root's put is acknowledged survives the collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_first_then_sync_in_real_time_loses_nothing_that_was_there() {
    let index = crate::common::open().await;
    let (mut runs, mut swept_before) = (0, 0);
    for (run, delay) in timed_delays().into_iter().enumerate() {
        let old = leaves(&format!("old {run}"), 200);
        let old_cids = cids(&old);
        lots_of_junk(&index, run as u64).await;
        put(&index, old).await;
        let root = node(&format!("root {run}"), &old_cids);
        index.pin("doc", root.cid()).await.unwrap();
        let gc = timed_gc(&index);
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        put(&index, vec![root]).await;
        let arrived = stored(&index, &old_cids).await;
        let report = gc.await.unwrap();
        let kept = stored(&index, &old_cids).await;
        assert_eq!(
            kept,
            arrived,
            "delay {delay} ms: {} leaves lost after the root arrived ({report:?})",
            arrived - kept
        );
        runs += 1;
        swept_before += 200 - arrived;
        index.unpin("doc").await.unwrap();
        index.gc(GcOptions::default()).await.unwrap();
    }
    println!("{runs} runs, 0 leaves lost, {swept_before} swept before their root arrived");
    index.store().close().await.unwrap();
}

/// The second scenario in real time: 200 unpinned blobs, a collection starts, they
/// are put again `delay` ms later; all are stored when the collection ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_again_in_real_time_then_pin_loses_nothing() {
    let index = crate::common::open().await;
    let mut runs = 0;
    for (run, delay) in timed_delays().into_iter().enumerate() {
        let blobs = leaves(&format!("again {run}"), 200);
        let again = cids(&blobs);
        lots_of_junk(&index, run as u64).await;
        put(&index, blobs.clone()).await;
        let gc = timed_gc(&index);
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        put(&index, blobs).await;
        let report = gc.await.unwrap();
        let kept = stored(&index, &again).await;
        assert_eq!(
            kept, 200,
            "delay {delay} ms: acknowledged blobs lost ({report:?})"
        );
        runs += 1;
        index.gc(GcOptions::default()).await.unwrap();
    }
    println!("{runs} runs, 0 blobs lost");
    index.store().close().await.unwrap();
}
