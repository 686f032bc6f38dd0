//! What the admission tests share: request options, batch and per-source counters.

use seedbank_blobstore::{GroupStats, PoolKind, Priority, PutOptions, Store};

use crate::common::random_blobs;

pub use seedbank_blobstore::testing::{bounded, wait_for};

pub fn opts(p: Priority, source: &str) -> PutOptions {
    PutOptions::new(p, source)
}

/// Batches committed so far.
pub fn batches(store: &Store) -> u64 {
    store.stats().batches
}

/// The stats of one source (detailed stats are on by default).
pub fn source(store: &Store, name: &str) -> GroupStats {
    store
        .stats()
        .sources
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no stats for source {name}"))
}

/// The most batches any request of `name` waited, counted by the lane from the request's
/// admission (its entry into the scheduler) to its own batch, that batch not counted. This
/// is what the scheduler promises; the batches between a caller's call and its ack also
/// count the caller's own hashing and wake-ups, which a busy machine stretches.
pub fn most_batches_waited(store: &Store, name: &str) -> u64 {
    source(store, name).queue_wait_batches.max
}

/// Requests queued in `class`.
pub fn queued(store: &Store, class: Priority) -> u64 {
    store.stats().classes[class as usize].queued_requests
}

/// Queues `users` × `requests` interactive requests of 8 blobs (sources `{prefix}-{user}`),
/// for tests that hold the lane while they build a backlog. Blobs are made up front, so
/// the backlog does not depend on how fast producers run.
pub fn interactive_backlog(
    store: &Store,
    prefix: &str,
    users: u64,
    requests: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..users)
        .map(|u| {
            let store = store.clone();
            let o = opts(Priority::Interactive, &format!("{prefix}-{u}"));
            let seed = u + 1_000 * prefix.len() as u64;
            let blobs = random_blobs(seed << 16, requests * 8, 64);
            tokio::spawn(async move { store.put_many(blobs, o).await.map(drop).unwrap() })
        })
        .collect()
}

/// The most batches any request of sources `{prefix}-*` waited (see [`most_batches_waited`]).
pub fn most_batches_waited_by(store: &Store, prefix: &str) -> u64 {
    let prefix = format!("{prefix}-");
    store
        .stats()
        .sources
        .iter()
        .filter(|s| s.name.starts_with(&prefix))
        .map(|s| s.queue_wait_batches.max)
        .max()
        .unwrap_or_else(|| panic!("no stats for sources {prefix}*"))
}

/// Tables named `junk` (what the bad closures and ops create) the database holds.
pub async fn junk_tables(store: &Store) -> i64 {
    store
        .read(PoolKind::Info, |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'junk'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}
