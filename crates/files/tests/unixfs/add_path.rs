//! `add_path` reads files on the blocking pool, a few chunks of a large file or a group of
//! small files per task (`src/add/read.rs`). These tests hold it to what `add_reader`
//! computes from the same bytes: the same CIDs, in the same order, across chunk and group
//! boundaries.

use crate::common::{files_in, fixtures};
use seedbank_files::testing::noise;
use seedbank_files::{AddOptions, Files, Kind, Profile};

/// Every file fixture up to 64 MiB, written to disk and added by path, has the reference
/// importer's CID (the fixtures test adds them through `add_reader`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_added_by_path_has_the_reference_cid() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let mut checked = 0;
    for profile in Profile::ALL {
        for f in fixtures(profile.name()) {
            let Some(content) = &f.content else { continue };
            if content.len() > 64 << 20 {
                continue;
            }
            let path = dir.path().join("input.bin");
            std::fs::write(&path, content.bytes()).unwrap();
            let added = files
                .add_path(&path, &AddOptions::new(profile))
                .await
                .unwrap();
            assert_eq!(added.root.to_string(), f.cid, "{profile} {}", f.name);
            assert_eq!(added.bytes, content.len(), "{profile} {}", f.name);
            checked += 1;
        }
    }
    // Sizes 0, 1, chunk - 1, chunk, chunk + 1 and a multi-level file, in every profile.
    assert!(checked >= 20, "{checked} fixtures");
    files.index().store().close().await.unwrap();
}

/// Bytes of file `i` in the mixed directory: sizes that put chunk and group boundaries
/// (256 files, 4 MiB) at different places, an empty file, a file of exactly one chunk and
/// two larger than a chunk (streamed between groups).
fn mixed_size(i: usize, chunk: usize) -> usize {
    match i {
        7 => 0,
        100 => chunk,
        300 => 3 * chunk + 17,
        301 => chunk + 1,
        _ => (i * 7919) % 40_000 + 1,
    }
}

/// A directory of 600 files in which small files are read in groups and larger ones
/// streamed: every file's entry has the CID `add_reader` gives the same bytes, entries
/// come in name order, and the bytes read add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_reads_give_every_file_its_own_cid_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let profile = Profile::KuboCidV1;
    let chunk = profile.chunk_size();
    let input = dir.path().join("mixed");
    std::fs::create_dir(&input).unwrap();
    std::fs::create_dir(input.join("sub")).unwrap();
    std::fs::write(input.join("sub/inner.txt"), b"inner").unwrap();
    let mut contents = Vec::new();
    for i in 0..600 {
        let data = noise(mixed_size(i, chunk), 21 + i as u64);
        std::fs::write(input.join(format!("f{i:04}")), &data).unwrap();
        contents.push(data);
    }
    let added = files
        .add_path(&input, &AddOptions::new(profile))
        .await
        .unwrap();
    let total: u64 = contents.iter().map(|c| c.len() as u64).sum::<u64>() + 5;
    assert_eq!(added.bytes, total);
    let file_entries: Vec<_> = added
        .entries
        .iter()
        .filter(|e| e.kind == Kind::File && e.path.starts_with('f'))
        .collect();
    assert_eq!(file_entries.len(), contents.len());
    for (i, (entry, data)) in file_entries.iter().zip(&contents).enumerate() {
        assert_eq!(entry.path, format!("f{i:04}"));
        let alone = add_bytes(&files, data, profile).await;
        assert_eq!(entry.cid, alone, "file {i} of {} bytes", data.len());
    }
    // The subdirectory (listed after the files) went in too, children before it.
    let names: Vec<&str> = added.entries.iter().map(|e| e.path.as_str()).collect();
    let (inner, sub) = (
        names.iter().position(|p| *p == "sub/inner.txt").unwrap(),
        names.iter().position(|p| *p == "sub").unwrap(),
    );
    assert!(inner < sub && sub < names.len() - 1);
    files.index().store().close().await.unwrap();
}

async fn add_bytes(files: &Files, data: &[u8], profile: Profile) -> cid::Cid {
    files
        .add_reader(data, &AddOptions::new(profile))
        .await
        .unwrap()
        .root
}

/// A path that cannot be read ends the add with an I/O error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let missing = dir.path().join("gone.bin");
    let err = files
        .add_path(&missing, &AddOptions::default())
        .await
        .unwrap_err();
    match err {
        seedbank_files::Error::Io { path, .. } => assert_eq!(path, missing),
        other => panic!("expected Io, got {other}"),
    }
    files.index().store().close().await.unwrap();
}
