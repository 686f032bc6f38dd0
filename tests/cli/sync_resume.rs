//! An interrupted `seedbank sync` (the process killed mid-run) resumes without fetching
//! again what it had committed: the second run fetches exactly the blocks still missing.

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
    let add = seedbank(
        &served,
        &["add", input.to_str().unwrap(), "--profile", "kubo-cidv1"],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    let root = stdout(&add)
        .lines()
        .last()
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
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

    let again = seedbank(&client, &["sync", &root, "--peer", &ticket, "--json"]);
    stop(server);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(
        report["blobs_fetched"].as_u64().unwrap(),
        total - committed,
        "the second run fetched only what the first had not committed: {report}"
    );
    let missing = seedbank(&client, &["missing", &root]);
    assert_eq!(missing.status.code(), Some(0), "{}", stdout(&missing));
    assert!(seedbank(&client, &["verify"]).status.success());
    assert_eq!(stored(&client), Some(total));
}
