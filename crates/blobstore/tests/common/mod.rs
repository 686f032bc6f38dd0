//! Shared setup for integration tests: temporary stores and blob generators.
#![allow(dead_code)]

use rand::{rngs::StdRng, Rng, SeedableRng};
use seedbank_blobstore::{codec, Blob, Config, Store};
use tempfile::TempDir;

/// A store in a fresh temporary directory (kept alive by the returned `TempDir`).
pub fn temp_store(config: Config) -> (Store, TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("seedbank.db");
    let store = Store::open(&path, config).expect("open store");
    (store, dir, path)
}

/// `n` distinct random raw blobs of `size` bytes, reproducible from `seed`.
pub fn random_blobs(seed: u64, n: usize, size: usize) -> Vec<Blob> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut data = vec![0u8; size];
            rng.fill(&mut data[..]);
            Blob::new(codec::RAW, data)
        })
        .collect()
}

/// Sizes at each boundary the store cares about.
pub const INTERESTING_SIZES: &[usize] = &[0, 1, 1023, 1024, 4096, 65536, 2 * 1024 * 1024];

/// Holds the writer lane inside an app write until the returned sender is used (or
/// dropped), so tests can queue work behind it deterministically.
pub async fn block_lane(
    store: &Store,
) -> (
    tokio::task::JoinHandle<seedbank_blobstore::Result<()>>,
    std::sync::mpsc::Sender<()>,
) {
    use seedbank_blobstore::{Priority, PutOptions};
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let store = store.clone();
    let handle = tokio::spawn(async move {
        store
            .write(
                PutOptions::new(Priority::Interactive, "blocker"),
                move |_conn| {
                    let _ = started.send(());
                    let _ = wait.recv();
                    Ok(())
                },
            )
            .await
    });
    running.await.expect("the lane runs the blocker");
    (handle, release)
}

/// Jain's fairness index of per-party throughputs: 1.0 is perfectly equal.
pub fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sq: f64 = xs.iter().map(|x| x * x).sum();
    sum * sum / (xs.len() as f64 * sq)
}
