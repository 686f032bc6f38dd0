//! Reading files back: ranges, missing and corrupt blocks, identity CIDs, listings, paths;
//! and what an add leaves pinned.

use crate::common::{files_in, fixtures, read_range, Content};
use bytes::Bytes;
use cid::Cid;
use ipld_dagpb::{PbLink, PbNode};
use multihash::Multihash;
use seedbank_blobstore::{codec, Blob, Config, Store};
use seedbank_files::{AddOptions, Error, Files, Kind, Profile};
use seedbank_index::{DeleteOptions, GcOptions, Index, IndexConfig, PinTarget};
use sha2::{Digest, Sha256};

const C: u64 = 256 * 1024;

fn random(size: u64, seed: u32) -> Vec<u8> {
    Content {
        fill: "random".into(),
        size,
        seed,
        text: None,
    }
    .bytes()
}

async fn add(files: &Files, data: &[u8], profile: Profile) -> Cid {
    files
        .add_reader(data, &AddOptions::new(profile))
        .await
        .unwrap()
        .root
}

async fn leaves(files: &Files, cid: &Cid) -> Vec<Cid> {
    files.index().links(cid).await.unwrap().unwrap()
}

async fn drop_blocks(files: &Files, cids: &[Cid]) {
    let freed = files
        .index()
        .delete(cids, DeleteOptions::forced())
        .await
        .unwrap();
    assert_eq!(freed.blobs, cids.len() as u64);
}

fn slice(data: &[u8], offset: u64, len: Option<u64>) -> &[u8] {
    let end = len.map_or(data.len() as u64, |l| (offset + l).min(data.len() as u64));
    &data[offset as usize..end as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_at_block_boundaries_return_exactly_those_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let data = random(3 * C + 1000, 3);
    let total = data.len() as u64;
    for profile in [Profile::KuboCidV1, Profile::UnixfsV0_2015] {
        let root = add(&files, &data, profile).await;
        for (offset, len) in [
            (0, None),
            (0, Some(0)),
            (0, Some(1)),
            (C - 1, Some(2)),
            (C, Some(C)),
            (C, None),
            (C + 1, Some(C)),
            (2 * C - 1, Some(C + 2)),
            (3 * C, None),
            (total - 1, None),
            (total, None),
            (5, Some(10 * C)),
        ] {
            let got = read_range(&files, &root, offset, len).await;
            assert!(
                got == slice(&data, offset, len),
                "{profile} {offset}+{len:?}: {} bytes",
                got.len()
            );
        }
        let past = files.cat(&root, total + 1, None).await.unwrap_err();
        assert!(
            matches!(past, Error::RangeNotSatisfiable { offset, size } if offset == total + 1 && size == total)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_reads_only_the_blocks_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    // Two levels: 174 leaves under the first parent, 2 under the second.
    let data = random(176 * C, 11);
    let root = add(&files, &data, Profile::KuboCidV1).await;
    let parents = leaves(&files, &root).await;
    assert_eq!(parents.len(), 2);
    let first = leaves(&files, &parents[0]).await;
    assert_eq!(first.len(), 174);
    // Without the first subtree and the first leaf of the second, a range inside the
    // second subtree's last leaf still reads: nothing else was fetched.
    let second = leaves(&files, &parents[1]).await;
    drop_blocks(&files, &[parents[0], second[0]]).await;
    let (offset, len) = (175 * C + 7, Some(C - 7));
    assert!(read_range(&files, &root, offset, len).await == slice(&data, offset, len));
    // A range that needs the first subtree fails on it, naming it.
    let mut reader = files.cat(&root, 10, Some(5)).await.unwrap();
    let err = reader.next_chunk().await.unwrap_err();
    assert!(
        matches!(err, Error::MissingBlock { cid } if cid == parents[0]),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_block_ends_the_stream_after_the_bytes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let data = random(4 * C, 5);
    let root = add(&files, &data, Profile::KuboCidV1).await;
    let leaf = leaves(&files, &root).await[2];
    drop_blocks(&files, &[leaf]).await;
    let mut reader = files.cat(&root, 0, None).await.unwrap();
    let mut got = Vec::new();
    let err = loop {
        match reader.next_chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => panic!("the stream ended without an error"),
            Err(e) => break e,
        }
    };
    assert!(
        got == data[..2 * C as usize],
        "{} bytes before the error",
        got.len()
    );
    assert!(matches!(err, Error::MissingBlock { cid } if cid == leaf));
    assert!(err.to_string().contains(&leaf.to_string()), "{err}");
    assert_eq!(reader.next_chunk().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_lists_flat_and_hamt_directories_and_paths_resolve_through_both() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let all = fixtures("kubo-cidv1");
    let nested = all.iter().find(|f| f.name == "dir-nested").unwrap();
    let sharded = all.iter().find(|f| f.name == "dir-over-threshold").unwrap();

    nested
        .tree
        .as_ref()
        .unwrap()
        .materialize(&dir.path().join("nested"));
    let opts = AddOptions::new(Profile::KuboCidV1);
    let root = files
        .add_path(dir.path().join("nested"), &opts)
        .await
        .unwrap()
        .root;
    let listing: Vec<_> = files
        .ls(&root)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind, e.size))
        .collect();
    assert_eq!(listing.len(), 5);
    assert_eq!(listing[0], ("a.txt".into(), Kind::File, 100));
    assert_eq!(
        (listing[1].0.as_str(), listing[1].1),
        ("b", Kind::Directory)
    );
    assert_eq!(
        (listing[2].0.as_str(), listing[2].1),
        ("empty", Kind::Directory)
    );
    assert_eq!(listing[3], ("z".into(), Kind::File, 3));
    assert_eq!(listing[4], ("ünïcode ñame.txt".into(), Kind::File, 10));
    let b = files.resolve(&format!("/ipfs/{root}/b")).await.unwrap();
    let in_b: Vec<_> = files
        .ls(&b)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind, e.size))
        .collect();
    assert_eq!(
        in_b,
        [
            ("big.bin".into(), Kind::File, 1_100_000),
            ("c.bin".into(), Kind::File, 300_000),
            ("d".into(), Kind::Directory, in_b[2].2),
            ("link".into(), Kind::Symlink, "../a.txt".len() as u64),
        ]
    );
    let e = files.resolve(&format!("{root}/b/d/e")).await.unwrap();
    assert_eq!(files.cat(&e, 0, None).await.unwrap().len(), 0);

    let tree = sharded.tree.as_ref().unwrap();
    tree.materialize(&dir.path().join("sharded"));
    let hamt = files
        .add_path(dir.path().join("sharded"), &opts)
        .await
        .unwrap()
        .root;
    assert_eq!(hamt.to_string(), sharded.cid);
    let listed = files.ls(&hamt).await.unwrap();
    let mut names: Vec<String> = tree.entries().into_iter().map(|e| e.path).collect();
    names.sort();
    assert_eq!(
        listed.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        names
    );
    assert!(listed
        .iter()
        .all(|e| e.kind == Kind::File && e.size == e.name.len() as u64));
    for name in [&names[0], &names[names.len() / 2], names.last().unwrap()] {
        let cid = files.resolve(&format!("{hamt}/{name}")).await.unwrap();
        assert_eq!(read_range(&files, &cid, 0, None).await, name.as_bytes());
    }

    for (path, want) in [
        (format!("{hamt}/no-such-name"), "NotFound"),
        (format!("{root}/nope"), "NotFound"),
        (format!("{root}/a.txt/x"), "NotADirectory"),
        (format!("{root}/../x"), "InvalidPath"),
    ] {
        let err = files.resolve(&path).await.unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{path}: {err:?}");
    }
    let a = files.resolve(&format!("{root}/a.txt")).await.unwrap();
    assert!(matches!(
        files.ls(&a).await,
        Err(Error::NotADirectory {
            found: Kind::File,
            ..
        })
    ));
    assert!(matches!(
        files.cat(&root, 0, None).await,
        Err(Error::NotAFile {
            found: Kind::Directory,
            ..
        })
    ));
    assert!(matches!(
        files.cat(&hamt, 0, None).await,
        Err(Error::NotAFile {
            found: Kind::Directory,
            ..
        })
    ));
}

fn sha256_cid(codec: u64, bytes: &[u8]) -> Cid {
    let mh = Multihash::<64>::wrap(0x12, &Sha256::digest(bytes)).unwrap();
    Cid::new_v1(codec, mh)
}

fn identity_cid(codec: u64, bytes: &[u8]) -> Cid {
    Cid::new_v1(codec, Multihash::<64>::wrap(0x00, bytes).unwrap())
}

/// A UnixFS `Data` message: type, optional inline data, filesize, blocksizes.
fn unixfs(kind: u8, data: &[u8], filesize: u64, blocksizes: &[u64]) -> Vec<u8> {
    let mut out = vec![0x08, kind];
    if !data.is_empty() {
        out.push(0x12);
        out.push(data.len() as u8);
        out.extend_from_slice(data);
    }
    out.push(0x18);
    varint(&mut out, filesize);
    for s in blocksizes {
        out.push(0x20);
        varint(&mut out, *s);
    }
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb(links: &[(Cid, u64)], data: Vec<u8>) -> Vec<u8> {
    PbNode {
        links: links
            .iter()
            .map(|(cid, tsize)| PbLink {
                cid: *cid,
                name: Some(String::new()),
                size: Some(*tsize),
            })
            .collect(),
        data: Some(Bytes::from(data)),
    }
    .into_bytes()
}

async fn store_pb(files: &Files, bytes: Vec<u8>) -> Cid {
    let cid = sha256_cid(codec::DAG_PB, &bytes);
    files
        .index()
        .put(Blob::with_cid(cid, bytes).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_cids_and_inline_data_read_without_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let raw = identity_cid(codec::RAW, b"raw inline");
    assert_eq!(read_range(&files, &raw, 0, None).await, b"raw inline");
    let node = pb(&[], unixfs(2, b"pb inline", 9, &[]));
    let inline = identity_cid(codec::DAG_PB, &node);
    assert_eq!(read_range(&files, &inline, 3, Some(3)).await, b"inl");
    // A stored node with inline bytes of its own, then an identity child and a stored one.
    let stored = Blob::with_cid(sha256_cid(codec::RAW, b"stored"), &b"stored"[..]).unwrap();
    files.index().put(stored.clone()).await.unwrap();
    let parent = pb(
        &[(raw, 10), (*stored.cid(), 6)],
        unixfs(2, b"head ", 21, &[10, 6]),
    );
    let parent = store_pb(&files, parent).await;
    assert_eq!(
        read_range(&files, &parent, 0, None).await,
        b"head raw inlinestored"
    );
    assert_eq!(read_range(&files, &parent, 3, Some(9)).await, b"d raw inl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_nodes_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let garbage = store_pb(&files, pb(&[], vec![0xff, 0xff])).await;
    assert!(
        matches!(files.cat(&garbage, 0, None).await, Err(Error::Corrupt { cid, .. }) if cid == garbage)
    );

    let filesize_lies = store_pb(&files, pb(&[], unixfs(2, b"abc", 10, &[]))).await;
    assert!(matches!(
        files.cat(&filesize_lies, 0, None).await,
        Err(Error::Corrupt { .. })
    ));

    // The parent promises 5 bytes under a 3-byte child: the read stops there.
    let child = Blob::with_cid(sha256_cid(codec::RAW, b"abc"), &b"abc"[..]).unwrap();
    files.index().put(child.clone()).await.unwrap();
    let parent = store_pb(&files, pb(&[(*child.cid(), 3)], unixfs(2, b"", 5, &[5]))).await;
    let mut reader = files.cat(&parent, 0, None).await.unwrap();
    let err = reader.next_chunk().await.unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { cid, .. } if cid == *child.cid()),
        "{err}"
    );

    let missing_sizes = store_pb(&files, pb(&[(*child.cid(), 3)], unixfs(2, b"", 3, &[]))).await;
    assert!(matches!(
        files.cat(&missing_sizes, 0, None).await,
        Err(Error::Corrupt { .. })
    ));
    assert!(matches!(
        files.ls(&garbage).await,
        Err(Error::Corrupt { .. })
    ));

    let cbor = identity_cid(codec::DAG_CBOR, &[0xa0]);
    assert!(matches!(
        files.cat(&cbor, 0, None).await,
        Err(Error::UnsupportedCodec { codec: 0x71, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_pins_its_root_when_asked_and_leaves_nothing_pinned_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let data = random(3 * C, 21);
    let loose = files
        .add_reader(&data[..], &AddOptions::new(Profile::KuboCidV1))
        .await
        .unwrap();
    assert_eq!(loose.blocks, 4);
    let report = files.index().gc(GcOptions::default()).await.unwrap();
    assert_eq!(
        report.blobs_freed, 4,
        "the temp pin is gone once the add returns"
    );

    let opts = AddOptions::new(Profile::KuboCidV1).pin("photo");
    let pinned = files.add_reader(&data[..], &opts).await.unwrap();
    assert_eq!(pinned.root, loose.root);
    let pins = files.index().pins().await.unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(
        (pins[0].name.as_str(), &pins[0].target),
        ("photo", &PinTarget::Root(pinned.root))
    );
    let report = files.index().gc(GcOptions::default()).await.unwrap();
    assert_eq!(report.blobs_freed, 0);
    assert!(read_range(&files, &pinned.root, 0, None).await == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_entries_are_left_out_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join(".git")).unwrap();
    std::fs::write(tree.join("a"), b"a").unwrap();
    std::fs::write(tree.join(".env"), b"secret").unwrap();
    let plain = files.add_path(&tree, &AddOptions::default()).await.unwrap();
    let paths: Vec<_> = plain.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a", ""]);
    let opts = AddOptions {
        hidden: true,
        ..AddOptions::default()
    };
    let all = files.add_path(&tree, &opts).await.unwrap();
    let paths: Vec<_> = all.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, [".env", ".git", "a", ""]);
    assert_ne!(all.root, plain.root);
    // A hidden path given itself is added.
    let env = files
        .add_path(tree.join(".env"), &AddOptions::default())
        .await
        .unwrap();
    assert_eq!(read_range(&files, &env.root, 0, None).await, b"secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_smaller_blobs_than_the_profile_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        max_blob_size: 512 * 1024,
        ..Config::default()
    };
    let store = Store::open(dir.path().join("small.db"), config).unwrap();
    let files = Files::new(Index::open(store, IndexConfig::default()).await.unwrap());
    let err = files
        .add_reader(&b"x"[..], &AddOptions::new(Profile::UnixfsV1_2025))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ChunkTooLarge {
            chunk: 1_048_576,
            max: 524_288
        }
    ));
    let ok = files
        .add_reader(&b"x"[..], &AddOptions::new(Profile::KuboCidV1))
        .await;
    assert!(ok.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_during_an_add_take_none_of_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let files = files_in(dir.path()).await;
    // 160 leaves: several batches, committed long before the root that links them.
    let data = random(160 * C, 31);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (index, done) = (files.index().clone(), done.clone());
        tokio::spawn(async move {
            let mut runs = 0u32;
            while !done.load(std::sync::atomic::Ordering::Acquire) || runs == 0 {
                index.gc(GcOptions::default()).await.unwrap();
                runs += 1;
            }
            runs
        })
    };
    let opts = AddOptions::new(Profile::KuboCidV1).pin("kept");
    let added = files.add_reader(&data[..], &opts).await.unwrap();
    done.store(true, std::sync::atomic::Ordering::Release);
    assert!(collector.await.unwrap() >= 1);
    files.index().gc(GcOptions::default()).await.unwrap();
    assert!(read_range(&files, &added.root, 0, None).await == data);
}
