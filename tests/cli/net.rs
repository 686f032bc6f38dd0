//! `seedbank serve` and `seedbank sync` between processes on 127.0.0.1.

use std::time::{Duration, Instant};

use crate::common::{fixture, seedbank, start_serve, stderr, stdout, terminate, SAMPLE_ROOT};

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

/// One plain HTTP/1.1 GET on 127.0.0.1, the whole answer as text.
fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn serve_exposes_its_stats_in_prometheus_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("served.db");
    let car = fixture("sample-v1.car");
    assert!(seedbank(&db, &["import", car.to_str().unwrap()])
        .status
        .success());
    // A port just released (a small race with other processes, fine on a test machine).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let ticket_file = dir.path().join("ticket");
    let (child, ticket) = start_serve(&db, &ticket_file, &["--metrics", &addr]);
    // Serve one real sync, then wait for a publish tick that counted it.
    let client = dir.path().join("client.db");
    let sync = seedbank(&client, &["sync", SAMPLE_ROOT, "--peer", ticket.trim()]);
    assert!(sync.status.success(), "{}", stderr(&sync));
    let start = Instant::now();
    let body = loop {
        let body = http_get(port).unwrap_or_default();
        let served = body
            .lines()
            .find(|l| l.starts_with("seedbank_responder_blobs_sent_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
        // sample-v1's 1,043 hashed blocks (its 6 identity blocks are their own bytes).
        if served == Some(1043) {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no metrics with the sync counted: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for name in [
        "seedbank_blobs_written_total",
        "seedbank_wal_bytes",
        "seedbank_serve_connections_total",
        "seedbank_serve_requests_total",
        "seedbank_haves_builds_total",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(name)),
            "{name} missing from {body}"
        );
    }
    let out = terminate(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A port already taken: serve fails at start with a clear error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let busy = seedbank(&db, &["serve", "--metrics", &taken_addr]);
    assert_eq!(busy.status.code(), Some(1), "{}", stderr(&busy));
    assert!(
        stderr(&busy).contains("cannot serve metrics"),
        "{}",
        stderr(&busy)
    );
}

#[test]
fn sim_across_processes_syncs_and_measures_against_a_local_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let out = seedbank(
        &db,
        &[
            "sim",
            "--processes",
            "4",
            "--failing",
            "0.25",
            "--liars",
            "1",
            "--blocks",
            "200",
            "--sizes",
            "100-8192",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["report"]["complete"], true, "{json}");
    assert_eq!(json["missing_after"], 0);
    assert_eq!(json["report"]["duplicates"], 0);
    assert_eq!(
        json["processes"],
        serde_json::json!({"honest": 2, "liars": 1, "dead": 1})
    );
    let blocks = json["dag_blocks"].as_u64().unwrap();
    assert!((190..=210).contains(&blocks), "{blocks}");
    let run = &json["runs"][0];
    assert_eq!(run["first"]["blobs"].as_u64(), Some(blocks));
    assert!(run["import"]["seconds"].as_f64().unwrap() > 0.0);
    assert!(
        run["first"]["udp_bytes_received"].as_u64().unwrap()
            > run["first"]["payload_bytes"].as_u64().unwrap()
    );
    // Nothing missing the second time: the DAG asks nobody; the named scope reconciles.
    assert_eq!(run["again_dag"]["rounds"], 0);
    assert_eq!(run["again_named"]["blobs"], 0);
    assert!(run["again_named"]["rounds"].as_u64().unwrap() >= 1);
}
