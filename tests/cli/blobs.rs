//! The `seedbank` command line, end to end on a temporary database.

use crate::common::{fixture, seedbank, seedbank_with_input, stderr, stdout, SAMPLE_ROOT};

#[test]
fn put_then_get_info_has_and_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let file = dir.path().join("hello.txt");
    std::fs::write(&file, b"hello from the cli").unwrap();

    let put = seedbank(&db, &["put", file.to_str().unwrap()]);
    assert!(put.status.success(), "{}", stderr(&put));
    let line = stdout(&put);
    let (cid, name) = line.trim_end().split_once('\t').expect("CID<TAB>FILE");
    assert!(name.ends_with("hello.txt"));

    let get = seedbank(&db, &["get", cid]);
    assert_eq!(get.stdout, b"hello from the cli");
    let info = stdout(&seedbank(&db, &["info", cid]));
    assert!(info.contains("size         18"), "{info}");
    let has = seedbank(&db, &["has", cid]);
    assert!(has.status.success());
    assert_eq!(stdout(&has), format!("{cid}\tyes\n"));
    let verify = seedbank(&db, &["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let stats = seedbank(&db, &["stats", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(json["contents"]["cids"], 1);
}

#[test]
fn missing_blobs_and_bad_cids_exit_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let file = dir.path().join("present.txt");
    std::fs::write(&file, b"present").unwrap();
    assert!(seedbank(&db, &["put", file.to_str().unwrap()])
        .status
        .success());
    let absent = "bafkr4ieojr6bxgo37viopkkrqx7k2xxbish2sbfc7xlxr2xv6ln72yu2te";
    let has = seedbank(&db, &["has", absent]);
    assert_eq!(has.status.code(), Some(1));
    assert_eq!(stdout(&has), format!("{absent}\tno\n"));
    for args in [
        &["get", absent][..],
        &["info", "not-a-cid"],
        &["put", "/no/such/file"],
    ] {
        let out = seedbank(&db, args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("seedbank: "), "{err}");
    }
}

#[test]
fn import_export_and_link_queries_on_a_real_car() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let import = seedbank(&db, &["import", fixture("sample-v1.car").to_str().unwrap()]);
    assert!(import.status.success(), "{}", stderr(&import));
    let out = stdout(&import);
    assert!(out.contains("blocks    1049"), "{out}");
    assert!(out.contains(&format!("root      {SAMPLE_ROOT}")), "{out}");
    assert!(out.contains("missing   0"), "{out}");

    let links = stdout(&seedbank(&db, &["links", SAMPLE_ROOT]));
    assert_eq!(links.lines().count(), 4);
    let child = links.lines().next().unwrap();
    let back = stdout(&seedbank(&db, &["backlinks", child]));
    assert!(back.lines().any(|l| l == SAMPLE_ROOT), "{back}");
    let missing = seedbank(&db, &["missing", SAMPLE_ROOT]);
    assert!(missing.status.success());
    assert!(stdout(&seedbank(&db, &["info", SAMPLE_ROOT])).contains("links        4"));

    let car = dir.path().join("out.car");
    let export = seedbank(&db, &["export", SAMPLE_ROOT, car.to_str().unwrap()]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert_eq!(
        std::fs::read(&car).unwrap(),
        std::fs::read(fixture("sample-v1.car")).unwrap()
    );
}

#[test]
fn a_corrupt_car_fails_naming_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    for (name, offset) in [
        ("sample-v1-tailing-corrupt-section.car", "byte 479518"),
        ("badheaderlength.car", "byte 0"),
    ] {
        let out = seedbank(&db, &["import", fixture(name).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert!(
            err.contains("corrupt CAR") && err.contains(offset),
            "{name}: {err}"
        );
    }
}

#[test]
fn sim_runs_a_discovery_simulation_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unused.db");
    let out = seedbank(&db, &["sim", "--peers", "12", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["complete"], true);
    assert_eq!(report["runs"], 1);
    assert_eq!(report["verify_problems"], 0);
}

/// `put -` stores standard input; an input over the blob limit is refused before it is read
/// whole, with a one-line error that points at `add`, and nothing is stored.
#[test]
fn put_reads_standard_input_and_refuses_oversize_inputs_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let out = seedbank_with_input(&db, &["put", "-"], b"from stdin");
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    let (cid, name) = line.trim_end().split_once('\t').unwrap();
    assert_eq!(name, "-");
    assert_eq!(stdout(&seedbank(&db, &["get", cid])), "from stdin");

    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 3_000_000]).unwrap();
    let refused = seedbank(&db, &["put", big.to_str().unwrap()]);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("exceeds the limit") && err.contains("seedbank add"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let stats = stdout(&seedbank(&db, &["stats", "--json"]));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["contents"]["cids"], 1, "{stats}");
}
