//! Every `--json` output of the CLI parses as JSON (one document on stdout, nothing else),
//! and `missing` exits 1 when something under the root is missing (issue 23, item 9).
//! `sync --json` and `sim --json` are parsed in `cli_net.rs`.

use std::path::Path;

use crate::common::{fixture, seedbank, seedbank_with_input, stderr, stdout, SAMPLE_ROOT};
use serde_json::Value;

/// Imports a fixture CAR; returns what `import` printed.
fn import(db: &Path, car: &str) -> String {
    let car = fixture(car);
    let out = seedbank(db, &["import", car.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Runs `args` and parses its whole stdout as one JSON document.
fn json_of(db: &Path, args: &[&str], code: i32) -> Value {
    let out = seedbank(db, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {:?}", stdout(&out)))
}

/// The first line of `seedbank ls ROOT`'s text output names a child CID of ROOT.
fn a_child_of(db: &Path, root: &str) -> String {
    let out = seedbank(db, &["links", root]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .next()
        .expect("the root has links")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn every_json_output_parses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    import(&db, "sample-v1.car");
    let child = a_child_of(&db, SAMPLE_ROOT);
    let absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

    let info = json_of(&db, &["info", SAMPLE_ROOT, "--json"], 0);
    assert!(info.is_object(), "{info}");
    let has = json_of(&db, &["has", SAMPLE_ROOT, absent, "--json"], 1);
    assert!(has.is_array() || has.is_object(), "{has}");
    assert!(has.to_string().contains(absent), "{has}");
    let stats = json_of(&db, &["stats", "--json"], 0);
    assert!(stats.is_object(), "{stats}");
    let links = json_of(&db, &["links", SAMPLE_ROOT, "--json"], 0);
    assert!(links.to_string().contains(&child), "{links}");
    let backlinks = json_of(&db, &["backlinks", &child, "--json"], 0);
    assert!(backlinks.to_string().contains(SAMPLE_ROOT), "{backlinks}");
    let missing = json_of(&db, &["missing", SAMPLE_ROOT, "--json"], 0);
    assert!(missing.is_array() || missing.is_object(), "{missing}");

    // `add --json` from standard input, then `ls --json` of a directory it added.
    let out = seedbank_with_input(&db, &["add", "-", "--json"], b"hello from stdin");
    assert!(out.status.success(), "{}", stderr(&out));
    let added: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("add printed no JSON ({e}): {:?}", stdout(&out)));
    assert!(
        added[0]["cid"]
            .as_str()
            .is_some_and(|c| c.starts_with("baf")),
        "{added}"
    );

    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"a").unwrap();
    std::fs::write(tree.join("sub/b.txt"), b"b").unwrap();
    let added = json_of(&db, &["add", tree.to_str().unwrap(), "--json"], 0);
    let root = root_of(&added);
    let ls = json_of(&db, &["ls", &root, "--json"], 0);
    assert!(ls.to_string().contains("a.txt"), "{ls}");
    assert!(ls.to_string().contains("sub"), "{ls}");
}

/// The root CID in `add --json`'s output: the last CID it names.
fn root_of(added: &Value) -> String {
    fn cids(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.starts_with("baf") => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| cids(v, out)),
            Value::Object(o) => {
                // A `root` field, where there is one, is the answer.
                if let Some(Value::String(r)) = o.get("root") {
                    out.push(r.clone());
                    return;
                }
                o.values().for_each(|v| cids(v, out))
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    cids(added, &mut found);
    found.pop().unwrap_or_else(|| panic!("no CID in {added}"))
}

#[test]
fn missing_exits_1_and_lists_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let printed = import(&db, "simple-unixfs-missing-blocks.car");
    // The CAR's root, as `import` reported it.
    let root = printed
        .split_whitespace()
        .find(|w| w.starts_with("baf") || w.starts_with("Qm"))
        .unwrap_or_else(|| panic!("no root in {printed:?}"))
        .to_string();

    let text = seedbank(&db, &["missing", &root]);
    assert_eq!(text.status.code(), Some(1), "{}", stderr(&text));
    let listed: Vec<String> = stdout(&text).lines().map(str::to_string).collect();
    assert!(!listed.is_empty(), "exit 1 with nothing listed");

    let json = json_of(&db, &["missing", &root, "--json"], 1);
    for cid in &listed {
        assert!(json.to_string().contains(cid.trim()), "{cid} not in {json}");
    }

    // Complete DAG: exit 0, nothing listed.
    import(&db, "sample-v1.car");
    let complete = seedbank(&db, &["missing", SAMPLE_ROOT]);
    assert_eq!(complete.status.code(), Some(0), "{}", stdout(&complete));
    assert_eq!(stdout(&complete), "");
}
