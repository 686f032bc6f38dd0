//! Behaviour of the blob store core: addressing, reads, bad input, durability, close.

use crate::common::{random_blobs, temp_store, INTERESTING_SIZES};
use bytes::Bytes;
use cid::Cid;
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

/// Bounds a wait, so a stuck lane or close fails the test instead of hanging it.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("waited 30 s for {what}"))
}

/// Reopens the store at `path` and checks that every blob in `acked` is there with its bytes
/// (read back verified against its CID), that nothing in `refused` is, and that the whole
/// database verifies. Returns how many blobs it holds.
async fn assert_durable(path: &std::path::Path, acked: &[Blob], refused: &[Blob]) -> u64 {
    let store = Store::open(path, Config::default()).unwrap();
    let cids: Vec<Cid> = acked.iter().map(|b| *b.cid()).collect();
    let got = bounded("reading back", store.get_many(&cids))
        .await
        .unwrap();
    for (blob, got) in acked.iter().zip(got) {
        let got = got.unwrap_or_else(|e| panic!("{}: {e}", blob.cid()));
        assert_eq!(
            got.as_ref(),
            Some(blob.data()),
            "acknowledged blob {} lost",
            blob.cid()
        );
    }
    let refused: Vec<Cid> = refused.iter().map(|b| *b.cid()).collect();
    let stored = bounded("has_many", store.has_many(&refused)).await.unwrap();
    assert!(
        stored.iter().all(|s| !s),
        "a put refused with Closed was stored"
    );
    let report = bounded("verify", store.verify()).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    bounded("close", store.close()).await.unwrap();
    report.blobs_checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_drains_queued_writes_and_later_calls_get_closed() {
    let (store, _dir, path) = temp_store(Config::default());
    // Hold the lane so that 100 puts are certainly queued when close starts.
    let (blocker, release) = bounded(
        "the lane to run the blocker",
        crate::common::block_lane(&store),
    )
    .await;
    let blobs = random_blobs(11, 100, 512);
    let puts: Vec<_> = blobs
        .iter()
        .cloned()
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { store.put(b).await })
        })
        .collect();
    bounded("100 queued puts", async {
        while store.stats().classes[1].queued_requests < 100 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await;
    let closing = {
        let store = store.clone();
        tokio::spawn(async move { store.close().await })
    };
    bounded("close to start", async {
        while !store.is_closed() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // Closing: new work is refused at once, while the queued work is still waiting.
    let late = Blob::new(codec::RAW, &b"late"[..]);
    let r = bounded("a late put", store.put(late.clone())).await;
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    let r = bounded(
        "a late write",
        store.write(PutOptions::default(), |_| Ok(())),
    )
    .await;
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    assert!(matches!(
        store.get(blobs[0].cid()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        store.info(blobs[0].cid()).await,
        Err(Error::Closed)
    ));
    assert_eq!(
        store.stats().classes[1].queued_requests,
        100,
        "queued work kept"
    );
    // Let the lane go: close drains every queued put, and each is acknowledged.
    release.send(()).unwrap();
    bounded("the blocker", blocker).await.unwrap().unwrap();
    bounded("close", closing).await.unwrap().unwrap();
    for (p, blob) in puts.into_iter().zip(&blobs) {
        let r = bounded("a queued put", p).await.unwrap();
        assert_eq!(r.unwrap(), *blob.cid(), "a put queued before close");
    }
    assert!(matches!(store.put(late.clone()).await, Err(Error::Closed)));
    bounded("close again", store.close()).await.unwrap(); // idempotent
    assert_eq!(store.stats().sqlite_busy, 0);
    // close ran a TRUNCATE checkpoint.
    let wal = std::fs::metadata(path.with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0);
    drop(store);
    assert_eq!(assert_durable(&path, &blobs, &[late]).await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_racing_puts_loses_nothing_it_acknowledged() {
    let mut queued_at_close = Vec::new();
    for round in 0..4u64 {
        queued_at_close.push(close_racing_puts(round).await);
    }
    // The race was real: some rounds closed with puts still queued (which close drained).
    assert!(
        queued_at_close.iter().any(|q| *q > 0),
        "requests queued at close, per round: {queued_at_close:?}"
    );
}

/// One round of [`close_racing_puts_loses_nothing_it_acknowledged`]: 32 producers put until
/// refused while the store closes under them. Returns the requests queued as close began.
async fn close_racing_puts(round: u64) -> u64 {
    let (store, _dir, path) = temp_store(Config::default());
    // Producers put blobs one by one, with a put_many now and then, until refused.
    let producers: Vec<_> = (0..32u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let (mut acked, mut refused) = (Vec::new(), Vec::new());
                for n in 0u64.. {
                    let seed = round << 48 | i << 32 | n;
                    if n % 4 == 3 {
                        // A put_many: acknowledged whole, or refused (some requests of it
                        // may be stored: each request is committed whole or not at all).
                        let blobs = random_blobs(seed, 200, 700);
                        match store.put_many(blobs.clone(), PutOptions::default()).await {
                            Ok(_) => acked.extend(blobs),
                            Err(Error::Closed) => break,
                            Err(e) => panic!("put_many: {e}"),
                        }
                    } else {
                        let blob = random_blobs(seed, 1, 1024).remove(0);
                        match store.put(blob.clone()).await {
                            Ok(_) => acked.push(blob),
                            Err(Error::Closed) => {
                                refused.push(blob);
                                break;
                            }
                            Err(e) => panic!("put: {e}"),
                        }
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    bounded("the producers to get going", async {
        while store.stats().requests_acked < 200 + 100 * round {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await;
    let queued = store.stats().classes[1].queued_requests;
    bounded("close", store.close()).await.unwrap();
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for p in producers {
        // Every producer ends with `Closed`; none is left waiting.
        let (a, r) = bounded("a producer", p).await.unwrap();
        acked.extend(a);
        refused.extend(r);
    }
    assert!(acked.len() >= 200, "{} acknowledged", acked.len());
    assert!(matches!(
        store.put(Blob::new(codec::RAW, &b"after"[..])).await,
        Err(Error::Closed)
    ));
    drop(store);
    // Everything acknowledged is stored and verifies; no single put refused with `Closed`
    // was stored.
    let stored = assert_durable(&path, &acked, &refused).await;
    assert!(stored >= acked.len() as u64);
    queued
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

/// A backup never touches a file it did not create: an existing destination is refused and
/// left as it was, a destination it cannot create leaves nothing behind, and a good copy
/// opens with every blob.
#[tokio::test]
async fn backup_creates_its_destination_exclusively() {
    let (store, dir, _) = temp_store(Config::default());
    let cids = store
        .put_many(random_blobs(3, 20, 512), PutOptions::default())
        .await
        .unwrap();
    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, b"someone else's file").unwrap();
    let err = store.backup(&taken).await.unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::AlreadyExists),
        "{err}"
    );
    assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's file");
    let nowhere = dir.path().join("missing-dir").join("copy.db");
    assert!(store.backup(&nowhere).await.is_err());
    assert!(!nowhere.exists());
    let copy = dir.path().join("copy.db");
    let report = store.backup(&copy).await.unwrap();
    assert_eq!(report.cids, 20);
    let reopened = Store::open_read_only(&copy, Config::default()).unwrap();
    assert!(reopened.has_many(&cids).await.unwrap().iter().all(|&h| h));
}

/// The index JOINs its own rows on stored CIDs through `rows::META_TABLE`: the name, the
/// columns such a JOIN uses and the key it joins on are pinned here, so a schema change
/// that breaks them fails in this crate first.
#[tokio::test]
async fn the_metadata_table_named_for_joins_keeps_its_columns_and_key() {
    use seedbank_blobstore::rows::META_TABLE;
    let (store, _dir, path) = temp_store(Config::default());
    let blob = Blob::new(codec::RAW, &b"joined"[..]);
    store.put(blob.clone()).await.unwrap();
    store.close().await.unwrap();
    let conn = seedbank_blobstore::rusqlite::Connection::open(&path).unwrap();
    let mut columns: Vec<(String, i64)> = conn
        .prepare(&format!(
            "SELECT name, pk FROM pragma_table_info('{META_TABLE}')"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    columns.retain(|(name, _)| ["mh", "codec", "size", "inserted_at"].contains(&name.as_str()));
    columns.sort();
    assert_eq!(
        columns,
        [
            ("codec".to_string(), 2),
            ("inserted_at".to_string(), 0),
            ("mh".to_string(), 1),
            ("size".to_string(), 0)
        ]
    );
    let size: i64 = conn
        .query_row(
            &format!("SELECT b.size FROM {META_TABLE} b WHERE b.mh = ?1 AND b.codec = ?2"),
            (blob.cid().hash().to_bytes(), codec::RAW as i64),
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(size, 6);
}

#[tokio::test]
async fn info_many_and_get_any_codec_answer_each_cid_in_order() {
    let (store, _dir, _) = temp_store(Config::default());
    let raw = Blob::new(codec::RAW, &b"one multihash"[..]);
    let absent = Blob::new(codec::RAW, &b"absent"[..]);
    store.put(raw.clone()).await.unwrap();
    let as_cbor = Cid::new_v1(codec::DAG_CBOR, *raw.cid().hash());

    let infos = store
        .info_many(&[*raw.cid(), as_cbor, *absent.cid()])
        .await
        .unwrap();
    assert_eq!(infos[0].as_ref().map(|i| i.size), Some(13));
    assert!(infos[1].is_none() && infos[2].is_none());

    let found = store
        .get_any_codec(&[as_cbor, *absent.cid()])
        .await
        .unwrap();
    let blob = found[0]
        .as_ref()
        .unwrap()
        .as_ref()
        .expect("bytes under raw");
    assert_eq!((blob.cid(), blob.data()), (&as_cbor, raw.data()));
    assert!(matches!(found[1], Ok(None)));
    assert!(!store.has(&as_cbor).await.unwrap(), "a read stores nothing");
    store.close().await.unwrap();
}
