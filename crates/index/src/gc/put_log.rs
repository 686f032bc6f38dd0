//! The put log: keys of blobs put while a collection is pending or running.
//!
//! A collection promises that a blob put after it started is not deleted by it. New blobs
//! committed after the mark's snapshot are no candidates, but two kinds of put are
//! invisible to the catch-up's "indexed since the mark" step: a re-put of a stored blob
//! (it keeps its `blob_index` row and `seq`) and a put committed between the collection's
//! start and its mark snapshot (numbered before the mark). So while any collection is
//! pending or running, every put records its key here from inside its own lane
//! transaction (the index op's `apply`), and each sweep batch takes what was recorded since
//! its last look, inside *its* lane transaction, before deleting. The lane runs one
//! transaction at a time, so an acknowledged put is seen by every later batch.
//!
//! Each collection reads the log from the moment it was started (a [`Watch`]), so a
//! collection queued behind another still sees the puts made while it waited. Keys every
//! watch has read are dropped; with no watch, nothing is recorded. Memory: one key per put
//! during a collection, the same order as the mark itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::pin::Key;

/// Keys put while collections watch (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct PutLog {
    inner: Mutex<Log>,
    /// Open watches, read without the lock: a put with no collection running (the common
    /// case, on the lane's hot path) costs one atomic load.
    watching: AtomicUsize,
}

#[derive(Debug, Default)]
struct Log {
    keys: VecDeque<Key>,
    /// Position of `keys[0]` in the log since it was created.
    base: u64,
    /// Per open watch: its id and the position it has read up to.
    watches: Vec<(u64, u64)>,
    next_id: u64,
}

impl Log {
    fn end(&self) -> u64 {
        self.base + self.keys.len() as u64
    }

    /// Drops what every watch has read (everything, with no watch).
    fn prune(&mut self) {
        let keep_from = self.watches.iter().map(|w| w.1).min().unwrap_or(self.end());
        while self.base < keep_from && self.keys.pop_front().is_some() {
            self.base += 1;
        }
    }
}

impl PutLog {
    /// Records a put of `(mh, codec)` if a collection watches. Called on the lane.
    pub(crate) fn record(&self, mh: &[u8], codec: i64) {
        if self.watching.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut log = self.inner.lock();
        if !log.watches.is_empty() {
            log.keys.push_back((mh.to_vec(), codec));
        }
    }

    /// Starts a watch: puts recorded from now on are returned by [`Watch::take`] until the
    /// watch is dropped.
    pub(crate) fn watch(self: &Arc<Self>) -> Watch {
        let mut log = self.inner.lock();
        let (id, from) = (log.next_id, log.end());
        log.next_id += 1;
        log.watches.push((id, from));
        self.watching.fetch_add(1, Ordering::AcqRel);
        Watch {
            log: self.clone(),
            id,
        }
    }
}

/// One collection's view of the put log; recording lasts while any watch lives.
#[derive(Debug)]
pub(crate) struct Watch {
    log: Arc<PutLog>,
    id: u64,
}

impl Watch {
    /// Every key put since the watch started or since the last call.
    pub(crate) fn take(&self) -> Vec<Key> {
        let mut log = self.log.inner.lock();
        let end = log.end();
        let Some(w) = log.watches.iter_mut().find(|w| w.0 == self.id) else {
            return Vec::new();
        };
        let from = std::mem::replace(&mut w.1, end);
        let skip = from.saturating_sub(log.base) as usize;
        let keys = log.keys.iter().skip(skip).cloned().collect();
        log.prune();
        keys
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut log = self.log.inner.lock();
        log.watches.retain(|w| w.0 != self.id);
        log.prune();
        self.log.watching.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Key {
        (vec![i], 0x55)
    }

    #[test]
    fn nothing_is_recorded_without_a_watch() {
        let log = Arc::new(PutLog::default());
        log.record(&key(1).0, key(1).1);
        let w = log.watch();
        assert!(w.take().is_empty());
    }

    #[test]
    fn each_watch_reads_from_its_own_start_and_read_keys_are_dropped() {
        let log = Arc::new(PutLog::default());
        let first = log.watch();
        log.record(&key(1).0, key(1).1);
        let second = log.watch();
        log.record(&key(2).0, key(2).1);
        assert_eq!(first.take(), vec![key(1), key(2)]);
        log.record(&key(3).0, key(3).1);
        assert_eq!(second.take(), vec![key(2), key(3)]);
        assert_eq!(first.take(), vec![key(3)]);
        assert_eq!(log.inner.lock().keys.len(), 0);
        drop(first);
        log.record(&key(4).0, key(4).1);
        drop(second);
        assert_eq!(log.inner.lock().keys.len(), 0);
        log.record(&key(5).0, key(5).1);
        assert_eq!(log.inner.lock().keys.len(), 0);
    }
}
