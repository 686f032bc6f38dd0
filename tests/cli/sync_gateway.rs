//! `seedbank sync ROOT --gateway URL`: a DAG fetched from a `seedbank gateway` process on
//! 127.0.0.1, verified and stored; usage errors exit 2, a gateway that has nothing (or is
//! not there) leaves the sync incomplete (exit 1).

use crate::common::{fixture, seedbank, start_gateway, stderr, stdout, terminate, SAMPLE_ROOT};

#[test]
fn sync_fetches_a_dag_from_a_gateway_process() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served.db");
    let car = fixture("sample-v1.car");
    let import = seedbank(&served, &["import", car.to_str().unwrap()]);
    assert!(import.status.success(), "{}", stderr(&import));
    let (gateway, url) = start_gateway(&served);

    let db = dir.path().join("client.db");
    let sync = seedbank(&db, &["sync", SAMPLE_ROOT, "--gateway", &url, "--json"]);
    assert_eq!(sync.status.code(), Some(0), "{}", stderr(&sync));
    let report: serde_json::Value = serde_json::from_slice(&sync.stdout).unwrap();
    assert_eq!(report["complete"], true, "{report}");
    assert!(report["blobs_fetched"].as_u64().unwrap() > 1, "{report}");
    let peer = report["sessions"][0]["peer"].as_str().unwrap();
    assert!(peer.starts_with(url.trim_end_matches('/')), "{peer}");
    let missing = seedbank(&db, &["missing", SAMPLE_ROOT]);
    assert_eq!(missing.status.code(), Some(0), "{}", stdout(&missing));
    assert!(seedbank(&db, &["verify"]).status.success());

    // Complete already: nothing to fetch, still 0.
    let again = seedbank(&db, &["sync", SAMPLE_ROOT, "--gateway", &url]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));

    // A gateway without the DAG: incomplete, 1.
    let empty = dir.path().join("empty.db");
    let other = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    let absent = seedbank(&empty, &["sync", other, "--gateway", &url]);
    assert_eq!(absent.status.code(), Some(1), "{}", stderr(&absent));
    terminate(gateway);

    // Nobody listening: incomplete, 1.
    let gone = seedbank(&empty, &["sync", SAMPLE_ROOT, "--gateway", &url]);
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));

    // Usage errors: 2 (a named scope, a URL that is not one, neither --peer nor --gateway).
    for args in [
        vec!["sync", "some-scope", "--gateway", url.as_str()],
        vec!["sync", SAMPLE_ROOT, "--gateway", "not a url"],
        vec!["sync", SAMPLE_ROOT],
    ] {
        let out = seedbank(&empty, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}
