//! CAR import against go-car's own fixtures, corrupt input, and mutated input.

use crate::common::{cid, fixture_bytes, import_fixture, open, read_all, SAMPLE_V1_ROOT};
use cid::Cid;
use multihash::Multihash;
use rand::{Rng, SeedableRng};
use seedbank_blobstore::codec;
use seedbank_index::car::{self, CarReader, CarWriter, ImportOptions};
use seedbank_index::Error;

const BLAKE2B_256: u64 = 0xb220;
const IDENTITY: u64 = 0x00;

/// Asserts `err` is a CAR error at `offset` whose reason, or a cause of it, mentions `words`.
fn assert_car_error(err: &Error, offset: u64, words: &str) {
    match err {
        Error::Car { offset: at, .. } => {
            assert_eq!(*at, offset, "wrong offset in: {err}");
            let mut text = err.to_string();
            let mut cause = std::error::Error::source(err);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            assert!(text.contains(words), "{text:?} should mention {words:?}");
        }
        other => panic!("expected a CAR error at {offset}, got {other:?}"),
    }
}

#[tokio::test]
async fn sample_v1_imports_with_go_car_counts() {
    let db = open().await;
    let report = import_fixture(&db, "sample-v1.car").await.unwrap();
    let root = cid(SAMPLE_V1_ROOT);
    assert_eq!(report.version, 1);
    assert_eq!(report.roots, vec![root]);
    assert_eq!(report.blocks, 1049);
    assert!(
        db.store().has(&root).await.unwrap(),
        "root block is present"
    );

    let (_, blocks) = read_all(&fixture_bytes("sample-v1.car")).await.unwrap();
    let kind = |b: &&car::CarBlock| (b.cid.codec(), b.cid.hash().code());
    let cbor = blocks
        .iter()
        .filter(|b| kind(b) == (codec::DAG_CBOR, BLAKE2B_256))
        .count();
    let raw = blocks
        .iter()
        .filter(|b| kind(b) == (codec::RAW, IDENTITY))
        .count();
    assert_eq!((cbor, raw), (1043, 6));
    let cids: Vec<Cid> = blocks.iter().map(|b| b.cid).collect();
    assert!(db
        .store()
        .has_many(&cids)
        .await
        .unwrap()
        .into_iter()
        .all(|h| h));
    assert_eq!(
        report.bytes,
        blocks.iter().map(|b| b.data.len() as u64).sum::<u64>()
    );
    let sizes: Vec<usize> = blocks.iter().map(|b| b.data.len()).collect();
    assert_eq!(
        (sizes.iter().min(), sizes.iter().max()),
        (Some(&1), Some(&1342))
    );
}

#[tokio::test]
async fn sample_v1_imports_complete_with_nothing_missing() {
    let db = open().await;
    let report = import_fixture(&db, "sample-v1.car").await.unwrap();
    assert_eq!((report.missing, report.missing_complete), (0, true));
    let reachable = db.reachable(&cid(SAMPLE_V1_ROOT)).await.unwrap();
    assert_eq!(reachable.first(), Some(&cid(SAMPLE_V1_ROOT)));
}

#[tokio::test]
async fn wrapped_v2_imports_the_same_blocks_as_v1() {
    let (v1_roots, v1) = read_all(&fixture_bytes("sample-v1.car")).await.unwrap();
    let (v2_roots, v2) = read_all(&fixture_bytes("sample-wrapped-v2.car"))
        .await
        .unwrap();
    assert_eq!(v1_roots, v2_roots);
    let strip =
        |bs: Vec<car::CarBlock>| bs.into_iter().map(|b| (b.cid, b.data)).collect::<Vec<_>>();
    assert_eq!(strip(v1), strip(v2));

    let db = open().await;
    let report = import_fixture(&db, "sample-wrapped-v2.car").await.unwrap();
    assert_eq!(
        (report.version, report.blocks, report.missing),
        (2, 1049, 0)
    );
}

#[tokio::test]
async fn zero_length_section_followed_by_padding_ends_the_data() {
    let db = open().await;
    let report = import_fixture(&db, "sample-v1-with-zero-len-section.car")
        .await
        .unwrap();
    assert_eq!(report.blocks, 1049);
}

#[tokio::test]
async fn data_after_a_zero_length_section_is_corrupt() {
    let mut bytes = fixture_bytes("sample-v1.car");
    let at = bytes.len() as u64;
    bytes.extend_from_slice(&[0, 0, 7]);
    let err = read_all(&bytes).await.unwrap_err();
    assert_car_error(&err, at, "zero-length section");
}

#[tokio::test]
async fn identity_blocks_are_never_missing() {
    let db = open().await;
    let report = import_fixture(&db, "sample-v1-noidentity.car")
        .await
        .unwrap();
    assert_eq!(report.blocks, 1043);
    assert_eq!((report.missing, report.missing_complete), (0, true));
    assert!(db.missing(&cid(SAMPLE_V1_ROOT)).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_header_length_is_rejected_at_byte_zero() {
    let db = open().await;
    let err = import_fixture(&db, "badheaderlength.car")
        .await
        .unwrap_err();
    assert_car_error(&err, 0, "header length");
}

#[tokio::test]
async fn bad_section_length_is_rejected_at_its_section() {
    let db = open().await;
    let err = import_fixture(&db, "badsectionlength.car")
        .await
        .unwrap_err();
    // The header is one length byte and 0x11 bytes; the bad section starts right after.
    assert_car_error(&err, 18, "section length");
}

#[tokio::test]
async fn corrupt_tail_section_fails_at_its_offset_and_keeps_earlier_blocks() {
    let (_, good) = read_all(&fixture_bytes("sample-v1.car")).await.unwrap();
    let last = good.last().unwrap();
    let db = open().await;
    let err = import_fixture(&db, "sample-v1-tailing-corrupt-section.car")
        .await
        .unwrap_err();
    assert_car_error(&err, last.offset, "truncated section");
    assert!(
        err.to_string().contains(&format!("byte {}", last.offset)),
        "{err}"
    );

    let before: Vec<Cid> = good[..good.len() - 1].iter().map(|b| b.cid).collect();
    let present = db.store().has_many(&before).await.unwrap();
    assert!(
        present.into_iter().all(|p| p),
        "verified blocks before the bad section stay"
    );
}

#[tokio::test]
async fn corrupt_v2_data_offset_is_rejected_after_the_pragma() {
    let db = open().await;
    let err = import_fixture(&db, "sample-v2-corrupt-data-and-index.car")
        .await
        .unwrap_err();
    assert_car_error(&err, 11, "out of range");
}

#[tokio::test]
async fn empty_input_is_not_a_car() {
    let db = open().await;
    let err = car::import(&db, &[][..], ImportOptions::default())
        .await
        .unwrap_err();
    assert_car_error(&err, 0, "no CAR header");
}

#[tokio::test]
async fn unsupported_car_version_is_rejected() {
    let header = serde_ipld_dagcbor::to_vec(&ipld_map("version", 3)).unwrap();
    let mut bytes = vec![header.len() as u8];
    bytes.extend_from_slice(&header);
    let err = read_all(&bytes).await.unwrap_err();
    assert_car_error(&err, 0, "unsupported CAR version 3");
}

fn ipld_map(key: &str, value: i128) -> ipld_core::ipld::Ipld {
    use ipld_core::ipld::Ipld;
    Ipld::Map([(key.to_string(), Ipld::Integer(value))].into())
}

/// A CAR of `blocks` (cid, data) pairs written as given, even if they do not match.
async fn car_of(blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut car = CarWriter::new(Vec::new(), &[blocks[0].0]).await.unwrap();
    for (cid, data) in blocks {
        car.write_block(cid, data).await.unwrap();
    }
    car.finish().await.unwrap()
}

fn raw_cid(data: &[u8]) -> Cid {
    *seedbank_blobstore::Blob::new(codec::RAW, data.to_vec()).cid()
}

#[tokio::test]
async fn block_that_does_not_match_its_cid_fails_at_its_section() {
    let good = (raw_cid(b"one"), b"one".to_vec());
    let bad = (raw_cid(b"two"), b"tw0".to_vec());
    let bytes = car_of(&[good.clone(), bad]).await;
    let (_, blocks) = read_all(&bytes).await.unwrap();

    let db = open().await;
    let err = car::import(&db, &bytes[..], ImportOptions::default())
        .await
        .unwrap_err();
    assert_car_error(&err, blocks[1].offset, "hash mismatch");
    assert!(
        db.store().has(&good.0).await.unwrap(),
        "the verified block before it stays"
    );
    assert!(!db.store().has(&blocks[1].cid).await.unwrap());
}

#[tokio::test]
async fn block_with_unsupported_multihash_fails_at_its_section() {
    let sha2_512 = Cid::new_v1(codec::RAW, Multihash::wrap(0x13, &[7u8; 64]).unwrap());
    let bytes = car_of(&[(sha2_512, b"x".to_vec())]).await;
    let db = open().await;
    let err = car::import(&db, &bytes[..], ImportOptions::default())
        .await
        .unwrap_err();
    let (_, blocks) = read_all(&bytes).await.unwrap();
    assert_car_error(&err, blocks[0].offset, "unsupported multihash");
}

#[tokio::test]
async fn section_longer_than_the_blob_limit_is_rejected_before_allocation() {
    let mut bytes = car_of(&[(raw_cid(b"a"), b"a".to_vec())]).await;
    let (_, blocks) = read_all(&bytes).await.unwrap();
    bytes.truncate(blocks[0].offset as usize);
    let at = bytes.len() as u64;
    let mut buf = unsigned_varint::encode::u64_buffer();
    bytes.extend_from_slice(unsigned_varint::encode::u64(u64::MAX >> 1, &mut buf));
    let mut reader = CarReader::new(&bytes[..], 1024).await.unwrap();
    let err = reader.next_block().await.unwrap_err();
    assert_car_error(&err, at, "exceeds the limit");
}

#[tokio::test]
async fn import_in_small_batches_stores_every_block_into_its_scope() {
    let db = open().await;
    let file = tokio::fs::File::open(crate::common::fixture("sample-v1.car"))
        .await
        .unwrap();
    let opts = ImportOptions {
        batch_blobs: 7,
        scopes: vec!["car:sample".into()],
        ..Default::default()
    };
    let report = car::import(&db, file, opts).await.unwrap();
    assert_eq!(report.blocks, 1049);
    let members = db.scope_members("car:sample").await.unwrap();
    let (_, blocks) = read_all(&fixture_bytes("sample-v1.car")).await.unwrap();
    assert_eq!(members, blocks.iter().map(|b| b.cid).collect::<Vec<_>>());
    let background = &db.store().stats().classes[2];
    assert_eq!(
        (background.name.as_str(), background.blobs),
        ("background", 1049)
    );
}

/// Truncating a valid CAR anywhere gives an error unless the cut falls between sections, and
/// flipping bytes never panics: every error names an offset inside the file.
#[tokio::test]
async fn truncated_or_mutated_cars_fail_cleanly_without_panicking() {
    let original = fixture_bytes("sample-v1.car");
    let (_, blocks) = read_all(&original).await.unwrap();
    let header_end = blocks[0].offset as usize;
    let boundaries: std::collections::HashSet<usize> = blocks
        .iter()
        .map(|b| b.offset as usize)
        .chain([original.len()])
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    for _ in 0..300 {
        let cut = rng.gen_range(0..original.len());
        let result = read_all(&original[..cut]).await;
        let clean = cut >= header_end && boundaries.contains(&cut);
        assert_eq!(result.is_ok(), clean, "truncated at {cut}: {result:?}");
        if let Err(Error::Car { offset, .. }) = result {
            assert!(offset as usize <= cut);
        }
    }
    for _ in 0..300 {
        let mut bytes = original[..rng.gen_range(1..4096)].to_vec();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.gen();
        }
        match read_all(&bytes).await {
            Ok(_) => {}
            Err(Error::Car { offset, .. }) => assert!(offset as usize <= bytes.len()),
            Err(other) => panic!("unexpected error kind: {other:?}"),
        }
    }
}

#[tokio::test]
async fn block_over_the_store_limit_fails_at_its_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = seedbank_blobstore::Config {
        max_blob_size: 16,
        ..Default::default()
    };
    let store = seedbank_blobstore::Store::open(dir.path().join("b.db"), config).unwrap();
    let db = seedbank_index::Index::open(store, Default::default())
        .await
        .unwrap();
    let small = (raw_cid(b"small"), b"small".to_vec());
    let big = (raw_cid(&[9u8; 17]), vec![9u8; 17]);
    let bytes = car_of(&[small.clone(), big]).await;
    let (_, blocks) = read_all(&bytes).await.unwrap();
    let err = car::import(&db, &bytes[..], ImportOptions::default())
        .await
        .unwrap_err();
    assert_car_error(&err, blocks[1].offset, "exceeds the store's limit");
    assert!(db.store().has(&small.0).await.unwrap());
}

/// A collection that runs while an import is paused between batches takes none of the
/// blocks the import already wrote, though nothing pins them yet (the import's temp pin),
/// and the imported DAG is complete afterwards.
#[tokio::test]
async fn a_collection_during_an_import_takes_none_of_its_blocks() {
    use tokio::io::AsyncWriteExt;

    let db = open().await;
    let bytes = fixture_bytes("sample-v1.car");
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let import = {
        let index = db.index.clone();
        let opts = ImportOptions {
            batch_blobs: 16,
            ..Default::default()
        };
        tokio::spawn(async move { car::import(&index, reader, opts).await })
    };
    let half = bytes.len() / 2;
    writer.write_all(&bytes[..half]).await.unwrap();
    // The import now waits for the rest, with its first batches committed.
    seedbank_blobstore::testing::wait_for_async("the import's first batches", || async {
        db.store().contents().await.unwrap().cids >= 64
    })
    .await;
    let report = db.gc(seedbank_index::GcOptions::default()).await.unwrap();
    assert_eq!(report.blobs_freed, 0, "{report:?}");
    writer.write_all(&bytes[half..]).await.unwrap();
    drop(writer);
    let imported = import.await.unwrap().unwrap();
    assert_eq!((imported.blocks, imported.missing), (1049, 0));
    assert!(db.missing(&cid(SAMPLE_V1_ROOT)).await.unwrap().is_empty());
}
