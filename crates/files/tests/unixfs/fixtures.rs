//! Every fixture of `testdata/unixfs/expected.json`: the root CID equals the reference
//! importer's, and `cat` of every file gives back its input.

use crate::common::{cat_all, files_in, fixtures, Fixture};
use seedbank_files::{AddOptions, Files, Kind};

/// Adds every fixture of `profile`; returns one line per mismatch.
async fn check_profile(profile: &str) {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let mut mismatches = Vec::new();
    let all = fixtures(profile);
    assert!(all.len() >= 16, "{profile}: {} fixtures", all.len());
    for (i, f) in all.iter().enumerate() {
        let got = match (&f.content, &f.tree) {
            (Some(_), _) => add_file(&files, f).await,
            (None, Some(_)) => add_tree(&files, f, &dir.path().join(format!("tree-{i}"))).await,
            (None, None) => panic!("{}: neither content nor tree", f.name),
        };
        let verdict = if got == f.cid { "ok" } else { "MISMATCH" };
        println!("{profile}\t{}\t{}\t{got}\t{verdict}", f.name, f.cid);
        if got != f.cid {
            mismatches.push(format!(
                "{profile} {}: expected {}, got {got}",
                f.name, f.cid
            ));
        }
    }
    files.index().store().close().await.unwrap();
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Adds a file fixture and checks `cat` returns its bytes; returns the root CID.
async fn add_file(files: &Files, f: &Fixture) -> String {
    let content = f.content.as_ref().unwrap();
    let opts = AddOptions::new(f.profile());
    let added = files.add_reader(content.reader(), &opts).await.unwrap();
    assert_eq!(added.bytes, content.len(), "{}", f.name);
    assert_eq!(added.entries.len(), 1);
    assert_eq!(added.entries[0].kind, Kind::File);
    // Compare as a stream, so a 1 GiB fixture is never held whole.
    let mut reader = files.cat(&added.root, 0, None).await.unwrap();
    assert_eq!(reader.len(), content.len(), "{}", f.name);
    let mut expected = content.reader();
    let mut seen = 0u64;
    let mut want = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.unwrap() {
        want.resize(chunk.len(), 0);
        assert_eq!(expected.fill(&mut want), chunk.len());
        assert!(
            chunk[..] == want[..],
            "{}: bytes differ after {seen}",
            f.name
        );
        seen += chunk.len() as u64;
    }
    assert_eq!(seen, content.len(), "{}", f.name);
    added.root.to_string()
}

/// Writes a tree fixture to disk, adds it, checks every entry the importer reported and
/// `cat` of every file (by path); returns the root CID.
async fn add_tree(files: &Files, f: &Fixture, at: &std::path::Path) -> String {
    let tree = f.tree.as_ref().unwrap();
    tree.materialize(at);
    let added = files
        .add_path(at, &AddOptions::new(f.profile()))
        .await
        .unwrap();
    let root = added.root.to_string();
    assert_eq!(added.entries.last().unwrap().path, "");
    if let Some(expected) = &f.entries {
        for e in expected {
            let rel = e.path.strip_prefix("root").unwrap().trim_start_matches('/');
            let ours = added.entries.iter().find(|a| a.path == rel);
            let ours = ours.map(|a| a.cid.to_string()).unwrap_or_default();
            assert_eq!(ours, e.cid, "{} {}: entry {rel:?}", f.profile, f.name);
        }
    }
    let root_kind = files.ls(&added.root).await.map(|_| Kind::Directory);
    assert_eq!(root_kind.unwrap(), Kind::Directory, "{}", f.name);
    for e in tree.entries() {
        let Some(content) = &e.content else { continue };
        let cid = files.resolve(&format!("{root}/{}", e.path)).await.unwrap();
        assert_eq!(
            cat_all(files, &cid).await,
            content.bytes(),
            "{}: {}",
            f.name,
            e.path
        );
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unixfs_v1_2025_cids_match_the_reference_importer() {
    check_profile("unixfs-v1-2025").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unixfs_v0_2015_cids_match_the_reference_importer() {
    check_profile("unixfs-v0-2015").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubo_cidv1_cids_match_the_reference_importer() {
    check_profile("kubo-cidv1").await;
}
