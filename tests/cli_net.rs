//! `seedbank serve` and `seedbank sync` between processes on 127.0.0.1.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, seedbank, stderr, stdout, SAMPLE_ROOT};

/// Starts `seedbank serve` on `db` and waits for its ticket file.
// The child is returned; callers reap it through `terminate`.
#[allow(clippy::zombie_processes)]
fn start_serve(db: &Path, ticket_file: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seedbank"))
        .arg("--db")
        .arg(db)
        .arg("serve")
        .arg("--ticket-file")
        .arg(ticket_file)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let start = Instant::now();
    loop {
        if let Ok(ticket) = std::fs::read_to_string(ticket_file) {
            return (child, ticket);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM and waits (bounded) for the exit status.
fn terminate(mut child: Child) -> std::process::Output {
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("serve did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn serve_and_sync_between_processes_then_serve_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let served_db = dir.path().join("served.db");
    let car = fixture("sample-v1.car");
    let import = seedbank(&served_db, &["import", car.to_str().unwrap()]);
    assert!(import.status.success(), "{}", stderr(&import));

    let ticket_file = dir.path().join("ticket");
    let (child, ticket) = start_serve(&served_db, &ticket_file, &[]);
    assert!(ticket.starts_with("endpoint"), "{ticket}");

    // A dead ticket beside the live one does not stop the sync.
    let dead_db = dir.path().join("dead.db");
    let dead_file = dir.path().join("dead-ticket");
    let (dead, dead_ticket) = start_serve(&dead_db, &dead_file, &[]);
    terminate(dead);

    let db = dir.path().join("client.db");
    let sync = seedbank(
        &db,
        &[
            "sync",
            SAMPLE_ROOT,
            "--peer",
            &dead_ticket,
            "--peer",
            &ticket,
            "--json",
        ],
    );
    assert_eq!(sync.status.code(), Some(0), "{}", stderr(&sync));
    let report: serde_json::Value = serde_json::from_slice(&sync.stdout).unwrap();
    assert_eq!(report["complete"], true);
    let missing = seedbank(&db, &["missing", SAMPLE_ROOT]);
    assert_eq!(missing.status.code(), Some(0), "{}", stdout(&missing));
    assert!(seedbank(&db, &["verify"]).status.success());

    // A second sync has nothing to fetch and still exits 0.
    let again = seedbank(&db, &["sync", SAMPLE_ROOT, "--peer", &ticket]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));

    let out = terminate(child);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), ticket.trim());

    // The store was closed: its owner lock is free and everything it held is intact.
    let verify = seedbank(&served_db, &["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let file = dir.path().join("after.txt");
    std::fs::write(&file, b"written after serve stopped").unwrap();
    let put = seedbank(&served_db, &["put", file.to_str().unwrap()]);
    assert!(put.status.success(), "{}", stderr(&put));

    // The key persisted beside the database: the same ticket id after a restart.
    let (child, again) = start_serve(&served_db, &dir.path().join("ticket2"), &[]);
    assert_eq!(&again[..40], &ticket[..40]);
    assert_eq!(terminate(child).status.code(), Some(0));
}

#[test]
fn sync_exit_codes_tell_complete_incomplete_and_usage_errors_apart() {
    let dir = tempfile::tempdir().unwrap();
    let served_db = dir.path().join("served.db");
    let (child, ticket) = start_serve(&served_db, &dir.path().join("ticket"), &[]);
    let db = dir.path().join("client.db");

    // Nobody has it: 1.
    let absent = seedbank(&db, &["sync", SAMPLE_ROOT, "--peer", &ticket]);
    assert_eq!(absent.status.code(), Some(1), "{}", stderr(&absent));
    // Usage errors: 2 (no peer, a bad ticket, no scope).
    for args in [
        vec!["sync", SAMPLE_ROOT],
        vec!["sync", SAMPLE_ROOT, "--peer", "not-a-ticket"],
        vec!["sync", "--peer", ticket.trim()],
    ] {
        let out = seedbank(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(terminate(child).status.code(), Some(0));
}
