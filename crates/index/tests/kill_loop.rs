//! Kill loop: a writer SIGKILLed at random moments, again and again on one database —
//! mid-`put_many`, mid-CAR import, mid-GC — never loses an acknowledged blob, and after each
//! restart every acknowledged blob is present, every blob re-hashes to its CID,
//! `PRAGMA integrity_check` is ok and the index tables agree with the blobs.
//!
//! The test binary re-runs itself as the writer (`kill_loop_child`, an ignored test that
//! only its parent runs, with `SEEDBANK_KILL_LOOP_DB` set), told which phase to run:
//!
//! - `put`: DAGs of ~800 blobs, pinned first then written, or written under a temp pin then
//!   pinned (with unpinned junk beside them, garbage for the GC phase);
//! - `car`: CAR imports into a fresh scope pinned beforehand, alternately the go-car fixture
//!   `sample-v1.car` and a generated CAR of ~600 blocks;
//! - `gc`: collections (small batches) over fresh junk while a producer writes small DAGs
//!   under temp pins and pins them.
//!
//! The child prints `BEGIN <phase>` / `END <phase>` around each operation and `ACK <cid>`
//! only once a blob is written *and* pinned (so no collection may take it). The parent waits
//! for the first or second `BEGIN` of the phase, sleeps a seeded random delay within about
//! one operation's length, SIGKILLs the child, and checks the database. Kills are counted
//! per phase, and as mid-operation when the child's last marker was a `BEGIN`.
//!
//! The default run does 6 kills. The full loop (102 kills) is ignored by default; run it with
//!
//! ```text
//! cargo test -p seedbank-index --release --test kill_loop -- --ignored --exact kill_loop_full --nocapture
//! ```

mod common;
#[path = "common/kill.rs"]
mod kill;

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use cid::Cid;
use kill::{node, raw, reopen_and_check, ChildProc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seedbank_blobstore::{Blob, Config, Store};
use seedbank_index::car::{self, CarWriter, ImportOptions};
use seedbank_index::{GcOptions, Index, IndexConfig, IndexPutOptions};

const DB_VAR: &str = "SEEDBANK_KILL_LOOP_DB";
const ROUND_VAR: &str = "SEEDBANK_KILL_LOOP_ROUND";
const PHASE_VAR: &str = "SEEDBANK_KILL_LOOP_PHASE";

const PHASES: [&str; 3] = ["put", "car", "gc"];

/// Prints `prefix cid` lines in one write, so a kill cannot tear a line in the middle of
/// a batch (a torn last line would not parse, and is then not counted as acknowledged).
fn say(prefix: &str, cids: &[Cid]) {
    let mut text = String::new();
    for c in cids {
        text.push_str(&format!("{prefix} {c}\n"));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).unwrap();
    out.flush().unwrap();
}

fn mark(word: &str, phase: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{word} {phase}").unwrap();
    out.flush().unwrap();
}

/// root → `mids` nodes → `leaves` raw leaves each. Returns (root, blobs, root first).
fn wide_dag(tag: &str, rng: &mut StdRng, mids: usize, leaves: usize) -> (Cid, Vec<Blob>) {
    let mut blobs = Vec::new();
    let mut mid_cids = Vec::new();
    for m in 0..mids {
        let ls: Vec<Blob> = (0..leaves)
            .map(|l| raw(&format!("{tag}/{m}/{l}"), rng.gen_range(64..1024)))
            .collect();
        let mid = node(
            &format!("{tag}/{m}"),
            &ls.iter().map(|b| *b.cid()).collect::<Vec<_>>(),
        );
        mid_cids.push(*mid.cid());
        blobs.push(mid);
        blobs.extend(ls);
    }
    let root = node(&format!("{tag}/root"), &mid_cids);
    let cid = *root.cid();
    blobs.insert(0, root);
    (cid, blobs)
}

fn cids(blobs: &[Blob]) -> Vec<Cid> {
    blobs.iter().map(|b| *b.cid()).collect()
}

/// Unpinned junk: garbage for the collections (never acknowledged).
async fn junk(index: &Index, tag: &str, n: usize, rng: &mut StdRng) {
    let blobs: Vec<Blob> = (0..n)
        .map(|i| raw(&format!("junk {tag} {i}"), rng.gen_range(32..512)))
        .collect();
    index.put_many(blobs, Default::default()).await.unwrap();
}

async fn put_op(index: &Index, round: u64, op: u64, rng: &mut StdRng) {
    junk(index, &format!("put {round}/{op}"), 200, rng).await;
    let tag = format!("put/{round}/{op}");
    let (root, blobs) = wide_dag(&tag, rng, 20, 40);
    let acked = cids(&blobs);
    mark("BEGIN", "put");
    if op.is_multiple_of(2) {
        index.pin(&tag, &root).await.unwrap();
        index.put_many(blobs, Default::default()).await.unwrap();
    } else {
        let temp = index.temp_pin();
        let opts = IndexPutOptions::default().temp_pin(&temp);
        index.put_many(blobs, opts).await.unwrap();
        index.pin(&tag, &root).await.unwrap();
        drop(temp);
    }
    say("ACK", &acked);
    mark("END", "put");
}

/// A generated CAR of ~600 blocks and its CIDs.
async fn generated_car(tag: &str, rng: &mut StdRng) -> (Vec<u8>, Vec<Cid>) {
    let (root, blobs) = wide_dag(tag, rng, 15, 40);
    let mut writer = CarWriter::new(Vec::new(), &[root]).await.unwrap();
    for b in &blobs {
        writer.write_block(b.cid(), b.data()).await.unwrap();
    }
    (writer.finish().await.unwrap(), cids(&blobs))
}

async fn car_op(index: &Index, round: u64, op: u64, rng: &mut StdRng) {
    let scope = format!("car/{round}/{op}");
    index.pin_scope(&scope, &scope).await.unwrap();
    let (bytes, acked) = if op.is_multiple_of(2) {
        let bytes = common::fixture_bytes("sample-v1.car");
        let (_, blocks) = common::read_all(&bytes).await.unwrap();
        (bytes, blocks.iter().map(|b| b.cid).collect())
    } else {
        generated_car(&scope, rng).await
    };
    mark("BEGIN", "car");
    let opts = ImportOptions {
        scopes: vec![scope],
        ..Default::default()
    };
    let report = car::import(index, &bytes[..], opts).await.unwrap();
    assert_eq!(report.blocks, acked.len() as u64);
    say("ACK", &acked);
    mark("END", "car");
}

async fn gc_op(index: &Index, round: u64, op: u64, rng: &mut StdRng) {
    junk(index, &format!("gc {round}/{op}"), 2_000, rng).await;
    mark("BEGIN", "gc");
    let gc = {
        let index = index.clone();
        tokio::spawn(async move {
            let opts = GcOptions {
                batch_blobs: 32,
                ..Default::default()
            };
            index.gc(opts).await.unwrap()
        })
    };
    let mut d = 0;
    while !gc.is_finished() {
        let tag = format!("gc/{round}/{op}/{d}");
        let (root, blobs) = wide_dag(&tag, rng, 1, 8);
        let acked = cids(&blobs);
        let temp = index.temp_pin();
        let opts = IndexPutOptions::default().temp_pin(&temp);
        index.put_many(blobs, opts).await.unwrap();
        index.pin(&tag, &root).await.unwrap();
        drop(temp);
        say("ACK", &acked);
        d += 1;
    }
    gc.await.unwrap();
    mark("END", "gc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the writer process of kill_loop_short and kill_loop_full, which run it"]
async fn kill_loop_child() {
    let path = std::env::var(DB_VAR)
        .unwrap_or_else(|_| panic!("run only as the child of a kill_loop test ({DB_VAR} unset)"));
    let round: u64 = std::env::var(ROUND_VAR).unwrap().parse().unwrap();
    let phase = std::env::var(PHASE_VAR).unwrap();
    let mut rng = StdRng::seed_from_u64(round);
    let store = Store::open(&path, Config::default()).unwrap();
    let index = Index::open(store, IndexConfig::default()).await.unwrap();
    for op in 0u64.. {
        match phase.as_str() {
            "put" => put_op(&index, round, op, &mut rng).await,
            "car" => car_op(&index, round, op, &mut rng).await,
            "gc" => gc_op(&index, round, op, &mut rng).await,
            other => panic!("unknown phase {other}"),
        }
    }
}

/// Counts of one phase.
#[derive(Default, Debug)]
struct PhaseCounts {
    kills: u64,
    /// Kills whose child's last marker was a `BEGIN`: mid-operation.
    mid_op: u64,
    /// Distinct blobs first acknowledged in this phase's runs.
    acked: u64,
    /// Acknowledged blobs checked after this phase's kills (the whole set each time).
    checked: u64,
}

/// Runs `kills` kill-and-check rounds on one database; returns the counts per phase.
async fn kill_loop(kills: usize, seed: u64) -> [PhaseCounts; 3] {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill-loop.db");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut acked: HashSet<Cid> = HashSet::new();
    let mut counts: [PhaseCounts; 3] = Default::default();
    // Typical length of one operation per phase, learnt from the BEGIN/END lines seen.
    let mut op_len = [Duration::from_millis(50); 3];
    let mut torn = 0;
    for k in 0..kills {
        let p = k % PHASES.len();
        let phase = PHASES[p];
        let mut child = ChildProc::spawn(
            "kill_loop_child",
            &[
                (DB_VAR, path.display().to_string()),
                (ROUND_VAR, (seed << 32 | k as u64).to_string()),
                (PHASE_VAR, phase.to_string()),
            ],
            &dir.path().join("child.err"),
        );
        let begin = format!("BEGIN {phase}");
        let nth = rng.gen_range(1..=2);
        let mut lines = Vec::new();
        let mut begins = 0;
        while begins < nth {
            let line = child.next_line();
            begins += usize::from(line.1 == begin);
            lines.push(line);
        }
        let wait = op_len[p].mul_f64(rng.gen_range(0.0..1.2));
        let deadline = Instant::now() + wait;
        while let Some(line) = child.line_within(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        child.kill();
        lines.extend(child.drain());

        let mut last_begin: Option<Instant> = None;
        let mut mid_op = false;
        let (mut lens, mut new) = (Vec::new(), 0);
        for (at, line) in &lines {
            if let Some(c) = line.strip_prefix("ACK ") {
                match c.parse::<Cid>() {
                    Ok(cid) => new += u64::from(acked.insert(cid)),
                    Err(_) => torn += 1,
                }
            } else if line.starts_with("BEGIN ") {
                last_begin = Some(*at);
                mid_op = true;
            } else if line.starts_with("END ") {
                if let Some(b) = last_begin.take() {
                    lens.push(at.duration_since(b));
                }
                mid_op = false;
            }
        }
        if !lens.is_empty() {
            op_len[p] = lens.iter().sum::<Duration>() / lens.len() as u32;
        }
        let all: Vec<Cid> = acked.iter().copied().collect();
        let index = reopen_and_check(&path, &all, &format!("kill {k} ({phase})")).await;
        index.store().close().await.unwrap();
        let c = &mut counts[p];
        c.kills += 1;
        c.mid_op += u64::from(mid_op);
        c.acked += new;
        c.checked += all.len() as u64;
    }

    // A last collection takes nothing acknowledged: every acked blob is pinned.
    let all: Vec<Cid> = acked.iter().copied().collect();
    let index = reopen_and_check(&path, &all, "before the final gc").await;
    let report = index.gc(GcOptions::default()).await.unwrap();
    index.store().close().await.unwrap();
    let index = reopen_and_check(&path, &all, "after the final gc").await;
    index.store().close().await.unwrap();

    println!(
        "kill loop: {kills} kills in {:.1} s, {} distinct acknowledged blobs, lost 0, \
         torn ack lines {torn}; final gc freed {}",
        started.elapsed().as_secs_f64(),
        acked.len(),
        report.blobs_freed
    );
    for (phase, c) in PHASES.iter().zip(&counts) {
        println!(
            "  {phase:>3}: {} kills ({} mid-operation), {} blobs acknowledged, \
             {} acknowledged blobs checked after its kills, lost 0",
            c.kills, c.mid_op, c.acked, c.checked
        );
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_loop_short() {
    let counts = tokio::time::timeout(Duration::from_secs(120), kill_loop(6, 1))
        .await
        .expect("the kill loop finished within two minutes");
    for c in &counts {
        assert_eq!(c.kills, 2);
    }
    assert!(counts.iter().map(|c| c.acked).sum::<u64>() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "102 kills, minutes: cargo test -p seedbank-index --release --test kill_loop -- --ignored --exact kill_loop_full --nocapture"]
async fn kill_loop_full() {
    let counts = tokio::time::timeout(Duration::from_secs(3600), kill_loop(102, 2))
        .await
        .expect("the kill loop finished within an hour");
    for c in &counts {
        assert_eq!(c.kills, 34);
        // Most kills land inside an operation, not between two.
        assert!(c.mid_op * 2 > c.kills, "{c:?}");
        assert!(c.acked > 0, "{c:?}");
    }
}
