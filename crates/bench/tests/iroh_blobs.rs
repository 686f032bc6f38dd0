//! The `iroh-blobs` engine (feature `iroh-blobs`): it keeps every blob it is given across a
//! restart of its store, and `info` finds stored blobs and only those.
#![cfg(feature = "iroh-blobs")]

use cid::multihash::Multihash;
use cid::Cid;
use seedbank_bench::{self as bench, Engine, EngineKind, IrohBlobs, IrohStored, Options};
use seedbank_blobstore::{codec, Blob};

fn blob(i: u32) -> Blob {
    Blob::new(codec::RAW, i.to_le_bytes().repeat(64 + i as usize * 512))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_every_blob_and_finds_only_stored_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("iroh-blobs");
    let engine = IrohBlobs::open(&store).await.unwrap();
    // Inlined (≤ 16 KiB) and file-backed blobs, a duplicate among them.
    let blobs: Vec<Blob> = (0..40).map(blob).chain([blob(3)]).collect();
    engine
        .put(blobs[..20].to_vec(), Default::default())
        .await
        .unwrap();
    engine
        .put(blobs[20..].to_vec(), Default::default())
        .await
        .unwrap();
    for b in &blobs {
        assert!(engine.info(*b.cid()).await.unwrap(), "{}", b.cid());
    }
    let missing = blob(1000);
    assert!(!engine.info(*missing.cid()).await.unwrap());
    // Another hash than BLAKE3: iroh-blobs cannot address it.
    let sha2 = Cid::new_v1(codec::RAW, Multihash::wrap(0x12, &[7; 32]).unwrap());
    assert!(!engine.info(sha2).await.unwrap());
    assert_eq!(
        engine.touch_peer(5, Default::default()).await.unwrap(),
        bench::PeerWrite::Applied
    );
    let counters = engine.close().await.unwrap();
    assert_eq!(
        counters.transactions, 3,
        "one sync per put and per peer write"
    );
    assert_eq!(
        IrohBlobs::count_stored(&store).await.unwrap(),
        IrohStored {
            blobs: 40,
            peers: 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_run_stores_every_blob() {
    let options = Options {
        workloads: vec![bench::WorkloadKind::Small, bench::WorkloadKind::SyncBurst],
        compare: vec![EngineKind::IrohBlobs],
        progress: false,
        ..Options::quick()
    };
    let report = bench::run(&options).await.expect("benchmark runs");
    for w in &report.workloads {
        let e = w.engine(EngineKind::IrohBlobs).expect("iroh-blobs ran");
        let name = w.workload.name();
        for run in &e.runs {
            assert!(run.blobs > 0, "{name}");
            assert_eq!(
                run.blobs_stored, run.blobs_submitted,
                "{name}: stored vs submitted"
            );
            assert_eq!(run.info_errors, 0, "{name}: info errors");
            assert!(run.info_storm_us.count > 0, "{name}: info during the storm");
            assert!(run.transactions > 0, "{name}: syncs");
            let p = &run.peer_writes;
            if w.workload == bench::WorkloadKind::SyncBurst {
                assert!(p.applied > 0 && p.applied == p.issued, "{name}: {p:?}");
                let peers = options.burst.peers as u64;
                assert!((1..=peers).contains(&p.rows_stored), "{name}: {p:?}");
                assert!(run.interactive_put_us.count > 0, "{name}: interactive puts");
            }
        }
    }
    let text = bench::render(&report);
    assert!(text.contains("iroh-blobs") && text.contains("vs iroh-blobs"));
    serde_json::to_string(&report).expect("report serialises");
}
