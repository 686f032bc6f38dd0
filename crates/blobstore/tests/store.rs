//! Behaviour of the blob store core: addressing, reads, bad input, durability, close.

mod common;

use bytes::Bytes;
use cid::Cid;
use common::{random_blobs, temp_store, INTERESTING_SIZES};
use multihash::Multihash;
use seedbank_blobstore::{codec, Blob, Config, Error, PoolKind, PutOptions, Store};

fn cid_with(code: u64, digest: &[u8], codec: u64) -> Cid {
    Cid::new_v1(codec, Multihash::wrap(code, digest).unwrap())
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn blake2b256(data: &[u8]) -> Vec<u8> {
    use blake2::Digest;
    blake2::Blake2b::<blake2::digest::consts::U32>::digest(data).to_vec()
}

#[tokio::test]
async fn every_supported_hash_round_trips() {
    let (store, _dir, _) = temp_store(Config::default());
    let data = b"seedbank round trip".to_vec();
    let cids = vec![
        *Blob::new(codec::RAW, data.clone()).cid(),
        cid_with(0x12, &sha256(&data), codec::RAW),
        cid_with(0xb220, &blake2b256(&data), codec::DAG_CBOR),
        Cid::new_v0(Multihash::wrap(0x12, &sha256(&data)).unwrap()).unwrap(),
    ];
    for cid in &cids {
        let blob = Blob::with_cid(*cid, data.clone()).expect("verifies");
        assert_eq!(store.put(blob).await.unwrap(), *cid);
        assert_eq!(
            store.get(cid).await.unwrap(),
            Some(Bytes::from(data.clone())),
            "{cid}"
        );
        let info = store.info(cid).await.unwrap().expect("info present");
        assert_eq!(
            (info.cid, info.size, info.codec),
            (*cid, data.len() as u64, cid.codec())
        );
    }
    assert_eq!(store.has_many(&cids).await.unwrap(), vec![true; 4]);
    // The same bytes under several codecs and hashes: stored once per multihash.
    let stats = store.stats();
    assert_eq!(stats.blobs_written, 4);
    store.close().await.unwrap();
}

#[tokio::test]
async fn identity_cid_returns_its_inline_data() {
    let (store, _dir, _) = temp_store(Config::default());
    let data = b"tiny".to_vec();
    let cid = cid_with(0x00, &data, codec::RAW);
    store
        .put(Blob::with_cid(cid, data.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(store.get(&cid).await.unwrap().as_deref(), Some(&data[..]));
    assert!(matches!(
        Blob::with_cid(cid, b"other".to_vec()),
        Err(Error::HashMismatch { .. })
    ));
}

#[tokio::test]
async fn has_and_info_answer_for_absent_blobs() {
    let (store, _dir, _) = temp_store(Config::default());
    let present = store
        .put(Blob::new(codec::RAW, &b"here"[..]))
        .await
        .unwrap();
    let absent = *Blob::new(codec::RAW, &b"not here"[..]).cid();
    assert_eq!(
        store.has_many(&[present, absent]).await.unwrap(),
        vec![true, false]
    );
    assert!(store.info(&absent).await.unwrap().is_none());
    assert!(store.get(&absent).await.unwrap().is_none());
    // Same multihash, other codec: a different CID, not stored as such.
    let other_codec = Cid::new_v1(codec::DAG_CBOR, *present.hash());
    assert!(!store.has(&other_codec).await.unwrap());
}

#[tokio::test]
async fn wrong_bytes_for_a_cid_are_rejected_and_nothing_is_written() {
    let (store, _dir, _) = temp_store(Config::default());
    let cid = *Blob::new(codec::RAW, &b"right"[..]).cid();
    assert!(matches!(
        Blob::with_cid(cid, &b"wrong"[..]),
        Err(Error::HashMismatch { .. })
    ));
    let sha_cid = cid_with(0x12, &sha256(b"right"), codec::RAW);
    assert!(matches!(
        Blob::with_cid(sha_cid, &b"wrong"[..]),
        Err(Error::HashMismatch { .. })
    ));
    assert_eq!(store.stats().blobs_written, 0);
    assert!(!store.has(&cid).await.unwrap());
}

#[tokio::test]
async fn unsupported_multihash_is_rejected() {
    let cid = cid_with(0x13, &[7u8; 64], codec::RAW);
    assert!(matches!(
        Blob::with_cid(cid, &b"x"[..]),
        Err(Error::UnsupportedHash { code: 0x13 })
    ));
    let (store, _dir, _) = temp_store(Config::default());
    assert!(matches!(
        store.get(&cid).await,
        Err(Error::UnsupportedHash { .. })
    ));
}

#[tokio::test]
async fn oversize_blob_is_rejected_and_nothing_of_its_batch_is_written() {
    let config = Config {
        max_blob_size: 1024,
        ..Config::default()
    };
    let (store, _dir, _) = temp_store(config);
    let ok = Blob::new(codec::RAW, vec![1u8; 1024]);
    let big = Blob::new(codec::RAW, vec![2u8; 1025]);
    let err = store
        .put_many(vec![ok.clone(), big], PutOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                size: 1025,
                max: 1024
            }
        ),
        "{err}"
    );
    assert!(!store.has(ok.cid()).await.unwrap());
    store.put(ok.clone()).await.unwrap();
    assert!(store.has(ok.cid()).await.unwrap());
}

#[tokio::test]
async fn every_interesting_size_round_trips_including_empty() {
    let (store, _dir, _) = temp_store(Config::default());
    for &size in INTERESTING_SIZES {
        let blob = random_blobs(size as u64, 1, size).pop().unwrap();
        let cid = store.put(blob.clone()).await.unwrap();
        assert_eq!(
            store.get(&cid).await.unwrap().as_ref(),
            Some(blob.data()),
            "size {size}"
        );
        assert_eq!(store.info(&cid).await.unwrap().unwrap().size, size as u64);
    }
}

#[tokio::test]
async fn put_many_returns_cids_in_input_order_across_requests() {
    let config = Config {
        request_max_blobs: 7,
        ..Config::default()
    };
    let (store, _dir, _) = temp_store(config);
    let blobs = random_blobs(3, 100, 100);
    let expected: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    assert_eq!(
        store.put_many(blobs, PutOptions::default()).await.unwrap(),
        expected
    );
    assert_eq!(store.has_many(&expected).await.unwrap(), vec![true; 100]);
}

#[tokio::test]
async fn concurrent_puts_of_the_same_blob_are_written_once() {
    let (store, _dir, _) = temp_store(Config::default());
    let blob = Blob::new(codec::RAW, vec![9u8; 4096]);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (store, blob) = (store.clone(), blob.clone());
            tokio::spawn(async move { store.put(blob).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), *blob.cid());
    }
    let stats = store.stats();
    assert_eq!(stats.blobs_written, 32);
    assert_eq!(stats.dedup_hits, 31);
    let report = store.verify().await.unwrap();
    assert_eq!(report.blobs_checked, 1);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test]
async fn ack_means_committed_a_second_open_sees_the_blob() {
    let (store, _dir, path) = temp_store(Config::default());
    let cid = store
        .put(Blob::new(codec::RAW, &b"durable"[..]))
        .await
        .unwrap();
    // A second, independent (read-only) store on the same file, while the first is open.
    let other = Store::open_read_only(&path, Config::default()).unwrap();
    assert_eq!(
        other.get(&cid).await.unwrap().as_deref(),
        Some(&b"durable"[..])
    );
    other.close().await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn one_owner_per_file_a_second_writer_is_refused_until_close() {
    let (store, _dir, path) = temp_store(Config::default());
    let cid = store
        .put(Blob::new(codec::RAW, &b"first"[..]))
        .await
        .unwrap();
    match Store::open(&path, Config::default()) {
        Err(Error::Locked { path: locked }) => assert_eq!(locked, path),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The refused open changed nothing: the owner keeps writing.
    store
        .put(Blob::new(codec::RAW, &b"second"[..]))
        .await
        .unwrap();
    store.close().await.unwrap();
    let reopened = Store::open(&path, Config::default()).unwrap();
    assert!(reopened.has(&cid).await.unwrap());
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn a_read_only_store_refuses_writes_and_never_creates_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent/x.db");
    assert!(matches!(
        Store::open_read_only(&missing, Config::default()),
        Err(Error::NoDatabase { .. })
    ));
    assert!(!dir.path().join("absent").exists());

    let (store, _dir, path) = temp_store(Config::default());
    let cid = store
        .put(Blob::new(codec::RAW, &b"kept"[..]))
        .await
        .unwrap();
    store.close().await.unwrap();
    let ro = Store::open_read_only(&path, Config::default()).unwrap();
    assert!(ro.is_read_only());
    assert!(matches!(
        ro.put(Blob::new(codec::RAW, &b"new"[..])).await,
        Err(Error::ReadOnly)
    ));
    assert!(matches!(
        ro.write(PutOptions::default(), |_| Ok(())).await,
        Err(Error::ReadOnly)
    ));
    assert_eq!(ro.get(&cid).await.unwrap().as_deref(), Some(&b"kept"[..]));
    assert_eq!(ro.contents().await.unwrap().cids, 1);
    ro.close().await.unwrap();
}

#[tokio::test]
async fn a_read_left_open_by_a_closure_is_rolled_back_before_reuse() {
    let config = Config {
        data_pool_size: 1,
        ..Config::default()
    };
    let (store, _dir, _path) = temp_store(config);
    store
        .read(PoolKind::Data, |conn| {
            conn.execute_batch("BEGIN; SELECT count(*) FROM blobs;")?;
            Ok(())
        })
        .await
        .unwrap();
    let autocommit = store
        .read(PoolKind::Data, |conn| Ok(conn.is_autocommit()))
        .await
        .unwrap();
    assert!(
        autocommit,
        "the pool handed out a connection inside a transaction"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn close_drains_queued_writes_and_later_calls_get_closed() {
    let (store, _dir, path) = temp_store(Config::default());
    let blobs = random_blobs(11, 2000, 512);
    let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.put_many(blobs, PutOptions::default()).await })
    };
    tokio::task::yield_now().await;
    store.close().await.unwrap();
    // Whatever was acked before close is durable; anything refused got `Closed`.
    match writer.await.unwrap() {
        Ok(got) => assert_eq!(got, cids),
        Err(e) => assert!(matches!(e, Error::Closed), "{e}"),
    }
    assert!(matches!(
        store.put(Blob::new(codec::RAW, &b"late"[..])).await,
        Err(Error::Closed)
    ));
    assert!(matches!(store.get(&cids[0]).await, Err(Error::Closed)));
    assert!(matches!(store.info(&cids[0]).await, Err(Error::Closed)));
    store.close().await.unwrap(); // idempotent
    assert_eq!(store.stats().sqlite_busy, 0);
    // close ran a TRUNCATE checkpoint.
    let wal = std::fs::metadata(path.with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0);
}

#[tokio::test]
async fn close_acks_a_queued_put_only_after_its_commit() {
    let (store, _dir, path) = temp_store(Config::default());
    let blobs = random_blobs(12, 500, 1024);
    let cids: Vec<Cid> = blobs.iter().map(|b| *b.cid()).collect();
    let put = {
        let store = store.clone();
        tokio::spawn(async move { store.put_many(blobs, PutOptions::default()).await })
    };
    // Let the put be admitted, then close while it may still be queued.
    while store.stats().requests_acked == 0 && !put.is_finished() {
        tokio::task::yield_now().await;
    }
    store.close().await.unwrap();
    let acked = put.await.unwrap().is_ok();
    let reopened = Store::open(&path, Config::default()).unwrap();
    let present = reopened.has_many(&cids).await.unwrap();
    if acked {
        assert!(
            present.iter().all(|&p| p),
            "an acked put must be fully durable"
        );
    }
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn stats_render_as_text_and_json() {
    let (store, _dir, _) = temp_store(Config::default());
    store.put(Blob::new(codec::RAW, &b"x"[..])).await.unwrap();
    let stats = store.stats();
    let text = stats.to_string();
    assert!(text.contains("SQLITE_BUSY"));
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["blobs_written"], 1);
    assert_eq!(json["sqlite_busy"], 0);
}

#[tokio::test]
async fn get_many_answers_each_cid_in_order() {
    let (store, _dir, _) = temp_store(Config::default());
    let present = store
        .put(Blob::new(codec::RAW, &b"here"[..]))
        .await
        .unwrap();
    let absent = *Blob::new(codec::RAW, &b"absent"[..]).cid();
    let unsupported = cid_with(0x13, &[7u8; 64], codec::RAW);
    let got = store
        .get_many(&[absent, present, unsupported])
        .await
        .unwrap();
    assert!(matches!(got[0], Ok(None)));
    assert_eq!(got[1].as_ref().unwrap().as_deref(), Some(&b"here"[..]));
    assert!(matches!(got[2], Err(Error::UnsupportedHash { code: 0x13 })));
}

#[tokio::test]
async fn an_empty_put_many_is_a_no_op() {
    let (store, _dir, _) = temp_store(Config::default());
    assert!(store
        .put_many(Vec::new(), PutOptions::default())
        .await
        .unwrap()
        .is_empty());
    assert!(store.has_many(&[]).await.unwrap().is_empty());
    assert_eq!(store.stats().batches, 0);
}

#[test]
fn opening_a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-db");
    std::fs::write(&path, vec![0xA5u8; 8192]).unwrap();
    let err = Store::open(&path, Config::default()).unwrap_err();
    assert!(matches!(err, Error::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[tokio::test]
async fn a_coalesce_key_never_drops_blobs_of_a_put_many() {
    let config = Config {
        request_max_blobs: 2,
        ..Config::default()
    };
    let (store, _dir, _) = temp_store(config);
    let blobs = random_blobs(50, 10, 64);
    let opts = PutOptions::default().coalesce("same-key");
    let cids = store.put_many(blobs, opts).await.unwrap();
    assert_eq!(store.has_many(&cids).await.unwrap(), vec![true; 10]);
    assert_eq!(store.stats().coalesced, 0);
}
