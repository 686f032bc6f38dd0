//! `Stats::publish` hands the store's figures to whatever `metrics` recorder is installed.

mod common;

use common::temp_store;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use seedbank_blobstore::{codec, Blob, Config};

#[tokio::test]
async fn published_stats_reach_the_installed_recorder() {
    let (store, _dir, _) = temp_store(Config::default());
    let blobs = (0..10u8)
        .map(|i| Blob::new(codec::RAW, vec![i; 100]))
        .collect();
    store.put_many(blobs, Default::default()).await.unwrap();
    let stats = store.stats();

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || stats.publish());
    let values: Vec<(String, Vec<String>, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()));
            (key.key().name().to_string(), labels.collect(), value)
        })
        .collect();
    let find = |name: &str, label: Option<&str>| {
        values
            .iter()
            .find(|(n, l, _)| n == name && label.is_none_or(|want| l.iter().any(|x| x == want)))
            .map(|(_, _, v)| v)
    };
    assert_eq!(
        find("seedbank_blobs_written_total", None),
        Some(&DebugValue::Counter(10))
    );
    assert_eq!(
        find("seedbank_sqlite_busy_total", None),
        Some(&DebugValue::Counter(0))
    );
    assert!(matches!(
        find("seedbank_commit_us", Some("quantile=0.99")),
        Some(DebugValue::Gauge(_))
    ));
    assert!(find("seedbank_pool_reads_total", Some("pool=info")).is_some());
    store.close().await.unwrap();
}
