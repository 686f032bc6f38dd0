//! `seedbank gateway`: a read-only HTTP gateway process beside a writing owner, on
//! 127.0.0.1, stopped by SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use crate::common::{fixture, seedbank, start_gateway, stderr, terminate, SAMPLE_ROOT};
use seedbank::blobstore::{codec, Blob, Config, Store};

/// One HTTP/1.1 GET; returns the status line, the headers (lower-case names) and the body.
fn get(addr: &str, path: &str, headers: &[&str]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Starts `seedbank gateway` and returns it with its address (`127.0.0.1:PORT`).
fn start(db: &std::path::Path) -> (Child, String) {
    let (child, url) = start_gateway(db);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    (child, addr)
}

#[test]
fn gateway_serves_a_database_read_only_beside_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db");
    let imported = seedbank(&db, &["import", fixture("sample-v1.car").to_str().unwrap()]);
    assert!(imported.status.success(), "{}", stderr(&imported));

    // An owner holds the database for writing the whole time.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let owner = Store::open(&db, Config::default()).unwrap();

    let (child, addr) = start(&db);
    let (status, headers, body) = get(&addr, &format!("/ipfs/{SAMPLE_ROOT}?format=raw"), &[]);
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/vnd.ipld.raw")
    );
    let root = seedbank::Cid::try_from(SAMPLE_ROOT).unwrap();
    let stored = runtime.block_on(owner.get(&root)).unwrap().unwrap();
    assert_eq!(body, stored.to_vec());

    // What the owner writes now is served (read-only readers see committed data).
    let blob = Blob::new(codec::RAW, &b"written while the gateway runs"[..]);
    let cid = runtime.block_on(owner.put(blob)).unwrap();
    let (status, _, body) = get(&addr, &format!("/ipfs/{cid}"), &[]);
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, b"written while the gateway runs");

    // A CAR of the sample DAG, and an absent CID.
    let (status, headers, _) = get(
        &addr,
        &format!("/ipfs/{SAMPLE_ROOT}"),
        &["Accept: application/vnd.ipld.car"],
    );
    assert!(status.contains(" 200 "), "{status}");
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("application/vnd.ipld.car; version=1; order=dfs"));
    let absent = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";
    let (status, _, _) = get(&addr, &format!("/ipfs/{absent}?format=raw"), &[]);
    assert!(status.contains(" 404 "), "{status}");

    assert!(terminate(child).status.success());
    runtime.block_on(owner.close()).unwrap();
}

#[test]
fn gateway_on_a_missing_database_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.db");
    let out = seedbank(&db, &["gateway", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot open the database"),
        "{}",
        stderr(&out)
    );
    assert!(!db.exists());
}
