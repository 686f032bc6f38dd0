//! Single-flight: concurrent calls for one key share one spawned run and its result.
//!
//! The run is a spawned task, so it finishes (and what it fetched is stored) even if every
//! caller stops waiting. Its entry is removed by the task itself when it ends — also when it
//! panics or is cancelled (a drop guard) — so a call made after a run ended starts a new
//! one.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;

use crate::error::{Error, Result};

type SharedRun<V> = Shared<BoxFuture<'static, Result<V>>>;

/// In-flight runs by key.
pub(crate) struct SingleFlight<K, V: Clone> {
    runs: Arc<Mutex<HashMap<K, SharedRun<V>>>>,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight {
            runs: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Joins the run for `key`, or spawns `start()` as a new one. Returns the shared result
    /// and whether this call started the run.
    pub fn run<F, Fut>(&self, key: &K, start: F) -> (SharedRun<V>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>> + Send + 'static,
    {
        let mut runs = self.runs.lock();
        if let Some(run) = runs.get(key) {
            return (run.clone(), false);
        }
        let work = start();
        let table = self.runs.clone();
        let owned_key = key.clone();
        let task = tokio::spawn(async move {
            let _leave = Leave {
                table,
                key: Some(owned_key),
            };
            work.await
        });
        let shared = async move {
            task.await
                .unwrap_or_else(|e| Err(Error::task_failed("discovery run", e)))
        }
        .boxed()
        .shared();
        runs.insert(key.clone(), shared.clone());
        (shared, true)
    }

    /// Runs in flight now.
    pub fn in_flight(&self) -> usize {
        self.runs.lock().len()
    }
}

/// Removes a run's entry when its task ends, however it ends.
struct Leave<K: Eq + Hash, V> {
    table: Arc<Mutex<HashMap<K, V>>>,
    key: Option<K>,
}

impl<K: Eq + Hash, V> Drop for Leave<K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.table.lock().remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_run_and_later_callers_start_another() {
        let flights: SingleFlight<&str, u32> = SingleFlight::default();
        let started = Arc::new(AtomicU32::new(0));
        let call = || {
            let started = started.clone();
            flights.run(&"k", move || async move {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                Ok(started.fetch_add(1, Ordering::SeqCst) + 1)
            })
        };
        let runs: Vec<_> = (0..10).map(|_| call()).collect();
        assert_eq!(runs.iter().filter(|(_, first)| *first).count(), 1);
        for (run, _) in runs {
            assert_eq!(run.await.unwrap(), 1);
        }
        assert_eq!(flights.in_flight(), 0);
        let (again, first) = call();
        assert!(first);
        assert_eq!(again.await.unwrap(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_panics_leaves_no_entry_behind() {
        let flights: SingleFlight<&str, u32> = SingleFlight::default();
        let (run, first) = flights.run(&"k", || async { panic!("run bug") });
        assert!(first);
        assert!(matches!(run.await, Err(Error::Aborted { .. })));
        assert_eq!(flights.in_flight(), 0);
        let (again, first) = flights.run(&"k", || async { Ok(7) });
        assert!(first, "a new run starts");
        assert_eq!(again.await.unwrap(), 7);
    }
}
