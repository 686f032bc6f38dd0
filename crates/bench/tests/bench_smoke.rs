//! The ingest benchmark on tiny workloads: every engine stores every blob it is given, and
//! seedbank never sees SQLITE_BUSY. Counts only, never timings.

use std::time::Duration;

use clap::Parser;
use seedbank_bench::{
    self as bench, BenchArgs, Burst, EngineKind, Options, SizeDist, WorkloadKind,
};

fn tiny(workload: WorkloadKind) -> Options {
    Options {
        workloads: vec![workload],
        producers: 8,
        rounds: Some(2),
        blobs_per_put: Some(4),
        sources: 4,
        info_readers: 2,
        idle: Duration::from_millis(20),
        interactive_interval: Duration::from_millis(5),
        import_blobs: 200,
        import_tasks: 2,
        import_chunk: 50,
        burst: Burst {
            peer_tasks: 4,
            peers: 3,
            peer_interval_us: 500,
        },
        repeats: 1,
        progress: false,
        ..Options::default()
    }
}

async fn every_engine_stores_every_blob(workload: WorkloadKind) {
    let report = bench::run(&tiny(workload)).await.expect("benchmark runs");
    let w = &report.workloads[0];
    let engines: Vec<EngineKind> = w.engines.iter().map(|e| e.engine).collect();
    let mut expected = EngineKind::defaults();
    if matches!(workload, WorkloadKind::Small | WorkloadKind::Mixed) {
        expected.push(EngineKind::SeedbankNoStats);
    }
    assert_eq!(engines, expected);
    for e in &w.engines {
        for run in &e.runs {
            let name = e.engine.name();
            // Counted in the database after the run, against the distinct CIDs submitted
            // (targets, workload, interactive).
            assert_eq!(
                run.blobs_stored, run.blobs_submitted,
                "{name}: stored vs submitted"
            );
            assert_eq!(run.info_errors, 0, "{name}: info errors");
            let p = &run.peer_writes;
            // The peer table, read back: every write reported applied is in it, no more.
            // (iroh-blobs keeps a tag per peer, which counts no connects.)
            if name != "iroh-blobs" {
                assert_eq!(p.writes_stored, p.applied, "{name}: peer writes stored");
            }
            if p.applied > 0 {
                let peers = tiny(workload).burst.peers as u64;
                assert!((1..=peers).contains(&p.rows_stored), "{name}: peer rows");
            }
            if e.engine != EngineKind::Naive {
                assert_eq!(run.busy_errors, 0, "{name}: SQLITE_BUSY");
                assert_eq!(p.dropped, 0, "{name}: dropped peer rows");
            }
            if e.engine.drive() == bench::Drive::Concurrent {
                assert!(
                    run.info_storm_us.count + run.info_idle_us.count > 0,
                    "{name}"
                );
                // The interactive user belongs to the sync-burst scenario only.
                let burst = workload == WorkloadKind::SyncBurst;
                assert_eq!(
                    run.interactive_put_us.count > 0,
                    burst,
                    "{name}: interactive puts"
                );
            }
        }
    }
    let burst = workload == WorkloadKind::SyncBurst;
    let seedbank = &w.engine(EngineKind::Seedbank).unwrap().median;
    assert_eq!(seedbank.peer_writes.applied > 0, burst);
    assert_eq!(seedbank.jain.is_some(), !burst);
    assert!(!seedbank.timeline.is_empty());
    // Every figure serialises, and the plot draws.
    serde_json::to_string(&report).expect("report serialises");
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("plot.svg");
    bench::write_svg(&report, &svg).expect("plot draws");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_workload_stores_every_blob_in_every_engine() {
    every_engine_stores_every_blob(WorkloadKind::Small).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workload_stores_every_blob_in_every_engine() {
    every_engine_stores_every_blob(WorkloadKind::Mixed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_workload_stores_every_blob_in_every_engine() {
    every_engine_stores_every_blob(WorkloadKind::Large).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_burst_stores_every_blob_and_accounts_for_every_peer_row() {
    every_engine_stores_every_blob(WorkloadKind::SyncBurst).await;
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

#[test]
fn a_single_storm_of_small_puts_is_expressible() {
    let cli = Cli::parse_from([
        "bench",
        "--workload",
        "small",
        "--producers",
        "256",
        "--rounds",
        "10",
        "--blobs-per-put",
        "1",
        "--size",
        "1024",
        "--info-readers",
        "16",
    ]);
    let options = cli.args.options();
    assert_eq!(options.workloads, vec![WorkloadKind::Small]);
    assert_eq!(options.info_readers, 16);
    let spec = options.spec(WorkloadKind::Small);
    assert_eq!(spec.total_blobs(), 256 * 10);
    assert_eq!(spec.sizes, SizeDist::Fixed(1024));
}

#[test]
fn quick_and_default_runs_cover_every_workload() {
    for args in [&["bench", "--quick"][..], &["bench"][..]] {
        let options = Cli::parse_from(args).args.options();
        assert_eq!(options.workloads, WorkloadKind::ALL.to_vec());
        assert_eq!(options.repeats, if args.len() == 2 { 1 } else { 3 });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_bounded_keeps_its_wal_under_the_cap_plus_one_transaction() {
    use bench::{Engine, EngineSettings, Limit};
    use seedbank_blobstore::{codec, Blob};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounded.db");
    bench::prepare_database(&path).await.unwrap();
    let settings = EngineSettings {
        bounded_wal_cap: 256 * 1024,
        bounded_page_size: Some(8192),
        ..EngineSettings::default()
    };
    let engine = Limit::open_bounded(&path, &settings).unwrap();
    let wal = dir.path().join("bounded.db-wal");
    let (mut peak, per_txn) = (0, 64 * 1024);
    for t in 0..64u32 {
        let blobs: Vec<Blob> = (0..16u32)
            .map(|i| {
                Blob::new(
                    codec::RAW,
                    [t.to_le_bytes(), i.to_le_bytes()].concat().repeat(512),
                )
            })
            .collect();
        engine.put(blobs, Default::default()).await.unwrap();
        peak = peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    let counters = engine.close().await.unwrap();
    assert_eq!(counters.transactions, 64);
    // 4 MiB went through a 256 KiB cap: checkpoints ran, and the WAL never held more than
    // the cap plus one transaction's pages (with page headers and b-tree pages).
    assert!(
        peak > 0 && peak <= 256 * 1024 + 2 * per_txn,
        "WAL peak {peak}"
    );
    assert_eq!(bench::count_stored(&path).unwrap(), 64 * 16);
    let conn = seedbank_blobstore::rusqlite::Connection::open(&path).unwrap();
    let page_size: u32 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 8192);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_workloads_store_every_blob_in_every_engine() {
    every_engine_stores_every_blob(WorkloadKind::Sustained).await;
    every_engine_stores_every_blob(WorkloadKind::SustainedMixed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_reports_every_step_of_both_engines() {
    let options = Options {
        workloads: Vec::new(),
        scale: true,
        progress: false,
        ..Options::quick()
    };
    let report = bench::run(&options).await.expect("benchmark runs");
    let scale = report.scale.as_ref().expect("scale ran");
    let spec = scale.spec;
    assert_eq!(scale.steps.len(), 2 * spec.steps);
    for (i, st) in scale.steps.iter().enumerate() {
        let step = (i % spec.steps) as u64 + 1;
        let per_producer = spec.step_blobs.div_ceil(spec.producers) as u64;
        assert_eq!(st.blobs_total, step * per_producer * spec.producers as u64);
        // The file holds every blob stored so far: at least its payload.
        assert!(st.file_bytes_per_blob >= spec.blob_size as f64, "{st:?}");
        if step > 1 {
            assert!(
                st.info_us.count > 0,
                "readers ran during step {step}: {st:?}"
            );
        }
    }
    assert!(bench::render_footer(&report).contains("## scale"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_adds_imports_and_reads_back_both_inputs_every_repetition() {
    use bench::FilesCase;

    let options = Options {
        workloads: Vec::new(),
        files: true,
        files_size: Some(3 << 20 | 12_345),
        files_count: Some(40),
        repeats: 2,
        progress: false,
        ..Options::quick()
    };
    let report = bench::run(&options).await.expect("benchmark runs");
    let files = report.files.as_ref().expect("files ran");
    assert_eq!(files.runs.len(), 4);
    for case in [FilesCase::Large, FilesCase::Small] {
        let runs = files.runs_of(case);
        assert_eq!(runs.len(), 2);
        let (payload, count) = match case {
            FilesCase::Large => (3 << 20 | 12_345, 1),
            FilesCase::Small => (files.small_bytes, 40),
        };
        for r in &runs {
            // The same DAG every time; add, import and cat all moved every byte.
            assert_eq!(r.root, runs[0].root);
            for phase in [&r.add, &r.import, &r.cat] {
                assert_eq!((phase.bytes, phase.files), (payload, count), "{r:?}");
                assert!(phase.mb_per_sec > 0.0);
            }
            assert!(r.blocks > count && r.car_bytes > payload, "{r:?}");
            assert!(!r.load_average.is_empty());
        }
        // The CAR is written once, by the first repetition's add.
        assert!(runs[0].export.is_some() && runs[1].export.is_none());
    }
    assert!(report
        .targets
        .iter()
        .any(|t| t.figure == "add vs import of its CAR"));
    let footer = bench::render_footer(&report);
    assert!(
        footer.contains("## files") && footer.contains("add / import"),
        "{footer}"
    );
}
