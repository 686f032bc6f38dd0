//! A garbage collection killed with SIGKILL mid-sweep loses nothing protected, leaves a
//! database that opens, verifies and whose index agrees with its blobs, and the next
//! collection finishes the job.
//!
//! The test binary re-runs itself as the child (`gc_kill_child`, an ignored test run only
//! by its parent, with `SEEDBANK_GC_KILL_DB` set). The child builds a store of about 20,000
//! small blobs — pinned DAGs (by name, and through a pinned scope), unpinned DAGs sharing
//! leaves with them both ways, temp-pinned DAGs and unpinned junk — prints every protected
//! CID, starts a collection in small batches, pins more DAGs while it sweeps (printing
//! those it pinned while all their blobs were still there) and reports the blobs freed so
//! far. The parent kills it once a seeded number of blobs were freed, then checks the database.

#[path = "common/kill.rs"]
mod kill;

use std::collections::HashSet;
use std::time::Duration;

use cid::Cid;
use kill::{node, pinned_closure, raw, reopen_and_check, stored_count, ChildProc};
use rand::{Rng, SeedableRng};
use seedbank_blobstore::testing::bounded_for;
use seedbank_blobstore::{Blob, Config, Store};
use seedbank_index::{GcOptions, Index, IndexConfig, IndexPutOptions};

const DB_VAR: &str = "SEEDBANK_GC_KILL_DB";
const SEED_VAR: &str = "SEEDBANK_GC_KILL_SEED";

/// DAGs pinned before the collection: 0..40 by name, 40..60 through the pinned scope.
const PINNED: usize = 60;
/// Unpinned DAGs (the first `TEMP` of them temp-pinned during the collection, the next
/// `LATE` pinned by name while it sweeps).
const UNPINNED: usize = 300;
const TEMP: usize = 10;
const LATE: usize = 50;
const JUNK: usize = 14_000;

/// A three-level DAG: root → 3 mids → 4 leaves each; `extra` adds a link from one mid
/// (index, target). Returns (root, blobs with the root first).
fn dag(tag: &str, leaves: &[Blob], extra: (usize, Cid)) -> (Cid, Vec<Blob>) {
    let mut mids = Vec::new();
    for m in 0..3 {
        let mut links: Vec<Cid> = leaves[m * 4..m * 4 + 4].iter().map(|b| *b.cid()).collect();
        if extra.0 == m {
            links.push(extra.1);
        }
        mids.push(node(&format!("{tag}/mid{m}"), &links));
    }
    let root = node(
        &format!("{tag}/root"),
        &mids.iter().map(|b| *b.cid()).collect::<Vec<_>>(),
    );
    let cid = *root.cid();
    let mut all = vec![root];
    all.extend(mids);
    all.extend(leaves.iter().cloned());
    (cid, all)
}

fn cids(blobs: &[Blob]) -> Vec<Cid> {
    blobs.iter().map(|b| *b.cid()).collect()
}

fn say(prefix: &str, cids: &[Cid]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for c in cids {
        writeln!(out, "{prefix} {c}").unwrap();
    }
    out.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the writer process of the gc_killed_mid_sweep tests, which run it"]
async fn gc_kill_child() {
    let path = std::env::var(DB_VAR).unwrap_or_else(|_| {
        panic!("run only as the child of a gc_killed_mid_sweep test ({DB_VAR} unset)")
    });
    let seed: u64 = std::env::var(SEED_VAR).unwrap().parse().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let store = Store::open(&path, Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();

    // Leaves first: pinned DAG p links to unpinned DAG p's leaf 3 (so that leaf is
    // protected), unpinned DAG u links to pinned DAG (u % PINNED)'s leaf 0 (so a pinned leaf
    // has an unpinned parent).
    let leaves: Vec<Vec<Blob>> = (0..PINNED + UNPINNED)
        .map(|d| {
            (0..12)
                .map(|l| raw(&format!("{seed}/d{d}/leaf{l}"), rng.gen_range(32..256)))
                .collect()
        })
        .collect();
    let mut pinned = Vec::new();
    for p in 0..PINNED {
        let shared = *leaves[PINNED + p][3].cid();
        pinned.push(dag(&format!("{seed}/p{p}"), &leaves[p], (2, shared)));
    }
    let mut unpinned = Vec::new();
    for u in 0..UNPINNED {
        let shared = *leaves[u % PINNED][0].cid();
        unpinned.push(dag(
            &format!("{seed}/u{u}"),
            &leaves[PINNED + u],
            (0, shared),
        ));
    }

    index.pin_scope("keep-pin", "keep").await.unwrap();
    let mut protected = Vec::new();
    for (p, (root, blobs)) in pinned.iter().enumerate() {
        protected.extend(cids(blobs));
        protected.push(*leaves[PINNED + p][3].cid());
        if p >= 40 {
            // Only the root joins the pinned scope: the rest is kept through its links.
            let opts = IndexPutOptions::default().scope("keep");
            index.put_many(vec![blobs[0].clone()], opts).await.unwrap();
            let rest = blobs[1..].to_vec();
            index.put_many(rest, Default::default()).await.unwrap();
        } else if rng.gen_bool(0.5) {
            index.pin(&format!("p{p}"), root).await.unwrap();
            index
                .put_many(blobs.clone(), Default::default())
                .await
                .unwrap();
        } else {
            index
                .put_many(blobs.clone(), Default::default())
                .await
                .unwrap();
            index.pin(&format!("p{p}"), root).await.unwrap();
        }
    }
    let all_unpinned: Vec<Blob> = unpinned.iter().flat_map(|(_, b)| b.clone()).collect();
    index
        .put_many(all_unpinned, Default::default())
        .await
        .unwrap();
    let junk: Vec<Blob> = (0..JUNK)
        .map(|i| raw(&format!("{seed}/junk{i}"), rng.gen_range(32..200)))
        .collect();
    let (scoped, plain) = junk.split_at(JUNK / 2);
    let opts = IndexPutOptions::default().scope("drop");
    index.put_many(scoped.to_vec(), opts).await.unwrap();
    index
        .put_many(plain.to_vec(), Default::default())
        .await
        .unwrap();
    say("PROTECT", &protected);

    // Temp pins on roots only: the collection must walk from them.
    let temp = index.temp_pin();
    for (root, blobs) in &unpinned[..TEMP] {
        temp.add(&[*root]);
        say("TEMP", &cids(blobs));
    }
    println!("READY {}", stored_count(index.store()).await);

    let gc = {
        let index = index.clone();
        tokio::spawn(async move {
            let opts = GcOptions {
                batch_blobs: 64,
                ..Default::default()
            };
            index.gc(opts).await.unwrap()
        })
    };
    let late = {
        let index = index.clone();
        let late: Vec<(Cid, Vec<Cid>)> = unpinned[TEMP..TEMP + LATE]
            .iter()
            .map(|(r, b)| (*r, cids(b)))
            .collect();
        tokio::spawn(async move {
            while index.store().stats().blobs_freed == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for (i, (root, cids)) in late.iter().enumerate() {
                index.pin(&format!("late{i}"), root).await.unwrap();
                let has = index.store().has_many(cids).await.unwrap();
                if has.iter().all(|&h| h) {
                    say("PROTECT", cids);
                }
            }
        })
    };
    while !gc.is_finished() {
        println!("FREED {}", index.store().stats().blobs_freed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    late.await.unwrap();
    let report = gc.await.unwrap();
    println!("GCDONE {}", report.blobs_freed);
    // Wait to be killed; the parent fails the test on this line.
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// Records a `PROTECT` or `TEMP` line of the child.
fn take(line: &str, protected: &mut HashSet<Cid>, temp: &mut HashSet<Cid>) {
    if let Some(c) = line.strip_prefix("PROTECT ") {
        protected.insert(c.parse().unwrap());
    } else if let Some(c) = line.strip_prefix("TEMP ") {
        temp.insert(c.parse().unwrap());
    }
}

/// One run: build, kill mid-sweep, check, collect again, check.
async fn kill_mid_sweep(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gc-kill.db");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x6b11);
    let mut child = ChildProc::spawn(
        "gc_kill_child",
        &[
            (DB_VAR, path.display().to_string()),
            (SEED_VAR, seed.to_string()),
        ],
        &dir.path().join("child.err"),
    );
    let (mut protected, mut temp) = (HashSet::<Cid>::new(), HashSet::<Cid>::new());
    let mut built = 0u64;
    let mut target = u64::MAX;
    // The child prints a line every few milliseconds while it collects, so `next_line`'s
    // own timeout never fires on a collection that frees nothing: bound the whole wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let freed_seen: u64 = loop {
        if std::time::Instant::now() > deadline {
            child.kill();
            panic!("seed {seed}: no {target} blobs freed within 300 s");
        }
        let (_, line) = child.next_line();
        take(&line, &mut protected, &mut temp);
        if let Some(n) = line.strip_prefix("READY ") {
            built = n.parse().unwrap();
            // Somewhere between early and late in the sweep of ~18,800 candidates.
            target = rng.gen_range(500..12_000);
        } else if let Some(n) = line.strip_prefix("FREED ") {
            let freed: u64 = n.parse().unwrap();
            if freed >= target {
                break freed;
            }
        } else if line.starts_with("GCDONE") {
            panic!("seed {seed}: the collection finished before the kill (target {target})");
        }
    };
    child.kill();
    for (_, line) in child.drain() {
        take(&line, &mut protected, &mut temp);
    }
    assert!(built > 19_000, "seed {seed}: built {built}");
    assert!(protected.len() > PINNED * 16, "seed {seed}");
    assert_eq!(temp.len(), TEMP * 16, "seed {seed}");

    // Everything protected or temp-pinned when killed is still there, and sound.
    let must: Vec<Cid> = protected.union(&temp).copied().collect();
    let index = reopen_and_check(&path, &must, &format!("seed {seed} after kill")).await;
    let stored = stored_count(index.store()).await;
    let closure = pinned_closure(&index).await;
    assert!(closure.is_superset(&protected), "seed {seed}");
    let kept = closure.union(&temp).count() as u64;
    assert!(
        stored < built && stored > kept,
        "seed {seed}: killed mid-sweep: {stored} stored of {built} built, {kept} protected"
    );

    // The next collection deletes exactly what no pin reaches (temp pins died with the
    // child), and leaves a sound store.
    let report = index.gc(GcOptions::default()).await.unwrap();
    assert_eq!(
        report.blobs_freed,
        stored - closure.len() as u64,
        "seed {seed}: {report:?}"
    );
    assert_eq!(stored_count(index.store()).await, closure.len() as u64);
    let closure_list: Vec<Cid> = closure.iter().copied().collect();
    let index = {
        index.store().close().await.unwrap();
        reopen_and_check(&path, &closure_list, &format!("seed {seed} after gc")).await
    };
    let temp_only: Vec<Cid> = temp.difference(&closure).copied().collect();
    assert!(!temp_only.is_empty());
    let has = index.store().has_many(&temp_only).await.unwrap();
    assert!(
        has.iter().all(|h| !h),
        "seed {seed}: a forgotten temp pin kept a blob"
    );
    let again = index.gc(GcOptions::default()).await.unwrap();
    assert_eq!(again.blobs_freed, 0, "seed {seed}");
    eprintln!(
        "seed {seed}: killed after {freed_seen} freed (target {target}); {stored} of {built} \
         left, {} protected; next gc freed {}",
        closure.len(),
        report.blobs_freed
    );
    index.store().close().await.unwrap();
}

/// Fails the test rather than hang if a write never returns.
async fn within_two_minutes(run: impl std::future::Future<Output = ()>) {
    bounded_for(Duration::from_secs(120), "the whole test", run).await
}

// One test per seed, so each stays within the time budget of a default run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_killed_mid_sweep_loses_nothing_protected_seed_1() {
    within_two_minutes(kill_mid_sweep(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_killed_mid_sweep_loses_nothing_protected_seed_2() {
    within_two_minutes(kill_mid_sweep(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_killed_mid_sweep_loses_nothing_protected_seed_3() {
    within_two_minutes(kill_mid_sweep(3)).await;
}
