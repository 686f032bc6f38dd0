//! A sync fetches only what the client lacks:
//! - an interrupted `seedbank sync` (the process killed mid-run) resumes without fetching
//!   again what it had committed: the second run fetches exactly the blocks still missing;
//! - blocks the client already holds, reached through links of blocks it fetches, are not
//!   fetched again.
//!
//! Both check the bytes that came over the wire (`bytes_received`), not only the count of
//! blobs stored, because a refetched block that is already stored changes no row.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{seedbank, start_serve, stderr, stdout};

/// `mib` MiB of xorshift bytes from `seed`: incompressible, different for each seed.
fn write_random(path: &Path, mib: usize, mut seed: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            word.copy_from_slice(&seed.to_le_bytes());
        }
        file.write_all(&chunk).unwrap();
    }
    file.flush().unwrap();
}

/// CIDs stored in `db`, read beside its running owner (a read-only open).
fn stored(db: &Path) -> Option<u64> {
    let out = seedbank(db, &["stats", "--json"]);
    if !out.status.success() {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    json["contents"]["cids"].as_u64()
}

/// Each leaf of a `kubo-cidv1` add: 256 KiB, raw.
const LEAF: u64 = 256 << 10;

/// Bytes a sync may receive beyond the blocks it lacks: reconciliation messages, the
/// CIDs of fetch requests and answers, and the small dag-pb nodes. Less than one leaf,
/// so a single leaf fetched again goes over.
const SLACK: u64 = LEAF - 1;

/// Adds `path` to `db` with the `kubo-cidv1` profile; returns the root CID.
fn add(db: &Path, path: &Path) -> String {
    let add = seedbank(
        db,
        &["add", path.to_str().unwrap(), "--profile", "kubo-cidv1"],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    stdout(&add)
        .lines()
        .last()
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string()
}

/// Runs `sync ROOT --peer TICKET --json` to completion and returns its report.
fn sync_json(db: &Path, root: &str, ticket: &str) -> serde_json::Value {
    let out = seedbank(db, &["sync", root, "--peer", ticket, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["complete"], true, "{report}");
    report
}

fn field(report: &serde_json::Value, name: &str) -> u64 {
    report[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {report}"))
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_sync_killed_mid_run_resumes_without_fetching_what_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (served, client) = (dir.path().join("served.db"), dir.path().join("client.db"));
    let input = dir.path().join("input.bin");
    // 256 KiB chunks: 512 leaves, fetched 64 to an answer (16 MiB), committed answer by
    // answer; enough answers that the kill below lands between two commits.
    write_random(&input, 128, 0x5eed_b10b);
    let root = add(&served, &input);
    let total = stored(&served).unwrap();
    assert!(total > 512, "{total} blocks");
    std::fs::remove_file(&input).unwrap();
    let (server, ticket) = start_serve(&served, &dir.path().join("ticket"), &[]);

    let mut sync = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .arg("--db")
        .arg(&client)
        .args(["sync", &root, "--peer", &ticket])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sync");
    // Killed (SIGKILL: no shutdown, no checkpoint) once some answers are committed and
    // before the last one is.
    let start = Instant::now();
    let mut seen = 0;
    loop {
        if let Some(status) = sync.try_wait().unwrap() {
            stop(server);
            panic!("sync ended ({status}) before it could be killed: {seen} of {total} seen");
        }
        seen = stored(&client).unwrap_or(0);
        if seen >= 64 {
            sync.kill().unwrap();
            sync.wait().unwrap();
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            sync.kill().unwrap();
            stop(server);
            panic!("sync stored {seen} blocks in 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let committed = stored(&client).unwrap();
    assert!(
        committed >= 64 && committed < total,
        "{committed} of {total} committed when killed"
    );

    let report = sync_json(&client, &root, &ticket);
    stop(server);
    assert_eq!(
        field(&report, "blobs_fetched"),
        total - committed,
        "the second run fetched only what the first had not committed: {report}"
    );
    // No block is larger than a leaf, so the wire carries at most that many leaves.
    let lacked = total - committed;
    assert!(
        field(&report, "bytes_received") <= lacked * LEAF + SLACK,
        "{lacked} blocks lacked, yet {} bytes received: {report}",
        field(&report, "bytes_received")
    );
    let missing = seedbank(&client, &["missing", &root]);
    assert_eq!(missing.status.code(), Some(0), "{}", stdout(&missing));
    assert!(seedbank(&client, &["verify"]).status.success());
    assert_eq!(stored(&client), Some(total));
}

#[test]
fn blocks_held_under_links_the_sync_fetches_are_not_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let (served, client) = (dir.path().join("served.db"), dir.path().join("client.db"));
    // The client holds a 24 MiB file (96 leaves); the server a 64 MiB file that starts
    // with the same 24 MiB. Fixed-size chunks make the first 96 leaves the same blocks,
    // but the client reaches them only through the server's file node, which it fetches:
    // they are not in any list of missing blocks it starts from.
    let (head, whole) = (dir.path().join("head.bin"), dir.path().join("whole.bin"));
    write_random(&whole, 64, 0x00c0_ffee);
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(&head, &bytes[..24 << 20]).unwrap();
    drop(bytes);
    add(&client, &head);
    let root = add(&served, &whole);
    let total = stored(&served).unwrap();
    assert_eq!(
        total,
        256 + 3,
        "256 leaves under 2 nodes (174 links at most) and a root"
    );
    let (server, ticket) = start_serve(&served, &dir.path().join("ticket"), &[]);

    let report = sync_json(&client, &root, &ticket);
    stop(server);
    let shared = 96;
    assert_eq!(
        field(&report, "blobs_fetched"),
        total - shared,
        "the leaves the client held were not fetched: {report}"
    );
    assert!(
        field(&report, "bytes_received") <= (256 - shared) * LEAF + SLACK,
        "{} bytes received for {} new leaves: {report}",
        field(&report, "bytes_received"),
        256 - shared
    );
    assert!(seedbank(&client, &["verify"]).status.success());
    assert_eq!(
        seedbank(&client, &["missing", &root]).status.code(),
        Some(0)
    );
}
