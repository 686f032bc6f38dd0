//! `seedbank add`, `cat` and `ls` end to end on a temporary database.

use crate::common::{seedbank, seedbank_with_input, stderr, stdout};

/// `CID<TAB>PATH` lines of an add.
fn added(out: &std::process::Output) -> Vec<(String, String)> {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out)
        .lines()
        .map(|l| {
            let (cid, path) = l.split_once('\t').expect("CID<TAB>PATH");
            (cid.to_string(), path.to_string())
        })
        .collect()
}

#[test]
fn add_prints_every_entry_with_the_root_last_and_cat_and_ls_read_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let tree = dir.path().join("site");
    std::fs::create_dir_all(tree.join("img")).unwrap();
    std::fs::create_dir_all(tree.join("empty")).unwrap();
    std::fs::write(tree.join("index.html"), b"<h1>hello</h1>").unwrap();
    let photo: Vec<u8> = (0..600_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(tree.join("img/photo.jpg"), &photo).unwrap();
    std::fs::write(tree.join(".hidden"), b"left out").unwrap();

    let tree_arg = tree.to_str().unwrap();
    let lines = added(&seedbank(
        &db,
        &["add", tree_arg, "--profile", "kubo-cidv1"],
    ));
    let paths: Vec<&str> = lines.iter().map(|(_, p)| p.as_str()).collect();
    let under = |rel: &str| tree.join(rel).display().to_string();
    assert_eq!(
        paths,
        [
            under("empty"),
            under("img/photo.jpg"),
            under("img"),
            under("index.html"),
            tree_arg.to_string()
        ]
    );
    let root = &lines.last().unwrap().0;
    assert!(root.starts_with("bafybei"), "{root}");

    let cat = seedbank(&db, &["cat", &format!("{root}/img/photo.jpg")]);
    assert!(cat.status.success(), "{}", stderr(&cat));
    assert!(cat.stdout == photo);
    // A range across the first 256 KiB chunk boundary, to a file.
    let out = dir.path().join("part");
    let range = seedbank(
        &db,
        &[
            "cat",
            &format!("/ipfs/{root}/img/photo.jpg"),
            "--offset",
            "262140",
            "--length",
            "10",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(range.status.success(), "{}", stderr(&range));
    assert_eq!(std::fs::read(&out).unwrap(), &photo[262_140..262_150]);

    let ls = seedbank(&db, &["ls", root]);
    assert!(ls.status.success(), "{}", stderr(&ls));
    let rows: Vec<Vec<String>> = stdout(&ls)
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    let summary: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[2].as_str(), r[3].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("directory", "empty"),
            ("directory", "img"),
            ("file", "index.html")
        ]
    );
    assert_eq!(rows[2][1], "14");
    let json = seedbank(&db, &["ls", &format!("{root}/img"), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json[0]["name"], "photo.jpg");
    assert_eq!(json[0]["size"], 600_000);
    assert_eq!(json[0]["type"], "file");
    assert_eq!(json[0]["cid"], lines[1].0.as_str());
}

#[test]
fn add_reproduces_published_cids_per_profile_and_reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let hello = dir.path().join("hello.txt");
    std::fs::write(&hello, b"hello world").unwrap();
    let hello = hello.to_str().unwrap();
    // IPIP-499's published CIDs for these 11 bytes.
    for (profile, cid) in [
        (
            "unixfs-v0-2015",
            "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD",
        ),
        (
            "unixfs-v1-2025",
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
        ),
    ] {
        let lines = added(&seedbank(&db, &["add", "--profile", profile, hello]));
        assert_eq!(lines, [(cid.to_string(), hello.to_string())]);
    }

    let out = seedbank_with_input(
        &db,
        &["add", "-", "--pin", "stdin", "--json"],
        b"hello world",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Quiet when stderr is not a terminal: no progress bar.
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";
    assert_eq!(json[0]["cid"], root);
    assert_eq!(json[0]["path"], "-");
    let pins = seedbank(&db, &["pins"]);
    assert_eq!(stdout(&pins), format!("stdin\troot {root}\n"));
    let cat = seedbank(&db, &["cat", root, "--offset", "6"]);
    assert_eq!(cat.stdout, b"world");
}

#[test]
fn bad_input_fails_with_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let file = dir.path().join("f");
    std::fs::write(&file, b"1234").unwrap();
    let f = file.to_str().unwrap();
    let root = added(&seedbank(&db, &["add", f]))[0].0.clone();
    let absent = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    for (args, says) in [
        (vec!["cat", absent], "is missing"),
        (vec!["ls", &root], "not a directory"),
        (vec!["cat", &root, "--offset", "5"], "past the end"),
        (vec!["cat", &format!("{root}/x")], "not a directory"),
        (vec!["add", "/no/such/path"], "cannot add"),
        (vec!["add", f, "--profile", "kubo"], "unknown profile"),
        (vec!["add", f, f, "--pin", "p"], "one PATH"),
    ] {
        let out = seedbank(&db, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(says), "{args:?}: {err}");
        // Our own errors are one line; clap's usage errors add a hint.
        if err.starts_with("seedbank: ") {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
    }
}
