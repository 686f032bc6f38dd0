//! `seedbank serve`'s options as a user gives them (issue 23, item 9): `--allow` refuses
//! every other endpoint, `--known-peer` hands a peer out so a sync finds what the server
//! itself lacks, and the node key is written beside the database with mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;

use crate::common::{fixture, seedbank, start_serve, stderr, stdout, terminate, SAMPLE_ROOT};
use seedbank::net::Ticket;

fn import_sample(db: &Path) {
    let car = fixture("sample-v1.car");
    let out = seedbank(db, &["import", car.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn allow_refuses_every_other_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served.db");
    import_sample(&served);
    // Some other node's id: the only one the server will answer.
    let (other, other_ticket) =
        start_serve(&dir.path().join("other.db"), &dir.path().join("t0"), &[]);
    terminate(other);
    let other_id = Ticket::from_str(&other_ticket).unwrap().id().to_string();

    let (child, ticket) = start_serve(&served, &dir.path().join("t1"), &["--allow", &other_id]);
    let client = dir.path().join("client.db");
    let sync = seedbank(
        &client,
        &["sync", SAMPLE_ROOT, "--peer", &ticket, "--timeout", "20s"],
    );
    assert_eq!(sync.status.code(), Some(1), "{}", stdout(&sync));
    let has = seedbank(&client, &["has", SAMPLE_ROOT]);
    assert_eq!(
        has.status.code(),
        Some(1),
        "a refused client stored the root"
    );
    assert_eq!(terminate(child).status.code(), Some(0));

    // The same server without `--allow` answers the same client.
    let (child, ticket) = start_serve(&served, &dir.path().join("t2"), &[]);
    let sync = seedbank(&client, &["sync", SAMPLE_ROOT, "--peer", &ticket]);
    assert_eq!(sync.status.code(), Some(0), "{}", stderr(&sync));
    assert_eq!(terminate(child).status.code(), Some(0));
}

#[test]
fn known_peer_is_handed_out_and_a_sync_completes_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let holder = dir.path().join("holder.db");
    import_sample(&holder);
    let (holder_child, holder_ticket) = start_serve(&holder, &dir.path().join("t1"), &[]);
    // The server the client is told about holds nothing itself.
    let empty = dir.path().join("empty.db");
    let (child, ticket) = start_serve(
        &empty,
        &dir.path().join("t2"),
        &["--known-peer", &holder_ticket],
    );
    let client = dir.path().join("client.db");
    let sync = seedbank(&client, &["sync", SAMPLE_ROOT, "--peer", &ticket, "--json"]);
    assert_eq!(sync.status.code(), Some(0), "{}", stderr(&sync));
    let report: serde_json::Value = serde_json::from_slice(&sync.stdout).unwrap();
    assert_eq!(report["complete"], true, "{report}");
    let missing = seedbank(&client, &["missing", SAMPLE_ROOT]);
    assert_eq!(missing.status.code(), Some(0), "{}", stdout(&missing));
    assert_eq!(terminate(child).status.code(), Some(0));
    assert_eq!(terminate(holder_child).status.code(), Some(0));
}

#[test]
fn the_node_key_is_written_beside_the_database_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let (child, ticket) = start_serve(&db, &dir.path().join("t"), &[]);
    assert_eq!(terminate(child).status.code(), Some(0));
    let key = dir.path().join("x.db.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Nothing else was left beside it (the temporary file was renamed into place).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".key"))
        .collect();
    names.sort();
    assert_eq!(names, vec!["x.db.key".to_string()]);
    // The same identity after a restart.
    let (child, again) = start_serve(&db, &dir.path().join("t2"), &[]);
    assert_eq!(terminate(child).status.code(), Some(0));
    assert_eq!(
        Ticket::from_str(&ticket).unwrap().id(),
        Ticket::from_str(&again).unwrap().id()
    );
}
