//! Ack means durable: a writer process killed with SIGKILL mid-ingest loses nothing it
//! acknowledged, and the database it leaves behind opens and verifies cleanly.
//!
//! The test binary re-runs itself as the writer (`crash_child_writer`, an ignored test run
//! only as that child, with the database path in `SEEDBANK_CRASH_DB`), reads the CIDs it
//! prints after each ack, and kills it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::random_blobs;
use cid::Cid;
use seedbank_blobstore::{Config, PutOptions, Store};

const DB_VAR: &str = "SEEDBANK_CRASH_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the writer process of acknowledged_blobs_survive_a_killed_writer, which runs it"]
async fn crash_child_writer() {
    let path = std::env::var(DB_VAR).unwrap_or_else(|_| {
        panic!(
            "run only as the child of acknowledged_blobs_survive_a_killed_writer ({DB_VAR} unset)"
        )
    });
    let store = Store::open(&path, Config::default()).unwrap();
    let mut out = std::io::stdout();
    for round in 0u64.. {
        let blobs = random_blobs(round, 50, 2048);
        let cids = store.put_many(blobs, PutOptions::default()).await.unwrap();
        // Printed only after the ack: every CID printed must survive the kill.
        for cid in cids {
            writeln!(out, "ACK {cid}").unwrap();
        }
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_blobs_survive_a_killed_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash::crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_VAR, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Lines arrive through a thread, so a child that stalls or never starts fails the test
    // after a minute instead of hanging it.
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked: Vec<Cid> = Vec::new();
    while acked.len() < 3_000 {
        let line = match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line.unwrap(),
            Err(e) => {
                let _ = child.kill();
                panic!("child stopped writing after {} acks: {e}", acked.len());
            }
        };
        if let Some(cid) = line.strip_prefix("ACK ") {
            acked.push(Cid::try_from(cid).unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL: no close, no final checkpoint.
    child.wait().unwrap();

    let store = Store::open(&path, Config::default()).unwrap();
    let present = store.has_many(&acked).await.unwrap();
    let lost = present.iter().filter(|p| !**p).count();
    assert_eq!(lost, 0, "{lost} of {} acknowledged blobs lost", acked.len());
    let report = store.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.blobs_checked >= acked.len() as u64);
    store.close().await.unwrap();
}
