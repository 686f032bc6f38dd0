//! Helpers for tests of this workspace (and of applications embedding it): bounded waits,
//! so a stuck lane or a missed condition fails a test with a message instead of hanging it.
//! Not part of the stable API.

use std::future::Future;
use std::time::Duration;

/// How long [`wait_for`] and [`bounded`] wait before failing the test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Awaits `f`; panics naming `what` if it takes longer than [`WAIT_LIMIT`].
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT_LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("waited {WAIT_LIMIT:?} for {what}"))
}

/// Polls `cond` every millisecond until it holds; panics naming `what` after
/// [`WAIT_LIMIT`].
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    bounded(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// Polls the async `cond` every millisecond until it holds; panics naming `what` after
/// [`WAIT_LIMIT`].
pub async fn wait_for_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    bounded(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}
